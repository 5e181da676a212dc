"""Query options: limit, lookback_delta, stats, timeout, and the result types."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import aiohttp

from narthex.promql.engine import Engine
from narthex.promql.value import QueryCanceledError


async def test_limit_truncates_vectors_and_warns(api: Any) -> None:
    status, body = await api.get("/api/v1/query", query="odd_values", time="3600", limit="2")
    assert status == 200
    assert len(body["data"]["result"]) == 2
    assert body["warnings"] == ["results truncated due to limit"]
    _, body = await api.get("/api/v1/query", query="odd_values", time="3600", limit="3")
    assert "warnings" not in body
    _, body = await api.get("/api/v1/query", query="1", time="3600", limit="1")
    assert "warnings" not in body
    _, body = await api.get("/api/v1/query_range", query="up", start="0", end="60", step="15", limit="1")
    assert len(body["data"]["result"]) == 1 and body["warnings"] == ["results truncated due to limit"]


async def test_lookback_delta(api: Any) -> None:
    _, body = await api.get("/api/v1/query", query="up", time="3690")
    assert len(body["data"]["result"]) == 2
    _, body = await api.get("/api/v1/query", query="up", time="3690", lookback_delta="1m")
    assert body["data"]["result"] == []
    _, body = await api.get("/api/v1/query", query="up", time="3650", lookback_delta="60")
    assert len(body["data"]["result"]) == 2


async def test_stats(api: Any) -> None:
    _, body = await api.get("/api/v1/query_range", query="up", start="0", end="600", step="60", stats="all")
    stats = body["data"]["stats"]
    assert list(stats) == ["timings", "samples"]
    assert list(stats["timings"]) == [
        "evalTotalTime", "resultSortTime", "queryPreparationTime", "innerEvalTime", "execQueueTime",
        "execTotalTime",
    ]  # fmt: skip
    assert list(stats["samples"]) == ["totalQueryableSamples", "samplesRead", "peakSamples"]
    assert stats["samples"]["totalQueryableSamples"] > 0
    assert "warnings" not in body
    _, body = await api.get("/api/v1/query", query="up", time="60", stats="yes")
    assert "stats" in body["data"]
    assert body["warnings"] == [
        'value "yes" for parameter "stats" is deprecated and will be rejected in the next major release, '
        'use "true" or "all"'
    ]
    _, body = await api.get("/api/v1/query", query="up", time="60")
    assert "stats" not in body["data"]


async def test_result_types(api: Any) -> None:
    _, body = await api.get("/api/v1/query", query="up[1m]", time="60")
    assert body["data"]["resultType"] == "matrix"
    assert body["data"]["result"][0]["values"] == [[15, "1"], [30, "1"], [45, "1"], [60, "1"]]
    _, body = await api.get("/api/v1/query", query='"hi"', time="1.5")
    assert body["data"] == {"resultType": "string", "result": [1.5, "hi"]}
    _, body = await api.get("/api/v1/query", query="time()", time="1.5")
    assert body["data"] == {"resultType": "scalar", "result": [1.5, "1.5"]}
    _, body = await api.get("/api/v1/query", query="odd_values", time="60")
    assert {s["metric"]["kind"]: s["value"][1] for s in body["data"]["result"]} == {
        "nan": "NaN", "big": "1e+21", "tiny": "1.5e-07",
    }  # fmt: skip


async def test_default_time_is_now(api: Any) -> None:
    # The test server's clock reads 3600 s.
    _, body = await api.get("/api/v1/query", query="time()")
    assert body["data"]["result"] == [3600, "3600"]


async def test_format_and_parse_query(api: Any) -> None:
    status, body = await api.post("/api/v1/format_query", {"query": "sum(rate(x[5m]))by(job)"})
    assert (status, body["data"]) == (200, "sum by (job) (rate(x[5m]))")
    status, body = await api.get("/api/v1/parse_query", query="up")
    assert status == 200
    assert body["data"]["type"] == "vectorSelector"
    status, body = await api.get("/api/v1/parse_query", query="up{")
    assert status == 400 and body["error"].startswith('invalid parameter "query": 1:4: parse error')


class _BlockingEngine(Engine):
    """An engine whose instant queries wait until they are cancelled."""

    cancelled = threading.Event()

    def instant_query(self, storage: Any, expr: Any, time_ms: int, *, cancel: Any = None) -> Any:
        assert cancel is not None
        if not cancel.wait(10):
            raise AssertionError("the query was not cancelled")
        type(self).cancelled.set()
        raise QueryCanceledError()


async def test_client_disconnect_cancels_the_query(api_factory: Any, db: Any) -> None:
    api = await api_factory(db, engine=_BlockingEngine())
    with contextlib.suppress(asyncio.TimeoutError):
        await api.client.get(
            "/api/v1/query", params={"query": "up"}, timeout=aiohttp.ClientTimeout(total=0.3)
        )
    for _ in range(100):
        if _BlockingEngine.cancelled.is_set():
            break
        await asyncio.sleep(0.05)
    assert _BlockingEngine.cancelled.is_set()
