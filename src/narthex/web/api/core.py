"""The shared plumbing of API handlers: dependencies, results, the JSON envelope, compression."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.web_response import ContentCoding

from narthex.util.log import get_logger
from narthex.web.api.jsonout import error_body, success_body
from narthex.web.api.params import ApiError, Form, read_form
from narthex.web.api.runner import QueryRunner

log = get_logger("web")

CONTENT_TYPE_JSON = "application/json"
MAX_ANNOTATIONS = 10
# Bodies up to this size are compressed on the loop: a thread hand-off costs more than zlib does.
COMPRESS_INLINE_BYTES = 256 * 1024


@dataclass
class ApiDeps:
    """What the API reads, as accessors so that reloads and late start-up are seen (None: not ready).

    ``engine`` returns the PromQL engine; ``scrape`` the scrape manager and ``rules`` the rule manager
    (see :mod:`narthex.web.api.targets` for what is read); ``alertmanagers`` the notifier's active and
    dropped Alertmanager URLs; ``config`` the applied Config; ``flags`` the command line as strings;
    ``runtime`` extra runtime-info fields (reload state, retention...).
    """

    db: Callable[[], Any]
    engine: Callable[[], Any]
    config: Callable[[], Any]
    flags: Callable[[], dict[str, str]]
    scrape: Callable[[], Any] = lambda: None
    rules: Callable[[], Any] = lambda: None
    runtime: Callable[[], dict[str, Any]] = dict
    alertmanagers: Callable[[], tuple[list[str], list[str]]] = lambda: ([], [])
    now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000
    data_dir: str = "data/"
    external_url: str = ""
    listen_address: str = "0.0.0.0:9090"
    lookback_delta_ms: int = 300_000
    enable_admin: bool = False
    runner: QueryRunner = field(default_factory=QueryRunner)


@dataclass
class ApiResult:
    """A successful answer: ``data`` (plain data or RawJSON), warnings and infos."""

    data: Any
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)


ApiFunc = Callable[[web.Request, Form], Awaitable[ApiResult | None]]


def _capped(items: list[str], kind: str) -> list[str]:
    """At most ten annotations, then ``<n> more <kind> annotations omitted`` (``AsStrings``)."""
    unique = list(dict.fromkeys(items))
    if len(unique) <= MAX_ANNOTATIONS:
        return unique
    rest = len(unique) - MAX_ANNOTATIONS
    return [*unique[:MAX_ANNOTATIONS], f"{rest} more {kind} annotations omitted"]


def json_response(request: web.Request, status: int, body: bytes) -> web.Response:
    """A JSON response, gzip- or deflate-compressed when the client accepts it."""
    response = web.Response(
        status=status,
        body=body,
        headers={"Content-Type": CONTENT_TYPE_JSON},
        zlib_executor_size=COMPRESS_INLINE_BYTES,
    )
    compress(request, response)
    return response


def compress(request: web.Request, response: web.StreamResponse) -> None:
    """Prometheus's CompressionHandler: gzip if accepted, else deflate if accepted."""
    accepted = request.headers.get("Accept-Encoding", "")
    if "gzip" in accepted:
        response.enable_compression(ContentCoding.gzip)
    elif "deflate" in accepted:
        response.enable_compression(ContentCoding.deflate)


def error_response(request: web.Request, error: ApiError) -> web.Response:
    return json_response(request, error.status, error_body(error.error_type, error.message))


def api_handler(func: ApiFunc) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap an API function: parse the form, map ApiError to its status, None to 204."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            form = await read_form(request)
            result = await func(request, form)
        except ApiError as exc:
            return error_response(request, exc)
        except web.HTTPException:
            raise
        except Exception as exc:  # a bug or a storage failure: answered as JSON, logged with its trace
            log.exception("Unexpected error serving an API request", path=request.path, err=exc)
            return error_response(request, ApiError("internal", str(exc)))
        if result is None:
            return web.Response(status=204)
        body = success_body(result.data, _capped(result.warnings, "warning"), _capped(result.infos, "info"))
        return json_response(request, 200, body)

    return handle


def require_db(deps: ApiDeps) -> Any:
    """The TSDB, or the ``unavailable`` error Prometheus gives before storage is open."""
    db = deps.db()
    if db is None:
        raise ApiError("unavailable", "TSDB not ready")
    return db


async def run_blocking(func: Callable[..., Any], *args: Any) -> Any:
    """Run storage or engine work off the event loop."""
    return await asyncio.to_thread(func, *args)
