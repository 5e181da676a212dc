"""``/api/v1/series``, ``/api/v1/labels`` and ``/api/v1/label/<name>/values``."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from aiohttp import web

from narthex.model.labels import Labels, is_valid_label_name
from narthex.model.matcher import Matcher
from narthex.promql.lexer import go_quote
from narthex.web.api.core import ApiDeps, ApiResult, require_db, run_blocking
from narthex.web.api.jsonout import RawJSON, labels_json
from narthex.web.api.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    ApiError,
    Form,
    bad_data,
    invalid_param,
    limit_param,
    matchers_param,
    time_param,
)
from narthex.web.api.query import TRUNCATED

_MAX_RUNE = 0x10FFFF


def unescape_name(name: str) -> str:
    """``model.UnescapeName`` with value-encoding escaping: ``U__http_2e_code`` is ``http.code``.

    Anything malformed is returned unchanged, as upstream does.
    """
    if not name.startswith("U__"):
        return name
    body = name[3:]
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char != "_":
            out.append(char)
            i += 1
            continue
        i += 1
        if i >= len(body):
            return name
        if body[i] == "_":
            out.append("_")
            i += 1
            continue
        end = body.find("_", i)
        digits = body[i:end] if end >= 0 else ""
        if end < 0 or len(digits) > 6 or not digits:
            return name
        try:
            code = int(digits, 16)
        except ValueError:
            return name
        if code > _MAX_RUNE or 0xD800 <= code <= 0xDFFF:
            return name
        out.append(chr(code))
        i = end + 1
    return "".join(out)


def _range(form: Form) -> tuple[int, int]:
    return time_param(form, "start", MIN_TIME_MS), time_param(form, "end", MAX_TIME_MS)


def _limited(items: list[Any], limit: int) -> tuple[list[Any], list[str]]:
    if limit > 0 and len(items) > limit:
        return items[:limit], [TRUNCATED]
    return items, []


def _label_names(db: Any, start: int, end: int, sets: list[list[Matcher]]) -> list[str]:
    querier = db.querier(start, end)
    if not sets:
        return list(querier.label_names())
    names: set[str] = set()
    for matchers in sets:
        names.update(querier.label_names(matchers))
    return sorted(names)


def _label_values(db: Any, name: str, start: int, end: int, sets: list[list[Matcher]]) -> list[str]:
    querier = db.querier(start, end)
    if not sets:
        return list(querier.label_values(name))
    values: set[str] = set()
    for matchers in sets:
        values.update(querier.label_values(name, matchers))
    return sorted(values)


def _series(db: Any, start: int, end: int, sets: list[list[Matcher]], limit: int) -> list[Labels]:
    querier = db.querier(start, end)
    found: set[Labels] = set()
    for matchers in sets:
        found.update(querier.series_labels(matchers))
    ordered = sorted(found)
    return ordered[: limit + 1] if limit > 0 else ordered


async def labels(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``GET|POST /api/v1/labels``: label names, optionally of the series matching ``match[]``."""
    limit = limit_param(form)
    start, end = _range(form)
    sets = matchers_param(form.getall("match[]"))
    db = require_db(deps)
    names = await run_blocking(_label_names, db, start, end, sets)
    names, warnings = _limited(names, limit)
    return ApiResult(names, warnings)


def _raw_name(request: web.Request) -> str:
    """The ``<name>`` path segment decoded from the raw path, keeping invalid UTF-8 detectable."""
    segments = request.raw_path.split("?", 1)[0].split("/")
    return unquote(segments[-2], errors="surrogateescape")


async def label_values(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``GET /api/v1/label/<name>/values`` (``U__``-escaped names are unescaped first)."""
    name = unescape_name(_raw_name(request))
    if not is_valid_label_name(name):
        raise bad_data(f"invalid label name: {go_quote(name)}")
    limit = limit_param(form)
    start, end = _range(form)
    sets = matchers_param(form.getall("match[]"))
    db = require_db(deps)
    values = await run_blocking(_label_values, db, name, start, end, sets)
    values, warnings = _limited(values, limit)
    return ApiResult(values, warnings)


async def series(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``GET|POST /api/v1/series``: the label sets of the series matching any ``match[]``."""
    selectors = form.getall("match[]")
    if not selectors:
        raise bad_data("no match[] parameter provided")
    limit = limit_param(form)
    start, end = _range(form)
    try:
        sets = matchers_param(selectors)
    except ApiError as exc:
        raise invalid_param("match[]", exc.message) from None
    db = require_db(deps)
    found = await run_blocking(_series, db, start, end, sets, limit)
    found, warnings = _limited(found, limit)
    return ApiResult(RawJSON("[" + ",".join(labels_json(lbls) for lbls in found) + "]"), warnings)
