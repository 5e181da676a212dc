"""``/api/v1/admin/tsdb/delete_series`` and ``clean_tombstones`` end to end over a real DB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from narthex.tsdb import TSDBOptions, open_db
from narthex.tsdb.tombstones import FILENAME
from tests.api.conftest import SERIES, TIMES, load

DELETE = "/api/v1/admin/tsdb/delete_series"
CLEAN = "/api/v1/admin/tsdb/clean_tombstones"


async def _count(api: Any, selector: str) -> dict[str, str]:
    _, body = await api.get("/api/v1/query", query=f"count_over_time({selector}[2h])", time="3600")
    return {
        r["metric"].get("code", r["metric"].get("job", "")): r["value"][1] for r in body["data"]["result"]
    }


async def test_delete_whole_series_in_head(api_factory: Any, db: Any) -> None:
    api = await api_factory(db, enable_admin=True)
    status, body = await api.put(DELETE, {"match[]": ['up{job="node"}', "odd_values"]})
    assert (status, body) == (204, None)
    _, body = await api.get("/api/v1/series", **{"match[]": '{__name__=~".+"}'})
    assert sorted({s["__name__"] for s in body["data"]}) == ["http_requests_total", "up"]
    assert [s["job"] for s in body["data"] if s["__name__"] == "up"] == ["prometheus"]
    _, body = await api.get("/api/v1/label/job/values")
    assert body["data"] == ["api", "prometheus"]
    _, body = await api.get("/api/v1/labels")
    assert "kind" not in body["data"]
    _, body = await api.get("/api/v1/query", query="up", time="3600")
    assert [r["metric"]["job"] for r in body["data"]["result"]] == ["prometheus"]


async def test_delete_time_range(api_factory: Any, db: Any) -> None:
    api = await api_factory(db, enable_admin=True)
    form = {"match[]": 'http_requests_total{code="500"}', "start": "0", "end": "1800"}
    status, _ = await api.post(DELETE, form)
    assert status == 204
    assert await _count(api, "http_requests_total") == {"200": "241", "500": "120"}
    # Deleting again (and outside the data) is fine and changes nothing.
    status, _ = await api.post(DELETE, {**form, "start": "7200", "end": "9000"})
    assert status == 204
    assert await _count(api, "http_requests_total") == {"200": "241", "500": "120"}


async def test_delete_in_blocks_then_clean_tombstones(api_factory: Any, tmp_path: Path) -> None:
    path = tmp_path / "blocks-db"
    opts = TSDBOptions(background_compaction=False, block_range_ms=600_000)
    db = open_db(path, opts, CollectorRegistry())
    try:
        load(db, [(labels, TIMES, fn(TIMES)) for labels, fn in SERIES])
        db.compact()
        assert db.blocks
        api = await api_factory(db, enable_admin=True)
        status, _ = await api.post(DELETE, {"match[]": "up", "end": "1799.999"})
        assert status == 204
        assert {b.path.name for b in db.blocks if (b.path / FILENAME).exists()}
        assert await _count(api, "up") == {"node": "121", "prometheus": "121"}
        _, body = await api.get("/api/v1/status/tsdb/blocks")
        before = sum(b["stats"]["numSamples"] for b in body["data"]["blocks"])
        status, body = await api.put(CLEAN)
        assert (status, body) == (204, None)
        _, body = await api.get("/api/v1/status/tsdb/blocks")
        after = sum(b["stats"]["numSamples"] for b in body["data"]["blocks"])
        assert before - after == 2 * 120
        assert not any((b.path / FILENAME).exists() for b in db.blocks)
        assert await _count(api, "up") == {"node": "121", "prometheus": "121"}
        _, body = await api.get("/api/v1/series", **{"match[]": "up", "start": "0", "end": "1700"})
        assert body["data"] == []
    finally:
        db.close()
