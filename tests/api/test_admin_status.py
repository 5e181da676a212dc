"""Admin endpoints, status pages and target state."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from narthex.tsdb import TSDBOptions, open_db
from narthex.web.api.targets import global_url


async def test_snapshot_links_blocks_and_persists_head(api_factory: Any, db: Any, tmp_path: Path) -> None:
    db.compact()  # nothing to cut yet (the head spans 1h): the snapshot's head part carries the data
    api = await api_factory(db, enable_admin=True)
    status, body = await api.post("/api/v1/admin/tsdb/snapshot")
    assert status == 200
    name = body["data"]["name"]
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{16}", name)
    snap = tmp_path / "data" / "snapshots" / name
    blocks = [p for p in snap.iterdir() if p.is_dir()]
    assert len(blocks) == 1 and (blocks[0] / "meta.json").exists()
    copy = open_db(snap, TSDBOptions(background_compaction=False), CollectorRegistry())
    try:
        names = copy.querier(0, 3_600_000).label_values("__name__")
        assert names == ["http_requests_total", "odd_values", "up"]
    finally:
        copy.close()
    status, body = await api.put("/api/v1/admin/tsdb/snapshot", {"skip_head": "true"})
    assert status == 200
    assert list((tmp_path / "data" / "snapshots" / body["data"]["name"]).iterdir()) == []


async def test_delete_series_and_clean_tombstones(api_factory: Any, db: Any) -> None:
    api = await api_factory(db, enable_admin=True)
    status, body = await api.post("/api/v1/admin/tsdb/delete_series")
    assert (status, body["error"]) == (400, "no match[] parameter provided")
    status, body = await api.post("/api/v1/admin/tsdb/delete_series", {"match[]": "up{"})
    assert (status, body["errorType"]) == (400, "bad_data")
    status, body = await api.post("/api/v1/admin/tsdb/delete_series", {"match[]": "up", "start": "x"})
    assert (status, body["errorType"]) == (400, "bad_data")
    status, body = await api.post("/api/v1/admin/tsdb/delete_series", {"match[]": "up"})
    assert (status, body) == (204, None)
    _, body = await api.get("/api/v1/series", **{"match[]": "up"})
    assert body["data"] == []
    status, body = await api.post("/api/v1/admin/tsdb/clean_tombstones")
    assert (status, body) == (204, None)


async def test_status_pages(api_factory: Any, db: Any) -> None:
    config = SimpleNamespace(to_yaml=lambda: "global:\n  scrape_interval: 1m\n")
    api = await api_factory(db, config=config)
    _, body = await api.get("/api/v1/status/config")
    assert body["data"] == {"yaml": "global:\n  scrape_interval: 1m\n"}
    _, body = await api.get("/api/v1/status/flags")
    assert body["data"] == {"query.lookback-delta": "5m"}
    _, body = await api.get("/api/v1/status/runtimeinfo")
    assert list(body["data"]) == [
        "startTime", "CWD", "hostname", "serverTime", "reloadConfigSuccess", "lastConfigTime",
        "corruptionCount", "goroutineCount", "GOMAXPROCS", "GOMEMLIMIT", "GOGC", "GODEBUG",
        "storageRetention",
    ]  # fmt: skip
    assert body["data"]["lastConfigTime"] == "0001-01-01T00:00:00Z"
    _, body = await api.get("/api/v1/status/tsdb", limit="1")
    assert body["data"]["seriesCountByMetricName"] == [{"name": "odd_values", "value": 3}]
    _, body = await api.get("/api/v1/status/walreplay")
    assert body["data"] == {"min": 0, "max": 1, "current": 1}
    _, body = await api.get("/api/v1/alertmanagers")
    assert body["data"] == {"activeAlertmanagers": [], "droppedAlertmanagers": []}


@dataclass
class FakeTarget:
    labels: tuple[tuple[str, str], ...]
    discovered: dict[str, str]
    url: str
    health: str = "up"
    last_error: str = ""
    last_scrape: float = 1435781451.781
    last_scrape_duration: float = 0.25

    @property
    def public_labels(self) -> tuple[tuple[str, str], ...]:
        return tuple(kv for kv in self.labels if not kv[0].startswith("__"))

    def get(self, name: str) -> str:
        return dict(self.labels).get(name, "")


@dataclass
class FakeManager:
    active: dict[str, list[FakeTarget]]
    dropped: dict[str, list[Any]] = field(default_factory=dict)
    metadata_by_target: list[tuple[FakeTarget, dict[str, Any]]] = field(default_factory=list)

    @property
    def pools(self) -> dict[str, Any]:
        return dict.fromkeys(self.active)

    def active_targets(self) -> dict[str, list[FakeTarget]]:
        return self.active

    def dropped_targets(self) -> dict[str, list[Any]]:
        return self.dropped

    def dropped_target_counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.dropped.items()}

    def target_metadata(self) -> list[tuple[FakeTarget, dict[str, Any]]]:
        return self.metadata_by_target


def _target(job: str, port: int) -> FakeTarget:
    labels = (("__scrape_interval__", "15s"), ("__scrape_timeout__", "10s"),
              ("instance", f"localhost:{port}"), ("job", job))  # fmt: skip
    return FakeTarget(labels, {"__address__": f"localhost:{port}"}, f"http://localhost:{port}/metrics")


async def test_targets_and_metadata(api_factory: Any, db: Any) -> None:
    node, prom = _target("node", 9100), _target("prometheus", 9090)
    meta = SimpleNamespace(type="counter", help="Requests.", unit="")
    manager = FakeManager(
        {"prometheus": [prom], "node": [node]},
        {"node": [SimpleNamespace(discovered={"__address__": "x:1"}, scrape_pool="node")]},
        [(prom, {"http_requests_total": meta}), (node, {"http_requests_total": meta, "up": meta})],
    )
    api = await api_factory(db, scrape=lambda: manager)
    _, body = await api.get("/api/v1/targets")
    active = body["data"]["activeTargets"]
    assert [t["scrapePool"] for t in active] == ["node", "prometheus"]
    assert active[1] == {
        "discoveredLabels": {"__address__": "localhost:9090"},
        "labels": {"instance": "localhost:9090", "job": "prometheus"},
        "scrapePool": "prometheus",
        "scrapeUrl": "http://localhost:9090/metrics",
        "globalUrl": "http://example.org:9090/metrics",
        "lastError": "",
        "lastScrape": "2015-07-01T20:10:51.781Z",
        "lastScrapeDuration": 0.25,
        "health": "up",
        "scrapeInterval": "15s",
        "scrapeTimeout": "10s",
    }
    assert body["data"]["droppedTargets"] == [
        {"discoveredLabels": {"__address__": "x:1"}, "scrapePool": "node"}
    ]
    assert body["data"]["droppedTargetCounts"] == {"node": 1}
    _, body = await api.get("/api/v1/targets", state="active", scrapePool="node")
    assert len(body["data"]["activeTargets"]) == 1
    assert body["data"]["droppedTargets"] == [] and body["data"]["droppedTargetCounts"] is None
    _, body = await api.get("/api/v1/scrape_pools")
    assert body["data"] == {"scrapePools": ["node", "prometheus"]}
    _, body = await api.get("/api/v1/metadata")
    assert body["data"] == {
        "http_requests_total": [{"type": "counter", "help": "Requests.", "unit": ""}],
        "up": [{"type": "counter", "help": "Requests.", "unit": ""}],
    }
    _, body = await api.get("/api/v1/metadata", limit="1")
    assert len(body["data"]) == 1
    _, body = await api.get("/api/v1/targets/metadata", match_target='{job="node"}', metric="up")
    assert body["data"] == [
        {"target": {"instance": "localhost:9100", "job": "node"}, "type": "counter", "help": "Requests.",
         "unit": ""}
    ]  # fmt: skip


def test_global_url() -> None:
    assert global_url("http://localhost:9090/m", "https://prom.example:443", "0.0.0.0:9090") == (
        "https://prom.example:443/m"
    )
    assert global_url("http://127.0.0.1:9100/m", "https://prom.example:443", "0.0.0.0:9090") == (
        "http://prom.example:9100/m"
    )
    assert global_url("http://node:9100/m", "https://prom.example", "0.0.0.0:9090") == "http://node:9100/m"


async def test_snapshot_hard_links_persisted_blocks(api_factory: Any, tmp_path: Path) -> None:
    import numpy as np

    from tests.api.conftest import load

    db = open_db(tmp_path / "blocks", TSDBOptions(background_compaction=False), CollectorRegistry())
    try:
        t = np.arange(0, 5 * 3_600_000, 60_000, dtype=np.int64)
        load(db, [({"__name__": "m", "i": "1"}, t, np.arange(len(t), dtype=float))])
        db.compact()
        assert db.blocks, "compaction should have cut a block"
        api = await api_factory(db, enable_admin=True, data_dir=str(tmp_path / "blocks"))
        status, body = await api.post("/api/v1/admin/tsdb/snapshot")
        assert status == 200
        snap = tmp_path / "blocks" / "snapshots" / body["data"]["name"]
        source = db.blocks[0].path
        linked = snap / source.name / "meta.json"
        assert linked.stat().st_ino == (source / "meta.json").stat().st_ino
        assert len([p for p in snap.iterdir() if p.is_dir()]) == len(db.blocks) + 1  # plus the head
        _, listing = await api.get("/api/v1/status/tsdb/blocks")
        assert [b["ulid"] for b in listing["data"]["blocks"]] == [b.meta.ulid for b in db.blocks]
        _, listing = await api.get("/api/v1/notifications")
        assert listing == {"status": "success", "data": []}
        copy = open_db(snap, TSDBOptions(background_compaction=False), CollectorRegistry())
        try:
            [series] = copy.querier(0, 5 * 3_600_000).select([])
            assert len(series.timestamps) == len(t)
        finally:
            copy.close()
    finally:
        db.close()
