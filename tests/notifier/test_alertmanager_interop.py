"""End to end: rule manager -> notifier -> the real Alertmanager 0.25 -> webhook receiver (local)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import aiohttp
import pytest
from aiohttp import web

from narthex.config import load_config
from narthex.notifier.manager import Notifier
from narthex.rules.appendable import MemoryRuleStorage
from narthex.rules.manager import ManagerOptions, RuleManager
from tests.conftest import require_binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def webhook(aiohttp_server):
    received: list[dict] = []
    event = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        event.set()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app, host="127.0.0.1")
    return f"http://127.0.0.1:{server.port}/hook", received, event


@pytest.fixture
async def alertmanager(tmp_path, webhook):
    binary = require_binary("prometheus-alertmanager")
    url, _, _ = webhook
    port = _free_port()
    cfg = tmp_path / "am.yml"
    cfg.write_text(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n"
        "receivers:\n  - name: hook\n    webhook_configs:\n"
        f"      - url: '{url}'\n        send_resolved: true\n"
    )
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={cfg}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"{base}/-/ready") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                pytest.fail("alertmanager did not become ready")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_firing_and_resolved_alert_reach_alertmanager(tmp_path, alertmanager, webhook):
    _, received, event = webhook
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yml").write_text(
        "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n"
        "    labels: {severity: page}\n    annotations: {summary: '{{ $labels.job }} is down'}\n"
    )
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  external_labels: {cluster: c1}\n"
        f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{alertmanager}']\n"
        f"rule_files: ['{tmp_path}/rules/*.yml']\n"
    )
    config = load_config(str(tmp_path / "prometheus.yml"))
    storage = MemoryRuleStorage()
    # Evaluation times lie in the past so that the resolved alert's endsAt has passed already.
    t0 = (time.time_ns() // 1_000_000) - 120_000
    for i in range(5):
        storage.storage.add((("__name__", "up"), ("job", "api")), t0 + i * 15_000, 0.0)
    notifier = Notifier()
    manager = RuleManager(storage, ManagerOptions(external_url="http://narthex:9090"), notifier=notifier)
    await notifier.apply_config(config)
    await manager.apply_config(config)
    await notifier.start()
    (group,) = manager.rule_groups()
    eval_at = t0 + 60_000
    await asyncio.to_thread(group.run_iteration, eval_at)
    await asyncio.wait_for(event.wait(), 20)
    firing = received[-1]
    assert firing["status"] == "firing"
    (alert,) = firing["alerts"]
    assert alert["labels"] == {"alertname": "Down", "job": "api", "severity": "page", "cluster": "c1"}
    assert alert["annotations"] == {"summary": "api is down"}
    assert alert["generatorURL"].startswith("http://narthex:9090/graph?g0.expr=up+%3D%3D+0")
    # The series recovers: the next evaluation resolves and sends the resolved alert.
    event.clear()
    storage.storage.add((("__name__", "up"), ("job", "api")), eval_at + 15_000, 1.0)
    await asyncio.to_thread(group.run_iteration, eval_at + 30_000)
    for _ in range(100):
        if received[-1]["status"] == "resolved":
            break
        event.clear()
        await asyncio.wait_for(event.wait(), 20)
    assert received[-1]["alerts"][0]["status"] == "resolved"
    await notifier.stop()
    await manager.stop()
