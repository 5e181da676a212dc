"""Differential: Prometheus 2.42 and Narthex scrape the same node_exporter and static exposition through
the same relabel and metric_relabel rules; both must end with the same series set."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from narthex.model.matcher import Matcher, MatchType
from narthex.tsdb import TSDBOptions, open_db
from tests.conftest import require_binary
from tests.server.harness import ServerProcess, free_port

pytestmark = pytest.mark.interop

STATIC = """# HELP app_requests_total Requests.
# TYPE app_requests_total counter
app_requests_total{job="exposed",instance="other",code="200"} 10
app_requests_total{job="exposed",instance="other",code="500"} 1
app_temp{sensor="a",exported_job="pre"} 21.5
app_drop_me{x="1"} 1
# TYPE app_latency histogram
app_latency_bucket{le="0.1"} 1
app_latency_bucket{le="1"} 3
app_latency_bucket{le="+Inf"} 4
app_latency_sum 2.5
app_latency_count 4
app_info{version="1.2",Path="/x"} 1
"""

CONFIG = """global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: node
    static_configs: [{{targets: ["127.0.0.1:{node}"], labels: {{dc: one}}}}]
    relabel_configs:
      - {{source_labels: [dc], target_label: datacenter}}
      - {{regex: dc, action: labeldrop}}
      - {{source_labels: [__address__], regex: '127.0.0.1:(.*)', target_label: port, replacement: 'p$1'}}
    metric_relabel_configs:
      - {{source_labels: [__name__], regex: 'go_.*|promhttp_.*', action: drop}}
      - {{source_labels: [__name__, cpu], regex: 'node_cpu_seconds_total;([1-9].*)', action: drop}}
      - {{source_labels: [mode], regex: '(.*)', target_label: cpu_mode, replacement: 'm_$1'}}
      - {{regex: mode, action: labeldrop}}
  - job_name: static
    metrics_path: /metrics.txt
    static_configs: [{{targets: ["127.0.0.1:{static}"]}}]
    metric_relabel_configs:
      - {{source_labels: [__name__], regex: app_drop_me, action: drop}}
      - {{source_labels: [sensor], target_label: where, replacement: 'room-$1'}}
      - {{regex: 'P(.*)', replacement: 'lower_p$1', action: labelmap}}
  - job_name: static_honor
    honor_labels: true
    metrics_path: /metrics.txt
    static_configs: [{{targets: ["127.0.0.1:{static}"]}}]
    metric_relabel_configs:
      - {{source_labels: [__name__], regex: 'app_(requests_total|temp)|up|scrape_.*', action: keep}}
"""


def _wait(predicate, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def _prometheus_series(port: int) -> set[tuple[tuple[str, str], ...]]:
    query = urllib.parse.urlencode(
        {"match[]": '{__name__=~".+"}', "start": "0", "end": str(time.time() + 60)}
    )
    data = json.loads(_get(f"http://127.0.0.1:{port}/api/v1/series?{query}"))["data"]
    return {tuple(sorted(s.items())) for s in data}


def _prometheus_static_values(port: int) -> dict[tuple[tuple[str, str], ...], float]:
    query = urllib.parse.urlencode({"query": '{job=~"static.*",__name__!="scrape_duration_seconds"}'})
    data = json.loads(_get(f"http://127.0.0.1:{port}/api/v1/query?{query}"))["data"]["result"]
    return {_norm(tuple(sorted(r["metric"].items()))): float(r["value"][1]) for r in data}


def _norm(labels: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Prometheus 3 (which Narthex follows) writes ``le``/``quantile`` as floats (``1.0``); 2.42 kept
    the exposed text (``1``). Compare them as numbers."""
    return tuple((n, repr(float(v)) if n in ("le", "quantile") else v) for n, v in labels)


def _normalized(label_sets: set) -> set:
    return {_norm(labels) for labels in label_sets}


def test_same_series_as_prometheus(tmp_path: pathlib.Path) -> None:
    prometheus = require_binary("prometheus")
    node_exporter = require_binary("prometheus-node-exporter")
    node_port, static_port, prom_port = free_port(), free_port(), free_port()
    static_dir = tmp_path / "static"
    static_dir.mkdir()
    (static_dir / "metrics.txt").write_text(STATIC)
    config = CONFIG.format(node=node_port, static=static_port)
    procs: list[subprocess.Popen] = []
    server = ServerProcess(tmp_path / "narthex")
    try:
        procs.append(
            subprocess.Popen(
                [
                    node_exporter,
                    f"--web.listen-address=127.0.0.1:{node_port}",
                    "--collector.disable-defaults",
                    "--collector.cpu",
                    "--collector.loadavg",
                    "--collector.meminfo",
                    "--collector.uname",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(static_port)],
                cwd=static_dir,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait(lambda: "node_load1" in _get(f"http://127.0.0.1:{node_port}/metrics"), "node_exporter")
        _wait(lambda: "app_temp" in _get(f"http://127.0.0.1:{static_port}/metrics.txt"), "static server")
        prom_dir = tmp_path / "prometheus"
        prom_dir.mkdir()
        (prom_dir / "prometheus.yml").write_text(config)
        procs.append(
            subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={prom_dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={prom_dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        server.tmp.mkdir()
        server.config_path.write_text(config)
        server.start()
        _wait(lambda: _get(f"http://127.0.0.1:{prom_port}/-/ready") != "", "prometheus ready")

        def prometheus_scraped_all() -> bool:
            names = {dict(s)["job"] for s in _prometheus_series(prom_port) if dict(s)["__name__"] == "up"}
            return names == {"node", "static", "static_honor"}

        _wait(prometheus_scraped_all, "prometheus scrapes")
        time.sleep(3.5)  # several scrapes each, so late offsets have caught up on both sides
        expected = _prometheus_series(prom_port)
        expected_values = _prometheus_static_values(prom_port)
    finally:
        server.stop()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
    db = open_db(server.tmp / "data", TSDBOptions(background_compaction=False))
    try:
        q = db.querier(0, 2**62)
        selected = q.select([Matcher(MatchType.REGEX, "__name__", ".+")])
        q.close()
        got = {s.labels for s in selected}
        got_values = {
            s.labels: float(s.values[-1])
            for s in selected
            if dict(s.labels)["job"].startswith("static")
            and dict(s.labels)["__name__"] != "scrape_duration_seconds"
        }
    finally:
        db.close()
    expected, got = _normalized(expected), _normalized(got)
    only_prometheus = sorted(expected - got)
    only_narthex = sorted(got - expected)
    assert not only_prometheus and not only_narthex, (only_prometheus[:10], only_narthex[:10])
    assert _normalized(set(got_values)) == set(expected_values)
    for labels, value in got_values.items():
        assert expected_values[_norm(labels)] == value, labels
    assert len(got) > 50, len(got)
    by_name = {dict(s)["__name__"] for s in got}
    assert {"up", "node_load1", "app_requests_total", "app_latency_bucket"} <= by_name
    assert any(dict(s).get("exported_job") == "exposed" for s in got)
