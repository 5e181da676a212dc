"""``/api/v1/query``, ``query_range``, ``query_exemplars``, ``format_query`` and ``parse_query``."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from narthex.promql.ast import Expr, extract_selectors
from narthex.promql.errors import ParseError
from narthex.promql.parser import DEFAULT_FEATURES, parse_expr
from narthex.promql.printer import format_expr
from narthex.promql.serialize import translate_ast
from narthex.promql.value import BadDataError, Matrix, PromQLError, Result, Scalar, String, Vector
from narthex.web.api.core import ApiDeps, ApiResult, log, require_db
from narthex.web.api.jsonout import RawJSON, matrix_json, scalar_json, string_json, vector_json
from narthex.web.api.params import (
    INT64_MAX,
    MAX_TIME_MS,
    MIN_TIME_MS,
    ApiError,
    Form,
    bad_data,
    duration_param,
    invalid_param,
    limit_param,
    parse_duration_ns,
    required_time,
    time_param,
)
from narthex.web.api.querystats import CountingStorage, render_stats, result_samples

MAX_POINTS_PER_SERIES = 11000
TRUNCATED = "results truncated due to limit"
_STATS_VALUES = ("", "true", "all")


@dataclass
class _QueryOpts:
    """What both query endpoints read besides their times."""

    limit: int
    timeout_s: float | None
    lookback_ms: int
    stats: str


def _opts(form: Form) -> _QueryOpts:
    limit = limit_param(form)
    return _QueryOpts(limit, None, 0, form.get("stats"))


def _timeout_and_lookback(form: Form, opts: _QueryOpts) -> None:
    timeout_ns = duration_param(form, "timeout")
    if timeout_ns is not None:
        opts.timeout_s = timeout_ns / 1e9
    text = form.get("lookback_delta")
    if text:
        try:
            opts.lookback_ms = parse_duration_ns(text) // 1_000_000
        except ValueError as exc:
            raise bad_data(f"error parsing lookback delta duration: {exc}") from None


def _engine_for(deps: ApiDeps, opts: _QueryOpts) -> Any:
    """A per-request engine: the server's settings with this request's timeout and lookback delta."""
    base = deps.engine()
    if base is None:
        raise ApiError("unavailable", "query engine not ready")
    timeout = base.timeout_s if opts.timeout_s is None else min(base.timeout_s, opts.timeout_s)
    lookback = opts.lookback_ms if opts.lookback_ms > 0 else base.lookback_delta_ms
    if timeout == base.timeout_s and lookback == base.lookback_delta_ms:
        return base
    return type(base)(
        lookback_delta_ms=lookback,
        max_samples=base.max_samples,
        timeout_s=max(timeout, 0.0),
        features=base.features,
        default_subquery_step_ms=base.default_subquery_step_ms,
        gate=base.gate,
    )


def _parse(engine: Any, text: str) -> Expr:
    try:
        return engine.parse(text)
    except BadDataError as exc:
        raise invalid_param("query", str(exc)) from None


async def _evaluate(
    request: web.Request, deps: ApiDeps, engine: Any, shape: tuple, run: Callable[..., Result]
) -> Result:
    """Run the engine (inline when known to be cheap, else in a thread; see :mod:`runner`), mapping
    its typed errors to API errors. A client that goes away cancels a query running in a thread."""

    def client_gone() -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()

    gate = engine.gate
    slot_free = gate.has_free_slot if gate is not None else (lambda: True)
    try:
        return await deps.runner.run(shape, run, client_gone, slot_free)
    except BadDataError as exc:
        raise invalid_param("query", str(exc)) from None
    except PromQLError as exc:
        raise ApiError(exc.error_type, str(exc)) from None
    except MemoryError:
        raise ApiError("execution", "query processing ran out of memory") from None
    except Exception as exc:
        log.exception("Unexpected error evaluating query", err=exc)
        raise ApiError("execution", f"unexpected error: {exc}") from None


def result_json(value: Matrix | Vector | Scalar | String) -> tuple[str, str]:
    """``(resultType, result JSON)`` of an engine value."""
    if isinstance(value, Matrix):
        return "matrix", matrix_json([(s.labels, s.timestamps, s.values) for s in value.series])
    if isinstance(value, Vector):
        return "vector", vector_json([(s.labels, s.timestamp, s.value) for s in value.samples])
    if isinstance(value, Scalar):
        return "scalar", scalar_json(value.timestamp, value.value)
    return "string", string_json(value.timestamp, value.value)


def _truncate(value: Matrix | Vector | Scalar | String, limit: int) -> tuple[Any, bool]:
    if limit > 0 and isinstance(value, Matrix) and len(value.series) > limit:
        return Matrix(value.series[:limit]), True
    if limit > 0 and isinstance(value, Vector) and len(value.samples) > limit:
        return Vector(value.samples[:limit]), True
    return value, False


async def _run_query(
    request: web.Request, deps: ApiDeps, form: Form, opts: _QueryOpts, method: str, times: tuple[int, ...]
) -> ApiResult:
    engine = _engine_for(deps, opts)
    began = time.perf_counter()
    expr = _parse(engine, form.get("query"))
    db = require_db(deps)
    storage: Any = CountingStorage(db) if opts.stats else db
    prepared = time.perf_counter()
    shape = (method, form.get("query"), times[-1] - times[0], times[2] if len(times) > 2 else 0, opts.stats)
    run = functools.partial(getattr(engine, method), storage, expr, *times)
    result = await _evaluate(request, deps, engine, shape, run)
    done = time.perf_counter()
    value, truncated = _truncate(result.value, opts.limit)
    warnings = list(result.warnings)
    if truncated:
        warnings.append(TRUNCATED)
    if opts.stats not in _STATS_VALUES:
        warnings.append(
            f'value "{opts.stats}" for parameter "stats" is deprecated and will be rejected in the next '
            'major release, use "true" or "all"'
        )
    result_type, body = result_json(value)
    data: dict[str, Any] = {"resultType": result_type, "result": RawJSON(body)}
    if opts.stats:
        queue = result.queue_s  # waiting for a slot of the engine's gate (--query.max-concurrency)
        timings = {
            "prepare": prepared - began,
            "queue": queue,
            "eval": max(done - prepared - queue, 0.0),
            "total": done - began,
        }
        data["stats"] = render_stats(timings, storage.samples, result_samples(result.value))
    return ApiResult(data, warnings, list(result.infos))


async def query(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``GET|POST /api/v1/query``: an instant query at ``time`` (default now)."""
    opts = _opts(form)
    at = time_param(form, "time", deps.now_ms())
    _timeout_and_lookback(form, opts)
    return await _run_query(request, deps, form, opts, "instant_query", (at,))


