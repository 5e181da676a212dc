"""``narthex query|query-range|series|labels|targets|health|ready`` against a real server, and the same
query printed by promtool (when installed) for comparison."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import require_binary
from tests.server.harness import ServerProcess, free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("ops")
    port = free_port()
    proc = ServerProcess(tmp, ["--web.enable-lifecycle"], port=port)
    proc.config_path.write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    )
    proc.start()
    proc.wait_until(lambda: '"1"]' in proc.request("GET", "/api/v1/query?query=up").body, "first scrape")
    yield proc
    proc.stop()


def narthex(server: ServerProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "narthex", *args, f"--server={server.base()}"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_query_prints_like_promtool(server: ServerProcess) -> None:
    now = f"{time.time():.3f}"
    result = narthex(server, "query", "up", f"--time={now}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f'up{{instance="127.0.0.1:{server.port}", job="self"}} => 1 @[')
    promtool = require_binary("promtool")
    reference = subprocess.run(
        [promtool, "query", "instant", f"--time={now}", server.base(), "up"], capture_output=True, text=True
    )
    assert result.stdout == reference.stdout
    scalar = narthex(server, "query", "1+1", f"--time={now}")
    assert scalar.stdout.strip() == f"scalar: 2 @[{now.rstrip('0').rstrip('.')}]"


def test_query_range_and_json_output(server: ServerProcess) -> None:
    def scrapes() -> float:
        body = json.loads(server.request("GET", "/api/v1/query?query=count_over_time(up[10s])").body)
        return float(body["data"]["result"][0]["value"][1]) if body["data"]["result"] else 0.0

    server.wait_until(lambda: scrapes() >= 3, "three scrapes")
    end = time.time()
    result = narthex(server, "query-range", "up", f"--start={end - 5:.3f}", f"--end={end:.3f}", "--step=1s")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f'up{{instance="127.0.0.1:{server.port}", job="self"}} =>'
    assert all(line.startswith("1 @[") for line in lines[1:]) and len(lines) >= 3
    as_json = json.loads(narthex(server, "query", "up", "-o", "json").stdout)
    assert as_json["resultType"] == "vector"


def test_series_labels_targets_health(server: ServerProcess) -> None:
    series = narthex(server, "series", "up").stdout.splitlines()
    assert series == [f'up{{instance="127.0.0.1:{server.port}", job="self"}}']
    assert "job" in narthex(server, "labels").stdout.split()
    assert narthex(server, "labels", "job").stdout.split() == ["self"]
    targets = narthex(server, "targets").stdout
    assert targets.startswith(f"self\thttp://127.0.0.1:{server.port}/metrics\tup")
    assert narthex(server, "health").stdout.strip() == "Prometheus Server is Healthy."
    assert narthex(server, "ready").stdout.strip() == "Prometheus Server is Ready."


def test_errors_exit_1_with_the_server_reason(server: ServerProcess) -> None:
    bad = narthex(server, "query", "sum(")
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: bad_data: ")
    unreachable = subprocess.run(
        [sys.executable, "-m", "narthex", "health", f"--server=http://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr
