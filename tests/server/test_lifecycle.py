"""A real ``narthex serve`` process: health, readiness, lifecycle gating, reload, signals, self-metrics."""

from __future__ import annotations

import json
import re
import signal

import pytest

from tests.conftest import self_signed_cert
from tests.server.harness import MINIMAL_CONFIG

BROKEN_CONFIG = """\
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: self
    scrape_intervall: 10s
"""

CHANGED_CONFIG = MINIMAL_CONFIG.replace("15s", "20s")
LOGFMT_LINE = re.compile(r'^ts=\S+Z level=(debug|info|warn|error)( component=("[^"]*"|\S+))? msg=')


def test_health_and_readiness_texts(server_factory):
    server = server_factory()
    healthy = server.request("GET", "/-/healthy")
    assert (healthy.status, healthy.body) == (200, "Prometheus Server is Healthy.\n")
    ready = server.request("GET", "/-/ready")
    assert (ready.status, ready.body) == (200, "Prometheus Server is Ready.\n")
    assert server.request("HEAD", "/-/healthy").status == 200


def test_lifecycle_api_is_off_by_default(server_factory):
    server = server_factory()
    for path in ("/-/reload", "/-/quit"):
        for method in ("POST", "PUT"):
            resp = server.request(method, path, data=b"")
            assert (resp.status, resp.body) == (403, "Lifecycle API is not enabled.")
        resp = server.request("GET", path)
        assert (resp.status, resp.body) == (405, "Only POST or PUT requests allowed")
    assert server.proc.poll() is None


def test_reload_keeps_running_config_on_error(server_factory):
    server = server_factory("--web.enable-lifecycle")
    assert server.metric("prometheus_config_last_reload_successful") == 1
    first_success = server.metric("prometheus_config_last_reload_success_timestamp_seconds")
    assert first_success and first_success > 1e9

    server.config_path.write_text(BROKEN_CONFIG)
    resp = server.request("POST", "/-/reload", data=b"")
    assert resp.status == 500
    assert resp.body.startswith("failed to reload config: couldn't load configuration")
    assert "scrape_intervall" in resp.body
    assert server.metric("prometheus_config_last_reload_successful") == 0
    assert server.request("GET", "/-/ready").status == 200

    server.config_path.write_text(CHANGED_CONFIG)
    resp = server.request("PUT", "/-/reload", data=b"")
    assert resp.status == 200, resp.body
    assert server.metric("prometheus_config_last_reload_successful") == 1
    assert "Completed loading of configuration file" in server.log()


def test_sighup_reloads_and_reports_failure(server_factory):
    server = server_factory()
    server.config_path.write_text(BROKEN_CONFIG)
    server.signal(signal.SIGHUP)
    server.wait_until(lambda: server.metric("prometheus_config_last_reload_successful") == 0, "failed reload")
    assert "Error reloading config" in server.log()
    server.config_path.write_text(CHANGED_CONFIG)
    server.signal(signal.SIGHUP)
    server.wait_until(lambda: server.metric("prometheus_config_last_reload_successful") == 1, "good reload")
    assert server.proc.poll() is None


def test_sigterm_and_sigint_shut_down_cleanly(server_factory, tmp_path):
    for sig in (signal.SIGTERM, signal.SIGINT):
        server = server_factory(tmp=tmp_path / sig.name)
        server.signal(sig)
        assert server.wait_exit() == 0
        log = server.log()
        assert "Received an OS signal, exiting gracefully..." in log
        assert "See you next time!" in log


def test_quit_endpoint_stops_the_server(server_factory):
    server = server_factory("--web.enable-lifecycle")
    resp = server.request("POST", "/-/quit", data=b"")
    assert (resp.status, resp.body) == (200, "Requesting termination... Goodbye!")
    assert server.wait_exit() == 0


def test_bad_config_at_startup_exits_2_with_reason(server_factory):
    server = server_factory(config=BROKEN_CONFIG, wait_ready=False)
    assert server.wait_exit() == 2
    log = server.log()
    assert "Error loading config (--config.file=" in log
    assert "scrape_intervall" in log


def test_self_metrics_use_prometheus_names(server_factory):
    server = server_factory()
    server.request("GET", "/-/healthy")
    body = server.request("GET", "/metrics").body
    assert 'prometheus_http_requests_total{code="200",handler="/-/healthy"}' in body
    assert 'prometheus_http_request_duration_seconds_bucket{handler="/-/healthy",le="0.1"}' in body
    assert "prometheus_ready 1.0" in body
    assert re.search(r'^narthex_build_info\{.*version="[^"]+".*\} 1\.0$', body, re.M)
    for family in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "python_info",
        "python_gc_collections_total",
        "prometheus_config_last_reload_success_timestamp_seconds",
    ):
        assert family in body


def test_logs_are_one_logfmt_line_per_event(server_factory):
    server = server_factory()
    server.stop()
    lines = [line for line in server.log().splitlines() if line.strip()]
    assert lines, "no log output"
    for line in lines:
        assert LOGFMT_LINE.match(line), line


def test_json_log_format(server_factory):
    server = server_factory("--log.format=json")
    server.stop()
    records = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    assert any(r["msg"] == "Server is ready to receive web requests." for r in records)
    assert all({"ts", "level", "msg"} <= r.keys() for r in records)


def test_unsupported_discovery_is_logged_with_job(server_factory):
    config = (
        MINIMAL_CONFIG
        + """\
  - job_name: k8s-pods
    kubernetes_sd_configs:
      - role: pod
"""
    )
    server = server_factory(config=config)
    log = server.log()
    line = next(line for line in log.splitlines() if "kubernetes_sd_configs" in line)
    assert "level=error" in line and "scrape_pool=k8s-pods" in line
    targets = json.loads(server.request("GET", "/api/v1/targets").body)["data"]
    assert "kubernetes_sd_configs" in targets["discoveryErrors"]["k8s-pods"][0]
    assert "self" not in targets["discoveryErrors"]


def test_route_prefix_applies_to_every_path(server_factory):
    server = server_factory("--web.external-url=http://proxy.example/narthex/", wait_ready=False)
    server.wait_until(lambda: server.request("GET", "/narthex/-/ready").status == 200, "ready under prefix")
    assert server.request("GET", "/narthex/-/healthy").status == 200
    assert server.request("GET", "/-/healthy").status == 404
    assert "prometheus_ready" in server.request("GET", "/narthex/metrics").body


def test_second_server_on_same_directory_is_refused(server_factory, tmp_path):
    server_factory()
    second = server_factory(wait_ready=False)
    assert second.wait_exit() == 1
    assert "lock" in second.log().lower()


def test_tls_and_basic_auth_from_web_config_file(server_factory, tmp_path):
    import base64
    import ssl
    import urllib.error
    import urllib.request

    import bcrypt

    key, cert = self_signed_cert(tmp_path)
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    web_config = tmp_path / "web.yml"
    web_config.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\nbasic_auth_users:\n  admin: {hashed}\n"
    )
    server = server_factory(f"--web.config.file={web_config}", wait_ready=False)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    url = f"https://127.0.0.1:{server.port}/-/healthy"

    def get(auth: str | None) -> int:
        headers = {"Authorization": f"Basic {auth}"} if auth else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), context=context) as r:
                return r.status
        except urllib.error.HTTPError as err:
            return err.code

    token = base64.b64encode(b"admin:pw").decode()
    server.wait_until(lambda: get(token) == 200, "TLS health check")
    assert get(None) == 401
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/-/healthy", timeout=5)
