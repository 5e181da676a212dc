"""The notifier against a local aiohttp Alertmanager stand-in: payloads, batching, failures, relabeling,
discovery from static and file SD, authentication."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from aiohttp import web

from narthex.config import load_config
from narthex.notifier.alert import NotifierAlert, format_datetime, relabel_alerts, to_api_v2
from narthex.notifier.alertmanager_set import post_path
from narthex.notifier.manager import Notifier
from narthex.notifier.sendloop import NotifierOptions
from narthex.scrape.target import relabel_rules


class FakeAlertmanager:
    """Records every POST; answers with ``status``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], list[dict]]] = []
        self.status = 200
        self.delay = 0.0
        self.got = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request.path, dict(request.headers), body))
        self.got.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=self.status)

    def alerts(self) -> list[dict]:
        return [a for _, _, body in self.requests for a in body]


@pytest.fixture
async def fake_am(aiohttp_server):
    am = FakeAlertmanager()
    app = web.Application()
    app.router.add_post("/{tail:.*}", am.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    am.address = f"127.0.0.1:{server.port}"  # type: ignore[attr-defined]
    return am


def _config(tmp_path, alerting: str, extra_global: str = "") -> object:
    path = tmp_path / "prometheus.yml"
    path.write_text(f"global:\n  external_labels:\n    region: eu\n{extra_global}alerting:\n{alerting}")
    return load_config(str(path))


def _static(address: str) -> str:
    return f"  alertmanagers:\n    - static_configs:\n        - targets: ['{address}']\n"


def _alert(name: str, **labels: str) -> NotifierAlert:
    lbls = tuple(sorted({"alertname": name, **labels}.items()))
    return NotifierAlert(lbls, (("summary", "s"),), 60_000, 0, "http://p/graph")


async def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


def test_api_v2_json():
    payload = to_api_v2(
        [NotifierAlert((("alertname", "A"),), (("s", "x"),), 1_700_000_000_000, 0, "http://g")]
    )
    assert payload == [
        {
            "annotations": {"s": "x"},
            "endsAt": "0001-01-01T00:00:00.000Z",
            "startsAt": "2023-11-14T22:13:20.000Z",
            "generatorURL": "http://g",
            "labels": {"alertname": "A"},
        }
    ]
    assert format_datetime(1_500) == "1970-01-01T00:00:01.500Z"


def test_relabel_and_external_labels():
    rules = relabel_rules([])
    out = relabel_alerts(rules, {"region": "eu", "job": "x"}, [_alert("A", job="own")])
    assert dict(out[0].labels) == {"alertname": "A", "job": "own", "region": "eu"}
    from narthex.model.relabel import RelabelRule

    drop = [RelabelRule.from_dict({"source_labels": ["alertname"], "regex": "A", "action": "drop"})]
    assert relabel_alerts(drop, {}, [_alert("A"), _alert("B")])[0].name() == "B"


def test_post_path():
    assert post_path("", "v2") == "/api/v2/alerts"
    assert post_path("/am/", "v2") == "/am/api/v2/alerts"
    assert post_path("prefix", "v2") == "/prefix/api/v2/alerts"


async def test_send_batches_relabels_and_counts(fake_am, tmp_path):
    cfg = _config(
        tmp_path,
        "  alert_relabel_configs:\n    - source_labels: [alertname]\n"
        "      regex: Dropped\n      action: drop\n"
        f"{_static(fake_am.address)}"
        "      path_prefix: /am\n",
    )
    notifier = Notifier(NotifierOptions(batch_size=2))
    await notifier.apply_config(cfg)
    await notifier.start()
    await _wait_for(lambda: notifier.alertmanagers() == [f"http://{fake_am.address}/am/api/v2/alerts"])
    notifier.send([_alert("A", i="1"), _alert("A", i="2"), _alert("Dropped"), _alert("A", i="3")])
    await _wait_for(lambda: len(fake_am.alerts()) == 3)
    assert [len(body) for _, _, body in fake_am.requests] == [2, 1]
    path, headers, body = fake_am.requests[0]
    assert path == "/am/api/v2/alerts"
    assert headers["Content-Type"] == "application/json"
    assert body[0]["labels"] == {"alertname": "A", "i": "1", "region": "eu"}
    url = notifier.alertmanagers()[0]
    assert notifier.metrics.sent.labels(url)._value.get() == 3
    assert notifier.metrics.alertmanagers_discovered.collect()[0].samples[0].value == 1
    assert notifier.alertmanagers_payload()["activeAlertmanagers"] == [{"url": url}]
    await notifier.stop()


async def test_failed_send_counts_errors_and_drops(fake_am, tmp_path):
    fake_am.status = 500
    cfg = _config(tmp_path, _static(fake_am.address))
    notifier = Notifier()
    await notifier.apply_config(cfg)
    await notifier.start()
    await _wait_for(lambda: bool(notifier.alertmanagers()))
    url = notifier.alertmanagers()[0]
    notifier.send([_alert("A"), _alert("B")])
    await _wait_for(lambda: notifier.metrics.dropped.labels(url)._value.get() == 2)
    assert notifier.metrics.errors.labels(url)._value.get() == 2
    assert len(fake_am.requests) == 1  # no retry of the same batch
    await notifier.stop()


async def test_queue_capacity_drops_oldest(fake_am, tmp_path):
    fake_am.delay = 0.3
    cfg = _config(tmp_path, _static(fake_am.address))
    notifier = Notifier(NotifierOptions(queue_capacity=3, batch_size=1))
    await notifier.apply_config(cfg)
    await notifier.start()
    await _wait_for(lambda: bool(notifier.alertmanagers()))
    url = notifier.alertmanagers()[0]
    notifier.send([_alert("first")])
    await fake_am.got.wait()  # the first batch is in flight; the queue is empty
    notifier.send([_alert(f"n{i}") for i in range(5)])
    assert notifier.metrics.dropped.labels(url)._value.get() == 2
    assert notifier.metrics.queue_length.labels(url)._value.get() == 3
    await notifier.stop()  # drains the queue on shutdown
    assert [a["labels"]["alertname"] for a in fake_am.alerts()] == ["first", "n2", "n3", "n4"]
    assert notifier.metrics.queue_capacity._value.get() == 3


async def test_timeout(fake_am, tmp_path):
    fake_am.delay = 2
    cfg = _config(
        tmp_path,
        _static(fake_am.address) + "      timeout: 200ms\n",
    )
    notifier = Notifier(NotifierOptions(drain_on_shutdown=False))
    await notifier.apply_config(cfg)
    await notifier.start()
    await _wait_for(lambda: bool(notifier.alertmanagers()))
    url = notifier.alertmanagers()[0]
    notifier.send([_alert("A")])
    await _wait_for(lambda: notifier.metrics.errors.labels(url)._value.get() == 1, timeout=3)
    await notifier.stop()


async def test_file_sd_relabel_dropped_and_auth(fake_am, tmp_path):
    targets = tmp_path / "am.json"
    targets.write_text(json.dumps([{"targets": [fake_am.address, "127.0.0.1:1"], "labels": {"env": "x"}}]))
    cfg = _config(
        tmp_path,
        "  alertmanagers:\n    - basic_auth: {username: u, password: p}\n"
        f"      file_sd_configs:\n        - files: ['{targets}']\n"
        "      relabel_configs:\n        - source_labels: [__address__]\n          regex: '127.0.0.1:1'\n"
        "          action: drop\n",
    )
    notifier = Notifier()
    await notifier.apply_config(cfg)
    await notifier.start()
    await _wait_for(lambda: bool(notifier.alertmanagers()))
    assert notifier.dropped_alertmanagers() == ["http://127.0.0.1:1/api/v2/alerts"]
    notifier.send([_alert("A")])
    await _wait_for(lambda: bool(fake_am.requests))
    auth = fake_am.requests[0][1]["Authorization"]
    assert auth == "Basic " + base64.b64encode(b"u:p").decode()
    await notifier.stop()


async def test_reload_with_same_config_keeps_send_loops(fake_am, tmp_path):
    cfg = _config(tmp_path, _static(fake_am.address))
    notifier = Notifier()
    await notifier.apply_config(cfg)
    await notifier.start()
    await _wait_for(lambda: bool(notifier.alertmanagers()))
    loops = dict(notifier.sets["config-0"].loops)
    await notifier.apply_config(cfg)
    assert notifier.sets["config-0"].loops == loops
    await notifier.apply_config(_config(tmp_path, "  alertmanagers: []\n"))
    assert notifier.alertmanagers() == []
    await notifier.stop()


async def test_send_from_a_worker_thread(fake_am, tmp_path):
    cfg = _config(tmp_path, _static(fake_am.address))
    notifier = Notifier()
    await notifier.apply_config(cfg)
    await notifier.start()
    await _wait_for(lambda: bool(notifier.alertmanagers()))
    await asyncio.to_thread(notifier.send, [_alert("FromThread")])
    await _wait_for(lambda: bool(fake_am.requests))
    await notifier.stop()


async def test_https_with_custom_ca_and_bearer_token(tmp_path, aiohttp_server):
    import ssl

    from tests.conftest import self_signed_cert

    key, cert = self_signed_cert(tmp_path)
    am = FakeAlertmanager()
    app = web.Application()
    app.router.add_post("/{tail:.*}", am.handle)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    server = await aiohttp_server(app, host="127.0.0.1", ssl=ctx)
    cfg = _config(
        tmp_path,
        "  alertmanagers:\n    - scheme: https\n      authorization: {credentials: secret}\n"
        f"      tls_config: {{ca_file: '{cert}', server_name: localhost}}\n"
        f"      static_configs:\n        - targets: ['127.0.0.1:{server.port}']\n",
    )
    notifier = Notifier()
    await notifier.apply_config(cfg)
    await notifier.start()
    await _wait_for(lambda: bool(notifier.alertmanagers()))
    assert notifier.alertmanagers()[0].startswith("https://")
    notifier.send([_alert("A")])
    await _wait_for(lambda: bool(am.requests))
    assert am.requests[0][1]["Authorization"] == "Bearer secret"
    await notifier.stop()
