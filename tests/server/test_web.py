"""The web layer in-process: readiness gate, basic auth and TLS from --web.config.file, CORS."""

from __future__ import annotations

import asyncio
import base64
import ssl

import bcrypt
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from narthex.web.app import ReadyState, WebHandler, WebOptions
from narthex.web.webconfig import WebConfig, WebConfigError, load_web_config
from tests.conftest import self_signed_cert


def make_handler(**kwargs) -> WebHandler:
    handler = WebHandler(
        WebOptions(listen_addresses=["127.0.0.1:0"], external_url="http://x", **kwargs), CollectorRegistry()
    )

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"status": "success"})

    handler.add_route("GET", "/api/v1/hello", hello)
    return handler


async def test_gated_routes_answer_503_until_ready(aiohttp_client):
    handler = make_handler()
    client = await aiohttp_client(handler.app)
    resp = await client.get("/api/v1/hello")
    assert resp.status == 503
    assert resp.headers["X-Prometheus-Stopping"] == "false"
    assert await resp.text() == "Service Unavailable"
    handler.set_state(ReadyState.READY)
    assert (await client.get("/api/v1/hello")).status == 200
    handler.set_state(ReadyState.STOPPING)
    resp = await client.get("/api/v1/hello")
    assert resp.status == 503 and resp.headers["X-Prometheus-Stopping"] == "true"


async def test_post_on_get_only_route_is_405(aiohttp_client):
    handler = make_handler()
    client = await aiohttp_client(handler.app)
    assert (await client.post("/api/v1/hello")).status == 405


async def test_cors_follows_origin_regex(aiohttp_client):
    handler = make_handler(cors_origin=r"https?://grafana\.example")
    handler.set_state(ReadyState.READY)
    client = await aiohttp_client(handler.app)
    ok = await client.get("/api/v1/hello", headers={"Origin": "https://grafana.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://grafana.example"
    other = await client.get("/api/v1/hello", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_basic_auth_from_web_config(aiohttp_client, tmp_path):
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    path = tmp_path / "web.yml"
    path.write_text(
        f"basic_auth_users:\n  alice: {hashed}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n"
    )
    handler = make_handler(web_config=load_web_config(str(path)))
    handler.set_state(ReadyState.READY)
    client = await aiohttp_client(handler.app)
    denied = await client.get("/api/v1/hello")
    assert denied.status == 401 and denied.headers["WWW-Authenticate"] == "Basic"
    wrong = base64.b64encode(b"alice:nope").decode()
    assert (await client.get("/api/v1/hello", headers={"Authorization": f"Basic {wrong}"})).status == 401
    good = base64.b64encode(b"alice:s3cret").decode()
    resp = await client.get("/api/v1/hello", headers={"Authorization": f"Basic {good}"})
    assert resp.status == 200 and resp.headers["X-Frame-Options"] == "deny"


def test_web_config_errors(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("basic_auth_users:\n  bob: plaintext\n")
    with pytest.raises(WebConfigError, match="bcrypt"):
        load_web_config(str(bad))
    unknown = tmp_path / "unknown.yml"
    unknown.write_text("tls_server_config:\n  cert_fil: x\n")
    with pytest.raises(WebConfigError, match="cert_fil"):
        load_web_config(str(unknown))
    assert load_web_config("") == WebConfig()


def test_tls_config_builds_a_server_context(tmp_path):
    key, cert = self_signed_cert(tmp_path)
    path = tmp_path / "web.yml"
    path.write_text(
        f"tls_server_config:\n  cert_file: {cert.name}\n  key_file: {key.name}\n  min_version: TLS13\n"
    )
    config = load_web_config(str(path))
    assert config.ssl_context is not None
    assert config.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_3


async def _get(port: int, path: str = "/api/v1/hello") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def test_max_connections_holds_extra_connections_until_one_closes():
    handler = make_handler(max_connections=2)
    handler.set_state(ReadyState.READY)
    await handler.start()
    try:
        port = handler.bound_ports[0]
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        reader, writer = await _get(port)
        with pytest.raises(TimeoutError):  # over the limit: accepted, but not served
            await asyncio.wait_for(reader.readline(), 0.5)
        assert (handler.connections.active, handler.connections.waiting) == (2, 1)
        # A client that gives up while waiting is noticed when its turn comes (as with a listener
        # that stopped accepting: the kernel's queue holds it until then).
        _, gone = await asyncio.open_connection("127.0.0.1", port)
        gone.close()
        held[0][1].close()  # a slot frees: the waiting request is answered
        status = await asyncio.wait_for(reader.readline(), 5)
        assert status.startswith(b"HTTP/1.1 200")
        writer.close()
        held[1][1].close()
        for _ in range(50):
            if handler.connections.active == 0:
                break
            await asyncio.sleep(0.02)
        assert (handler.connections.active, handler.connections.waiting) == (0, 0)
    finally:
        await handler.stop()
