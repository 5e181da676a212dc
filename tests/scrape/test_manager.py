"""Running pools: loops per target, target changes, reloads, limits, state and self-metrics."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from narthex.scrape.manager import ScrapeManager
from narthex.scrape.target import Target
from tests.scrape.helpers import config, is_stale, one, series


@pytest.fixture
async def manager(db) -> AsyncIterator[ScrapeManager]:
    mgr = ScrapeManager(CollectorRegistry(), lambda: db, update_delay_s=0.01, file_watch_interval_s=0.05)
    yield mgr
    await mgr.stop()


def job(name: str, targets: list[str], extra: str = "", interval: str = "100ms") -> str:
    quoted = ", ".join(f'"{t}"' for t in targets)
    return f"""  - job_name: {name}
    scrape_interval: {interval}
    static_configs: [{{targets: [{quoted}]}}]
{extra}"""


def cfg(*jobs: str):
    return config("scrape_configs:\n" + "\n".join(jobs))


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def targets(mgr: ScrapeManager, name: str) -> dict[str, Target]:
    return {t.get("__address__"): t for t in mgr.active_targets().get(name, [])}


async def test_failing_target_does_not_disturb_others(manager, exporter, db):
    exporter.set("/metrics", "m 1\n")
    await manager.apply_config(cfg(job("j", [exporter.address, "127.0.0.1:1"])))
    await manager.start()
    await until(lambda: len(targets(manager, "j")) == 2)
    await until(lambda: all(t.health != "unknown" for t in targets(manager, "j").values()))
    state = targets(manager, "j")
    assert state[exporter.address].health == "up"
    assert state["127.0.0.1:1"].health == "down"
    assert "connection refused" in state["127.0.0.1:1"].last_error
    ups = {dict(labels)["instance"]: v[-1] for labels, (_, v) in series(db, __name__="up").items()}
    assert ups == {exporter.address: 1, "127.0.0.1:1": 0}
    status = manager.pool_status("j")
    assert status.interval_ms == 100 and status.discovery_errors == []


async def test_removed_target_goes_stale(manager, exporter, db):
    exporter.set("/metrics", "m 1\n")
    exporter.set("/other/metrics", "m 2\n")
    both = job("j", [exporter.address], "    metrics_path: /metrics")
    await manager.apply_config(cfg(both, job("k", [exporter.address], "    metrics_path: /other/metrics")))
    await manager.start()
    await until(lambda: len(series(db, __name__="m")) == 2)
    loops_k = dict(manager.jobs["k"].pool.loops)
    await manager.apply_config(cfg(both, job("k", [], "    metrics_path: /other/metrics")))
    await manager.wait_synced()
    assert manager.jobs["k"].pool.loops == {}

    def k_stale() -> bool:
        _, _, v = one(db, __name__="m", job="k")
        return bool(is_stale(v[-1:]).all())

    await until(k_stale, timeout=3)
    _, _, up = one(db, __name__="up", job="k")
    assert is_stale(up[-1:]).all()
    _, _, v = one(db, __name__="m", job="j")
    assert not is_stale(v).any()
    assert loops_k  # the loop existed and was stopped


async def test_reload_keeps_unchanged_loops(manager, exporter, db):
    exporter.set("/metrics", "m 1\n")
    a = job("a", [exporter.address])
    b = job("b", [exporter.address])
    await manager.apply_config(cfg(a, b))
    await manager.start()
    await manager.wait_synced()
    await until(lambda: len(series(db, __name__="up")) == 2)
    loop_a = next(iter(manager.jobs["a"].pool.loops.values()))
    loop_b = next(iter(manager.jobs["b"].pool.loops.values()))
    cache_b = loop_b.cache
    reloads = manager.metrics.pool_reloads._value.get()
    b_changed = job("b", [exporter.address], "    scrape_timeout: 50ms")
    await manager.apply_config(cfg(a, b_changed))
    await manager.wait_synced()
    assert next(iter(manager.jobs["a"].pool.loops.values())) is loop_a
    new_b = next(iter(manager.jobs["b"].pool.loops.values()))
    assert new_b is not loop_b and new_b.cache is cache_b  # timeout changes keep the cache
    assert manager.metrics.pool_reloads._value.get() == reloads + 1
    relabeled = job(
        "b", [exporter.address], "    metric_relabel_configs: [{target_label: x, replacement: y}]"
    )
    await manager.apply_config(cfg(a, relabeled))
    await manager.wait_synced()
    assert next(iter(manager.jobs["b"].pool.loops.values())).cache is not cache_b
    await until(lambda: len(series(db, __name__="m", x="y")) == 1)
    await manager.apply_config(cfg(a))
    assert set(manager.jobs) == {"a"}
    assert next(iter(manager.jobs["a"].pool.loops.values())) is loop_a


async def test_target_limit(manager, exporter, db):
    exporter.set("/metrics", "m 1\n")
    exporter.set("/x", "m 1\n")
    await manager.apply_config(
        cfg(job("j", [exporter.address, f"localhost:{exporter.port}"], "    target_limit: 1"))
    )
    await manager.start()
    await until(lambda: len(targets(manager, "j")) == 2)
    await until(lambda: all(t.health == "down" for t in targets(manager, "j").values()))
    errors = {t.last_error for t in targets(manager, "j").values()}
    assert errors == {"target_limit exceeded (number of targets: 2, limit: 1)"}
    assert series(db, __name__="m") == {}


async def test_relabeling_dropped_and_failed_targets(manager, exporter):
    exporter.set("/metrics", "m 1\n")
    extra = """    keep_dropped_targets: 1
    relabel_configs:
      - {source_labels: [__address__], regex: 'drop.*', action: drop}
      - {source_labels: [__address__], regex: 'bad', target_label: __address__, replacement: 'a/b'}"""
    await manager.apply_config(cfg(job("j", [exporter.address, "drop1:1", "drop2:1", "bad"], extra)))
    await manager.start()
    await manager.wait_synced()
    pool = manager.jobs["j"].pool
    assert list(targets(manager, "j")) == [exporter.address]
    assert pool.dropped_count == 2 and len(pool.dropped) == 1
    assert pool.dropped[0].discovered["__address__"] == "drop1:1"
    assert pool.sync_errors == ['instance 3 in group 0: "a/b" is not a valid hostname']
    target = targets(manager, "j")[exporter.address]
    assert target.get("instance") == exporter.address
    assert target.discovered["__scrape_interval__"] == "100ms"
    await until(lambda: target.health != "unknown")


async def test_unsupported_mechanism_is_reported(manager):
    text = """scrape_configs:
  - job_name: dns
    dns_sd_configs: [{names: [example.org]}]
