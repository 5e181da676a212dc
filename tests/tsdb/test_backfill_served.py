"""Differential: one OpenMetrics file backfilled by promtool (served by Prometheus 2.42) and by
``narthex tsdb create-blocks-from`` (served by ``narthex serve``) gives the same query answers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from bench.common import free_port, generate_openmetrics, start, stop, wait_http

from tests.conftest import require_binary

START_MS = 1_700_000_000_000
HOURS = 3.0
# Query times fall between scrape timestamps (which carry millisecond jitter), so the left-open range
# windows of Prometheus 3 and the closed ones of 2.42 select the same samples.
EVAL_S = [START_MS / 1000 + offset + 0.4321 for offset in (1800, 3600 + 17, 7200 + 29, 10000 + 3)]
QUERIES = [
    "up",
    "count by (__name__) ({job='node'})",
    "sum by (instance) (rate(http_requests_total[5m]))",
    "increase(http_requests_total{code='200'}[10m])",
    "histogram_quantile(0.9, sum by (le, handler) (rate(http_request_duration_seconds_bucket[5m])))",
    "avg_over_time(temperature_celsius[15m])",
    "max_over_time(node_memory_free_bytes[30m]) - min_over_time(node_memory_free_bytes[30m])",
    "rpc_duration_seconds{quantile='0.99'}",
    "topk(3, rate(http_requests_total[5m]))",
    "http_requests_total / on(instance) group_left sum by (instance) (http_requests_total)",
]


def _get(base: str, path: str, params: dict[str, str]) -> dict:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=60) as resp:
        return json.load(resp)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    promtool = require_binary("promtool")
    prometheus = require_binary("prometheus")
    root = tmp_path_factory.mktemp("served")
    source = root / "input.om"
    generate_openmetrics(source, targets=4, hours=HOURS, interval_s=15, start_ms=START_MS, seed=11)
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(root / "prom")],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "narthex",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "-q",
            str(source),
            str(root / "narthex"),
        ],
        check=True,
    )
    config = root / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\n")
    common = [f"--config.file={config}", "--storage.tsdb.retention.time=10y"]
    prom_port, nx_port = free_port(), free_port()
    procs = [
        start(
            [
                prometheus,
                *common,
                f"--storage.tsdb.path={root / 'prom'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            log=root / "prometheus.log",
        ),
        start(
            [
                sys.executable,
                "-m",
                "narthex",
                "serve",
                *common,
                f"--storage.tsdb.path={root / 'narthex'}",
                f"--web.listen-address=127.0.0.1:{nx_port}",
            ],
            log=root / "narthex.log",
        ),
    ]
    try:
        for port, proc in zip((prom_port, nx_port), procs, strict=True):
            wait_http(f"http://127.0.0.1:{port}/-/ready", proc=proc)
        yield f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{nx_port}"
    finally:
        for proc in procs:
            stop(proc)


def _by_labels(result: list[dict], key: str) -> dict[str, list]:
    return {json.dumps(r["metric"], sort_keys=True): r[key] for r in result}


def _close(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.interop
@pytest.mark.parametrize("query", QUERIES)
def test_instant_queries_match(servers: tuple[str, str], query: str) -> None:
    prom, narthex = servers
    for t in EVAL_S:
        params = {"query": query, "time": f"{t:.4f}"}
        want = _by_labels(_get(prom, "/api/v1/query", params)["data"]["result"], "value")
        got = _by_labels(_get(narthex, "/api/v1/query", params)["data"]["result"], "value")
        assert want, f"the reference returned nothing for {query} at {t}"
        assert got.keys() == want.keys(), (query, t)
        for labels, (ts, value) in want.items():
            assert got[labels][0] == ts
            assert _close(got[labels][1], value), (query, t, labels, got[labels][1], value)


@pytest.mark.interop
@pytest.mark.parametrize("query", QUERIES[2:6])
def test_range_queries_match(servers: tuple[str, str], query: str) -> None:
    prom, narthex = servers
    params = {"query": query, "start": f"{EVAL_S[0]:.4f}", "end": f"{EVAL_S[2]:.4f}", "step": "61"}
    want = _by_labels(_get(prom, "/api/v1/query_range", params)["data"]["result"], "values")
    got = _by_labels(_get(narthex, "/api/v1/query_range", params)["data"]["result"], "values")
    assert want, f"the reference returned nothing for {query}"
    assert got.keys() == want.keys()
    for labels, points in want.items():
        assert [p[0] for p in got[labels]] == [p[0] for p in points]
        assert all(_close(a[1], b[1]) for a, b in zip(got[labels], points, strict=True)), labels