async def query_range(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``GET|POST /api/v1/query_range``: start, end and step are required."""
    opts = _opts(form)
    start = required_time(form, "start")
    end = required_time(form, "end")
    if end < start:
        raise invalid_param("end", "end timestamp must not be before start time")
    step_ns = duration_param(form, "step")
    if step_ns is None:
        raise invalid_param("step", 'cannot parse "" to a valid duration')
    if step_ns <= 0 or step_ns < 1_000_000:
        raise invalid_param(
            "step", "zero or negative query resolution step widths are not accepted. Try a positive integer"
        )
    span_ns = min((end - start) * 1_000_000, INT64_MAX)
    if span_ns // step_ns > MAX_POINTS_PER_SERIES:
        raise bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. "
            "Try decreasing the query resolution (?step=XX)"
        )
    _timeout_and_lookback(form, opts)
    return await _run_query(request, deps, form, opts, "range_query", (start, end, step_ns // 1_000_000))


def _parse_plain(deps: ApiDeps, text: str) -> Expr:
    """Parse with the parser features the engine was started with (raises ParseError)."""
    features = getattr(deps.engine(), "features", frozenset())
    return parse_expr(text, features=DEFAULT_FEATURES | frozenset(features))


async def query_exemplars(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult | None:
    """``/api/v1/query_exemplars``: no exemplar storage yet, so every selector has none."""
    start = time_param(form, "start", MIN_TIME_MS)
    end = time_param(form, "end", MAX_TIME_MS)
    if end < start:
        raise bad_data("end timestamp must not be before start timestamp")
    try:
        expr = _parse_plain(deps, form.get("query"))
    except ParseError as exc:
        raise bad_data(str(exc)) from None
    if not extract_selectors(expr):
        return None
    require_db(deps)
    return ApiResult([])


async def format_query(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``/api/v1/format_query``: the prettified expression."""
    try:
        expr = _parse_plain(deps, form.get("query"))
    except ParseError as exc:
        raise invalid_param("query", str(exc)) from None
    return ApiResult(format_expr(expr))


async def parse_query(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``/api/v1/parse_query``: the expression's syntax tree as JSON."""
    try:
        expr = _parse_plain(deps, form.get("query"))
    except ParseError as exc:
        raise invalid_param("query", str(exc)) from None
    return ApiResult(translate_ast(expr))
