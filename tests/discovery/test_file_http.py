"""file_sd and http_sd while running: changes, bad documents keeping the last targets, errors, auth."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from narthex.discovery.manager import JobDiscovery
from narthex.discovery.metrics import DiscoveryMetrics
from narthex.scrape.manager import ScrapeManager
from tests.scrape.helpers import config


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def addresses(discovery: JobDiscovery) -> set[str]:
    return {t["__address__"] for g in discovery.groups() for t in g.targets}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as sess:
        yield sess


async def test_file_sd_follows_changes_and_keeps_last_good(tmp_path, session):
    path = tmp_path / "targets.json"
    path.write_text(json.dumps([{"targets": ["a:1"], "labels": {"env": "x"}}]))
    yaml_path = tmp_path / "more.yml"
    cfg = config(
        f"""scrape_configs:
  - job_name: f
    file_sd_configs: [{{files: ["{tmp_path}/*.json", "{tmp_path}/*.yml"], refresh_interval: 1h}}]
"""
    ).scrape_configs[0]
    updates: list[int] = []
    disc = JobDiscovery(
        "f", cfg, lambda: session, DiscoveryMetrics(CollectorRegistry()), lambda: updates.append(1), 0.02
    )
    disc.start()
    try:
        await until(lambda: addresses(disc) == {"a:1"})
        group = disc.groups()[0]
        assert group.labels == {"env": "x", "__meta_filepath": str(path)}
        assert group.source == f"{path}:0"
        path.write_text(json.dumps([{"targets": ["a:1", "b:2"]}, {"targets": ["c:3"]}]))
        await until(lambda: addresses(disc) == {"a:1", "b:2", "c:3"})
        yaml_path.write_text("- targets: ['d:4']\n")
        await until(lambda: "d:4" in addresses(disc))
        # A bad file keeps the targets it delivered last, and its error is visible.
        path.write_text("[{not json")
        await until(lambda: bool(disc.errors()))
        assert addresses(disc) == {"a:1", "b:2", "c:3", "d:4"}
        path.write_text(json.dumps([{"targets": ["e:5"]}]))
        await until(lambda: addresses(disc) == {"e:5", "d:4"})
        assert disc.errors() == []
        yaml_path.unlink()
        await until(lambda: addresses(disc) == {"e:5"})
    finally:
        await disc.stop()


@pytest.fixture
async def sd_server() -> AsyncIterator[dict]:
    state: dict = {"status": 200, "body": [], "auth": None, "ctype": "application/json"}

    async def handle(request: web.Request) -> web.Response:
        state["auth"] = request.headers.get("Authorization")
        state["refresh"] = request.headers.get("X-Prometheus-Refresh-Interval-Seconds")
        return web.Response(
            status=state["status"],
            body=json.dumps(state["body"]).encode(),
            headers={"Content-Type": state["ctype"]},
        )

    app = web.Application()
    app.router.add_get("/sd", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state["url"] = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/sd"  # type: ignore[union-attr]
    yield state
    await runner.cleanup()


async def test_http_sd(sd_server, session):
    sd_server["body"] = [{"targets": ["a:1"], "labels": {"x": "1"}}, {"targets": ["b:2"]}]
    cfg = config(
        f"""scrape_configs:
  - job_name: h
    http_sd_configs:
      - url: {sd_server["url"]}
        refresh_interval: 100ms
        authorization: {{credentials: s3cr3t}}
"""
    ).scrape_configs[0]
    metrics = DiscoveryMetrics(CollectorRegistry())
    disc = JobDiscovery("h", cfg, lambda: session, metrics, lambda: None)
    disc.start()
    try:
        await until(lambda: addresses(disc) == {"a:1", "b:2"})
        assert sd_server["auth"] == "Bearer s3cr3t"
        assert sd_server["refresh"] == "0.1"
        assert disc.groups()[0].labels == {"x": "1", "__meta_url": sd_server["url"]}
        sd_server["status"] = 500
        await until(lambda: bool(disc.errors()))
        assert disc.errors() == ["server returned HTTP status 500 Internal Server Error"]
        assert addresses(disc) == {"a:1", "b:2"}  # the last targets stay
        sd_server["status"] = 200
        sd_server["ctype"] = "text/plain"
        await until(lambda: disc.errors() == ['unsupported content type "text/plain"'])
        sd_server["ctype"] = "application/json"
        sd_server["body"] = [{"targets": ["c:3"]}]
        await until(lambda: addresses(disc) == {"c:3"})
        assert disc.errors() == []
        assert metrics.http_failures._value.get() >= 2
    finally:
        await disc.stop()


async def test_file_sd_targets_are_scraped(tmp_path, db_and_exporter):
    db, exporter = db_and_exporter
    exporter.set("/metrics", "m 1\n")
    sd = tmp_path / "t.yml"
    sd.write_text(f"- targets: ['{exporter.address}']\n  labels: {{team: a}}\n")
    mgr = ScrapeManager(CollectorRegistry(), lambda: db, update_delay_s=0.01, file_watch_interval_s=0.02)
    await mgr.apply_config(
        config(
            f"""scrape_configs:
  - job_name: f
    scrape_interval: 100ms
    file_sd_configs: [{{files: ["{sd}"]}}]
"""
        )
    )
    await mgr.start()
    try:
        await until(lambda: any(t.health == "up" for t in mgr.active_targets()["f"]))
        (target,) = mgr.active_targets()["f"]
        assert target.get("team") == "a" and "__meta_filepath" not in dict(target.labels)
        assert target.discovered["__meta_filepath"] == str(sd)
        sd.write_text("- targets: [unclosed\n")
        await until(lambda: bool(mgr.pool_status("f").discovery_errors))
        assert mgr.active_targets()["f"] == [target]  # the last good targets keep being scraped
        sd.write_text("- targets: []\n")
        await until(lambda: mgr.active_targets()["f"] == [])
    finally:
        await mgr.stop()