"""
    await manager.apply_config(config(text))
    status = manager.pool_status("dns")
    assert status.discovery_errors == [
        "service discovery mechanism dns_sd_configs is not implemented by Narthex; no targets from it"
    ]


async def test_self_metrics_and_metadata(db, exporter):
    registry = CollectorRegistry()
    mgr = ScrapeManager(registry, lambda: db, update_delay_s=0.01)
    exporter.set("/metrics", "# HELP m Help.\n# TYPE m gauge\nm 1\n")
    await mgr.apply_config(cfg(job("j", [exporter.address])))
    await mgr.start()
    try:
        await until(lambda: len(mgr.metrics.interval_length._obs.get("100ms", ())) >= 2)
        text = generate_latest(registry).decode()
        for name in (
            'prometheus_target_interval_length_seconds{interval="100ms",quantile="0.99"}',
            "prometheus_target_scrapes_exceeded_sample_limit_total 0",
            "prometheus_target_scrapes_sample_out_of_order_total",
            "prometheus_target_scrapes_sample_duplicate_timestamp_total",
            "prometheus_target_scrapes_sample_out_of_bounds_total",
            'prometheus_target_scrape_pool_targets{scrape_job="j"} 1.0',
            "prometheus_target_scrape_pool_reloads_total",
            "prometheus_target_scrape_pools_total 1.0",
            'prometheus_sd_discovered_targets{config="j",name="scrape"} 1.0',
            "prometheus_target_scrapes_cache_flush_forced_total",
            'prometheus_target_metadata_cache_entries{scrape_job="j"} 1.0',
        ):
            assert name in text, name
        assert mgr.metadata()["m"][0].help == "Help."
        ((target, md),) = mgr.target_metadata()
        assert md["m"].type == "gauge" and target.get("job") == "j"
    finally:
        await mgr.stop()


async def test_offsets_spread_within_interval():
    from narthex.scrape.target import Target

    labels = tuple(
        sorted(
            {
                "__address__": "a:1",
                "__scheme__": "http",
                "__metrics_path__": "/metrics",
                "__scrape_interval__": "15s",
                "__scrape_timeout__": "10s",
                "job": "j",
                "instance": "a:1",
            }.items()
        )
    )
    target = Target(labels, {}, "j")
    now = 1_700_000_000_123_456_789
    offset = target.offset_s(15, 0, now)
    assert 0 <= offset <= 15
    # The scrape falls on the same phase of the interval whenever it is computed.
    phase = ((now + int(offset * 1e9)) % 15_000_000_000) / 1e9
    later = target.offset_s(15, 0, now + 4_000_000_000)
    assert abs(((now + 4_000_000_000 + int(later * 1e9)) % 15_000_000_000) / 1e9 - phase) < 1e-6


async def test_running_loop_keeps_its_interval(manager, exporter, db):
    exporter.set("/metrics", "m 1\n")
    await manager.apply_config(cfg(job("j", [exporter.address])))
    await manager.start()
    await until(lambda: len(series(db, __name__="up")) == 1 and len(one(db, __name__="up")[1]) >= 6)
    _, t, _ = one(db, __name__="up")
    gaps = set((t[1:] - t[:-1]).tolist())
    assert all(80 <= gap <= 120 for gap in gaps), gaps


async def test_stop_is_prompt_with_a_slow_target(manager, exporter):
    exporter.set("/metrics", "m 1\n", delay_s=5)
    await manager.apply_config(cfg(job("j", [exporter.address], interval="1s")))
    await manager.start()
    await until(lambda: bool(exporter.requests), timeout=3)
    start = time.monotonic()
    await manager.stop()
    assert time.monotonic() - start < 1


async def test_scrape_failure_log_file(manager, tmp_path):
    path = tmp_path / "failures.log"
    await manager.apply_config(cfg(job("j", ["127.0.0.1:1"], f"    scrape_failure_log_file: {path}")))
    await manager.start()
    await until(lambda: path.exists() and path.read_text().count("\n") >= 1)
    record = json.loads(path.read_text().splitlines()[0])
    assert record["level"] == "ERROR" and record["target"] == "http://127.0.0.1:1/metrics"
    assert "connection refused" in record["msg"]


async def test_unusable_client_settings(manager, exporter, tmp_path):
    exporter.set("/metrics", "m 1\n")
    missing = f"    tls_config: {{ca_file: {tmp_path / 'missing.pem'}}}"
    await manager.apply_config(cfg(job("bad", [exporter.address], missing), job("ok", [exporter.address])))
    assert set(manager.pools) == {"ok"}
    assert manager.metrics.pools_failed._value.get() == 1
    with pytest.raises(RuntimeError, match="failed to apply the new configuration"):
        await manager.apply_config(cfg(job("ok", [exporter.address], missing)))
    assert manager.metrics.pool_reloads_failed._value.get() == 1
