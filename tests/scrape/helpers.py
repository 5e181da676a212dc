"""Test helpers: an exposition server on 127.0.0.1, a TSDB, configs and series reads."""

from __future__ import annotations

import asyncio
import gzip
from dataclasses import dataclass, field

import numpy as np
from aiohttp import web
from prometheus_client import CollectorRegistry

from narthex.config import Config
from narthex.config.load import load_config_from_string
from narthex.model.labels import Labels
from narthex.model.matcher import Matcher, MatchType
from narthex.scrape.loop import STALE_NAN_BITS
from narthex.tsdb import DB, TSDBOptions, open_db


@dataclass
class Route:
    body: bytes | str = b""
    status: int = 200
    content_type: str = "text/plain; version=0.0.4"
    delay_s: float = 0.0
    gzip: bool = False


@dataclass
class Exporter:
    """Serves ``routes[path]``; records the requests it got."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[web.Request] = field(default_factory=list)
    port: int = 0
    runner: web.AppRunner | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, path: str, body: bytes | str, **kw: object) -> None:
        self.routes[path] = Route(body, **kw)  # type: ignore[arg-type]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        route = self.routes.get(request.path)
        if route is None:
            return web.Response(status=404, text="404 page not found")
        if route.delay_s:
            await asyncio.sleep(route.delay_s)
        body = route.body.encode() if isinstance(route.body, str) else route.body
        headers = {"Content-Type": route.content_type}
        if route.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return web.Response(status=route.status, body=body, headers=headers)

    async def start(self) -> Exporter:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def new_db(path: str) -> DB:
    return open_db(path, TSDBOptions(background_compaction=False), CollectorRegistry())


def config(text: str) -> Config:
    return load_config_from_string(text)


def series(db: DB, **equal: str) -> dict[Labels, tuple[np.ndarray, np.ndarray]]:
    """Every stored series matching ``name=value`` (all series when empty)."""
    matchers = [Matcher(MatchType.EQUAL, k, v) for k, v in equal.items()] or [
        Matcher(MatchType.REGEX, "__name__", ".+")
    ]
    q = db.querier(-(2**62), 2**62)
    try:
        return {s.labels: (s.timestamps, s.values) for s in q.select(matchers)}
    finally:
        q.close()


def one(db: DB, **equal: str) -> tuple[Labels, np.ndarray, np.ndarray]:
    found = series(db, **equal)
    assert len(found) == 1, found
    ((labels, (t, v)),) = found.items()
    return labels, t, v


def is_stale(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).view(np.uint64) == np.uint64(STALE_NAN_BITS)
