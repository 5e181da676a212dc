"""HTTP client settings on scrapes: TLS, proxy, redirects, compression, protocols, headers."""

from __future__ import annotations

import pathlib
import shutil
import ssl
import subprocess

import pytest
from aiohttp import web

from tests.scrape.helpers import Exporter

T1 = 1_700_000_000.0


def _cert(directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=narthex-test", "-addext", "subjectAltName=DNS:narthex-test",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def tls_exporter(tmp_path):
    cert, key = _cert(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ex = Exporter()
    ex.set("/metrics", "m 1\n")
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", ex._handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    ex.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    ex.runner = runner
    yield ex, cert
    await runner.cleanup()


async def test_tls_ca_file_and_server_name(tls_exporter, make_loop):
    ex, cert = tls_exporter
    loop = make_loop(
        ex.address, f"    scheme: https\n    tls_config: {{ca_file: {cert}, server_name: narthex-test}}"
    )
    await loop.scrape_and_report(T1)
    assert loop.target.health == "up", loop.target.last_error
    unverified = make_loop(ex.address, f"    scheme: https\n    tls_config: {{ca_file: {cert}}}")
    await unverified.scrape_and_report(T1)
    assert unverified.target.health == "down"
    assert unverified.target.last_error.startswith(f'Get "https://{ex.address}/metrics": ')
    insecure = make_loop(ex.address, "    scheme: https\n    tls_config: {insecure_skip_verify: true}")
    await insecure.scrape_and_report(T1)
    assert insecure.target.health == "up", insecure.target.last_error


async def test_proxy_url(exporter, make_loop):
    exporter.set("/metrics", "m 1\n")
    loop = make_loop("scrape-target.invalid:9100", f"    proxy_url: http://{exporter.address}")
    await loop.scrape_and_report(T1)
    assert loop.target.health == "up", loop.target.last_error
    assert exporter.requests[-1].headers["Host"] == "scrape-target.invalid:9100"
    bypass = make_loop(
        "scrape-target.invalid:9100", f"    proxy_url: http://{exporter.address}\n    no_proxy: .invalid"
    )
    await bypass.scrape_and_report(T1)
    assert bypass.target.health == "down"
    assert "lookup scrape-target.invalid" in bypass.target.last_error


async def test_redirects(make_loop):
    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path == "/metrics":
            raise web.HTTPFound("/real")
        return web.Response(body=b"m 1\n", content_type="text/plain")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    address = f"127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        follow = make_loop(address)
        await follow.scrape_and_report(T1)
        assert follow.target.health == "up", follow.target.last_error
        stay = make_loop(address, "    follow_redirects: false")
        await stay.scrape_and_report(T1)
        assert stay.target.last_error == "server returned HTTP status 302 Found"
    finally:
        await runner.cleanup()


async def test_compression_protocols_and_headers(exporter, make_loop):
    exporter.set("/metrics", "m 1\n")
    extra = """    enable_compression: false
    scrape_protocols: [PrometheusText0.0.4]
    http_headers: {X-Team: {values: [a, b]}}"""
    loop = make_loop(exporter.address, extra)
    await loop.scrape_and_report(T1)
    headers = exporter.requests[-1].headers
    assert headers["Accept-Encoding"] == "identity"
    assert headers["Accept"] == "text/plain;version=0.0.4;q=0.6,*/*;q=0.5"
    assert headers["X-Team"] == "a, b"
    assert headers["User-Agent"].startswith("Narthex/")


async def test_blank_content_type_needs_fallback(exporter, make_loop):
    exporter.set("/metrics", "m 1\n", content_type="")
    loop = make_loop(exporter.address)
    await loop.scrape_and_report(T1)
    assert loop.target.health == "down"
    assert "fallback_scrape_protocol" in loop.target.last_error
    loop = make_loop(exporter.address, "    fallback_scrape_protocol: PrometheusText0.0.4")
    await loop.scrape_and_report(T1)
    assert loop.target.health == "up", loop.target.last_error


async def test_oauth2_client_credentials(exporter, make_loop):
    tokens: list[str] = []

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        tokens.append(request.headers["Authorization"])
        assert form["grant_type"] == "client_credentials" and form["scope"] == "a b"
        return web.json_response({"access_token": "tok123", "token_type": "bearer", "expires_in": 3600})

    app = web.Application()
    app.router.add_post("/token", token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    token_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/token"  # type: ignore[union-attr]
    try:
        exporter.set("/metrics", "m 1\n")
        extra = f"    oauth2: {{client_id: id, client_secret: sec, scopes: [a, b], token_url: {token_url}}}"
        loop = make_loop(exporter.address, extra)
        await loop.scrape_and_report(T1)
        await loop.scrape_and_report(T1 + 1)
        assert loop.target.health == "up", loop.target.last_error
        assert exporter.requests[-1].headers["Authorization"] == "Bearer tok123"
        assert tokens == ["Basic aWQ6c2Vj"]  # fetched once, then cached
        bad = make_loop(exporter.address, extra.replace("/token", "/nope"))
        await bad.scrape_and_report(T1)
        assert bad.target.last_error.startswith(
            f'Get "http://{exporter.address}/metrics": oauth2: cannot fetch token: 404 Not Found'
        )
    finally:
        await runner.cleanup()
