"""``/api/v1/status/*``: config, flags, runtime and build information, TSDB stats, WAL replay."""

from __future__ import annotations

import os
import platform
import socket
import threading
import time
from typing import Any

from aiohttp import web

from narthex import __version__
from narthex.util.buildinfo import revision
from narthex.web.api.core import ApiDeps, ApiResult, require_db, run_blocking
from narthex.web.api.params import Form, bad_data, go_atoi

MAX_TSDB_LIMIT = 10000
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
_START_TIME = time.time()


def rfc3339nano(unix_s: float | None) -> str:
    """A unix time as Go's ``time.Time`` JSON (UTC, trailing fractional zeros dropped)."""
    if unix_s is None or unix_s <= 0:
        return GO_ZERO_TIME
    micros = round(unix_s * 1e6)  # all a float of seconds carries
    sec, frac = divmod(micros, 1_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if frac:
        text += "." + f"{frac:06d}".rstrip("0")
    return text + "Z"


async def config(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``/api/v1/status/config``: the loaded configuration as YAML, secrets redacted."""
    cfg = deps.config()
    return ApiResult({"yaml": cfg.to_yaml() if cfg is not None else ""})


async def flags(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``/api/v1/status/flags``: every command-line flag as a string."""
    return ApiResult(dict(deps.flags()))


async def runtimeinfo(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``/api/v1/status/runtimeinfo`` with Prometheus's field names (Go runtime fields approximated)."""
    extra = deps.runtime()
    last_config = extra.get("last_config_time")
    data: dict[str, Any] = {
        "startTime": rfc3339nano(extra.get("start_time", _START_TIME)),
        "CWD": os.getcwd(),
        "hostname": socket.gethostname(),
        "serverTime": rfc3339nano(time.time()),
        "reloadConfigSuccess": bool(extra.get("reload_config_success", True)),
        "lastConfigTime": rfc3339nano(last_config),
        "corruptionCount": int(extra.get("corruption_count", 0)),
        "goroutineCount": threading.active_count(),
        "GOMAXPROCS": os.cpu_count() or 1,
        "GOMEMLIMIT": (1 << 63) - 1,
        "GOGC": os.environ.get("GOGC", ""),
        "GODEBUG": os.environ.get("GODEBUG", ""),
        "storageRetention": str(extra.get("storage_retention", "")),
    }
    return ApiResult(data)


async def buildinfo(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``/api/v1/status/buildinfo``: the six string fields, and no ``features`` key (Grafana reads it)."""
    return ApiResult(
        {
            "version": __version__,
            "revision": revision(),
            "branch": "HEAD",
            "buildUser": "",
            "buildDate": "",
            "goVersion": f"python{platform.python_version()}",
        }
    )


async def tsdb(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``/api/v1/status/tsdb?limit=N``: head cardinality statistics."""
    limit = 10
    text = form.get("limit")
    if text:
        try:
            limit = go_atoi(text)
        except ValueError:
            limit = 0
        if limit < 1:
            raise bad_data("limit must be a positive number")
        if limit > MAX_TSDB_LIMIT:
            raise bad_data(f"limit must not exceed {MAX_TSDB_LIMIT}")
    db = require_db(deps)
    return ApiResult(await run_blocking(db.tsdb_status, limit))


async def walreplay(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``/api/v1/status/walreplay`` (not ready-gated): the WAL is replayed while storage opens."""
    done = 0 if deps.db() is None else 1
    return ApiResult({"min": 0, "max": done, "current": done})


async def tsdb_blocks(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``/api/v1/status/tsdb/blocks``: the meta.json of every persisted block."""
    db = require_db(deps)
    return ApiResult({"blocks": [block.meta.to_json() for block in list(db.blocks)]})


async def notifications(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``/api/v1/notifications`` (not ready-gated): the server raises no UI notifications yet."""
    return ApiResult([])
