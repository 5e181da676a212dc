"""An in-process API server over a temporary TSDB, with a small fixed data set."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from narthex.model.labels import Labels
from narthex.promql.engine import Engine
from narthex.tsdb import TSDBOptions, open_db
from narthex.web.api import ApiDeps, register_api
from narthex.web.app import ReadyState, WebHandler, WebOptions

# Series loaded into every test database: samples every 15 s from 0 to 1h (inclusive).
SERIES: list[tuple[dict[str, str], Callable[[np.ndarray], np.ndarray]]] = [
    ({"__name__": "up", "job": "prometheus", "instance": "localhost:9090"}, lambda t: np.ones(len(t))),
    ({"__name__": "up", "job": "node", "instance": "localhost:9100"}, lambda t: np.zeros(len(t))),
    (
        {"__name__": "http_requests_total", "job": "api", "code": "200"},
        lambda t: t / 1000.0,
    ),
    (
        {"__name__": "http_requests_total", "job": "api", "code": "500"},
        lambda t: t / 15000.0,
    ),
    ({"__name__": "odd_values", "kind": "nan"}, lambda t: np.full(len(t), np.nan)),
    ({"__name__": "odd_values", "kind": "big"}, lambda t: np.full(len(t), 1e21)),
    ({"__name__": "odd_values", "kind": "tiny"}, lambda t: np.full(len(t), 1.5e-7)),
]
TIMES = np.arange(0, 3_600_001, 15_000, dtype=np.int64)


def load(db: Any, series: Iterable[tuple[dict[str, str], np.ndarray, np.ndarray]]) -> None:
    """Append whole series (labels, ms timestamps, values) in one transaction."""
    app = db.appender()
    for labels, ts, vs in series:
        lbls: Labels = tuple(sorted(labels.items()))
        ref = app.series_ref(lbls)
        app.append_batch(np.full(len(ts), ref, dtype=np.int64), np.asarray(ts), np.asarray(vs, dtype=float))
    app.commit()


@dataclass
class Api:
    client: TestClient
    db: Any
    handler: WebHandler
    deps: ApiDeps

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        resp = await self.client.get(path, params=params or None)
        return resp.status, await _body(resp)

    async def post(self, path: str, data: Any = None, params: Any = None) -> tuple[int, Any]:
        resp = await self.client.post(path, data=data, params=params)
        return resp.status, await _body(resp)

    async def put(self, path: str, data: Any = None) -> tuple[int, Any]:
        resp = await self.client.put(path, data=data)
        return resp.status, await _body(resp)


async def _body(resp: Any) -> Any:
    if resp.status == 204:
        return None
    if resp.content_type == "application/json":
        return await resp.json()
    return await resp.text()


def make_deps(db: Any, tmp_path: pathlib.Path, **overrides: Any) -> ApiDeps:
    engine = overrides.pop("engine", Engine())
    config = overrides.pop("config", None)
    settings: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "external_url": "http://example.org:9090",
        "listen_address": "0.0.0.0:9090",
        **overrides,
    }
    return ApiDeps(
        db=lambda: db,
        engine=lambda: engine,
        config=lambda: config,
        flags=lambda: {"query.lookback-delta": "5m"},
        **settings,
    )


@pytest.fixture
def db(tmp_path: pathlib.Path) -> Any:
    database = open_db(tmp_path / "data", TSDBOptions(background_compaction=False), CollectorRegistry())
    load(database, [(labels, TIMES, fn(TIMES)) for labels, fn in SERIES])
    yield database
    database.close()


@pytest.fixture
def api_factory(aiohttp_client: Any, tmp_path: pathlib.Path) -> Callable[..., Any]:
    """Build an in-process API over ``db`` (``overrides`` replace ApiDeps fields)."""

    async def make(db: Any, **overrides: Any) -> Api:
        handler = WebHandler(
            WebOptions(listen_addresses=[], external_url="http://example.org:9090"), CollectorRegistry()
        )
        deps = make_deps(db, tmp_path, **overrides)
        register_api(handler, deps)
        handler.set_state(ReadyState.READY)
        client = await aiohttp_client(handler.app)
        return Api(client, db, handler, deps)

    return make


@pytest.fixture
async def api(api_factory: Callable[..., Any], db: Any) -> AsyncIterator[Api]:
    yield await api_factory(db, now_ms=lambda: 3_600_000)
