"""Real Prometheus clients against ``narthex serve`` and Prometheus 2.42 on the same data.

* Debian's ``promtool query instant|range|series|labels`` (2.42; it has no ``check healthy`` or
  ``check ready``, which came in later releases): same exit status, stdout and stderr.
* ``prometheus-api-client`` (PyPI): the same return values from both servers.
* A Prometheus 2.42 federating from both (``honor_labels: true``, ``/federate``, ``match[]``) stores
  the same series and samples from each.

The one semantic difference met is Prometheus 3's left-open range selector windows, which Narthex
follows: a sample exactly at ``t - range`` is outside the window (2.42 includes it); see
:data:`LEFT_OPEN`. Every other case must agree byte for byte.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.clients_helpers import Pair, prometheus, server_pair
from tests.conftest import require_binary

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    prometheus_bin = require_binary("prometheus")
    promtool_bin = require_binary("promtool")
    with server_pair(prometheus_bin, promtool_bin, tmp_path_factory.mktemp("clients")) as running:
        yield running


def _get_json(base: str, path: str, params: list[tuple[str, str]]) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())["data"]


# -- promtool -------------------------------------------------------------------------------------

# promtool arguments; {U} is the server URL, {mid}/{end} times between samples, {aligned} a sample's
# time, {rfc} the mid time in RFC 3339.
PROMTOOL_CASES: dict[str, list[str]] = {
    "instant": ["query", "instant", "--time", "{mid}", "{U}", "up"],
    "instant-rfc3339": ["query", "instant", "--time", "{rfc}", "{U}", "up"],
    "instant-odd-values": ["query", "instant", "--time", "{mid}", "{U}", "odd_values"],
    "instant-matrix": ["query", "instant", "--time", "{mid}", "{U}", "http_requests_total[1m]"],
    "instant-scalar": ["query", "instant", "--time", "{mid}", "{U}", "scalar(up{job='node'})"],
    "instant-rate": ["query", "instant", "--time", "{mid}", "{U}",
                     "sum by (code) (rate(http_requests_total[5m]))"],
    # 2.42's client library cannot decode a string result: the same error from both servers
    "err-instant-string": ["query", "instant", "--time", "{mid}", "{U}", '"a string"'],
    "instant-json": ["query", "-o", "json", "instant", "--time", "{mid}", "{U}", "odd_values"],
    "instant-json-escaping": ["query", "-o", "json", "instant", "--time", "{mid}", "{U}", "label_chars"],
    "instant-left-open": ["query", "instant", "--time", "{aligned}", "{U}", "http_requests_total[1m]"],
    "err-instant-parse": ["query", "instant", "--time", "{mid}", "{U}", "sum(up"],
    "range": ["query", "range", "--start", "{mid}", "--end", "{end}", "--step", "5m", "{U}",
              "rate(http_requests_total[2m])"],
    "range-default-step": ["query", "range", "--start", "{mid}", "--end", "{end}", "{U}", "up"],
    "range-header": ["query", "range", "--start", "{mid}", "--end", "{end}", "--step", "30m",
                     "--header", "X-Test: 1", "{U}", "sum by (job) (up)"],
    "range-json": ["query", "-o", "json", "range", "--start", "{mid}", "--end", "{end}", "--step", "10m",
                   "{U}", "odd_values"],
    "err-range-points": ["query", "range", "--start", "0", "--end", "100000", "--step", "1s", "{U}", "up"],
    "series": ["query", "series", "--match", "up", "--match", "{kind='nan'}", "{U}"],
    "series-range": ["query", "series", "--match", "up", "--start", "{mid}", "--end", "{end}", "{U}"],
    "series-before-data": ["query", "series", "--match", "up", "--start", "0", "--end", "10", "{U}"],
    "series-json": ["query", "-o", "json", "series", "--match", "label_chars", "{U}"],
    "err-series-match": ["query", "series", "--match", "up{", "{U}"],
    "labels": ["query", "labels", "{U}", "job"],
    "labels-name": ["query", "labels", "{U}", "__name__"],
    "labels-match": ["query", "labels", "--match", "up", "{U}", "instance"],
    "labels-range": ["query", "labels", "--start", "{mid}", "--end", "{end}", "{U}", "job"],
    "labels-escaping": ["query", "labels", "{U}", "path"],
    "labels-json": ["query", "-o", "json", "labels", "{U}", "kind"],
    "err-labels-match": ["query", "labels", "--match", "up{", "{U}", "job"],
}  # fmt: skip
# Prometheus 3 (and Narthex) select range-vector samples in (t - range, t]; 2.42 in [t - range, t].
LEFT_OPEN = {"instant-left-open"}


def _promtool(binary: str, args: list[str], values: dict[str, str]) -> tuple[int, str, str]:
    argv = [binary]
    for arg in args:
        for key, value in values.items():
            arg = arg.replace("{" + key + "}", value)
        argv.append(arg)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return done.returncode, done.stdout, done.stderr


def _drop_left_edge(stdout: str, at: int, range_s: int) -> str:
    """2.42's output without the samples exactly at ``at - range_s`` (outside a left-open window)."""
    return "".join(line for line in stdout.splitlines(True) if not line.endswith(f"@[{at - range_s}]\n"))


@pytest.mark.parametrize("case", list(PROMTOOL_CASES))
def test_promtool_query(case: str, pair: Pair) -> None:
    promtool = require_binary("promtool")
    base = pair.base_ms // 1000
    values = {
        "mid": str(base + 1807),
        "end": str(base + 3607),
        "aligned": str(base + 1800),
        "rfc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + 1807)),
    }
    theirs = _promtool(promtool, PROMTOOL_CASES[case], {**values, "U": pair.prometheus})
    ours = _promtool(promtool, PROMTOOL_CASES[case], {**values, "U": pair.narthex})
    if case in LEFT_OPEN:
        trimmed = _drop_left_edge(theirs[1], base + 1800, 60)
        assert trimmed != theirs[1], "2.42 no longer includes the left edge: drop the normalisation"
        theirs = (theirs[0], trimmed, theirs[2])
    assert ours == theirs
    if case.startswith("err-"):
        assert ours[0] != 0 and ours[2]
    else:
        assert ours[0] == 0 and (ours[1] or case == "series-before-data"), ours


@pytest.mark.parametrize("path", ["/-/healthy", "/-/ready"])
def test_health_endpoints(path: str, pair: Pair) -> None:
    """What ``promtool check healthy|ready`` (after 2.42) reads: a 200, here with the same body too."""
    answers = []
    for base in (pair.prometheus, pair.narthex):
        with urllib.request.urlopen(base + path, timeout=10) as resp:
            answers.append((resp.status, resp.read()))
    assert answers[0] == answers[1] and answers[0][0] == 200


# -- prometheus-api-client ------------------------------------------------------------------------


def _client_calls(pc: Any, pair: Pair) -> dict[str, Any]:
    """Each call's result (or the exception's class and text) for one server."""
    base = pair.base_ms / 1000
    mid = datetime.fromtimestamp(base + 1807, UTC)
    end = datetime.fromtimestamp(base + 3607, UTC)
    at = {"time": f"{base + 1807:.3f}"}
    calls: dict[str, Any] = {
        "check_connection": lambda: pc.check_prometheus_connection(),
        "custom_query": lambda: pc.custom_query("up", params=at),
        "custom_query-rate": lambda: pc.custom_query(
            "sum by (code) (rate(http_requests_total[5m]))", params=at
        ),
        "custom_query-odd": lambda: pc.custom_query("odd_values", params=at),
        "custom_query-scalar": lambda: pc.custom_query("scalar(up{job='prometheus'})", params=at),
        "custom_query-string": lambda: pc.custom_query('"text"', params=at),
        "custom_query-error": lambda: pc.custom_query("sum(up", params=at),
        "custom_query_range": lambda: pc.custom_query_range(
            "rate(http_requests_total[1m])", start_time=mid, end_time=end, step="5m"
        ),
        "custom_query_range-float-step": lambda: pc.custom_query_range(
            "up", start_time=mid, end_time=end, step="150"
        ),
        "custom_query_range-error": lambda: pc.custom_query_range(
            "up", start_time=end, end_time=mid, step="1m"
        ),
        "get_current_metric_value": lambda: pc.get_current_metric_value("up", params=at),
        "get_current_metric_value-labels": lambda: pc.get_current_metric_value(
            "http_requests_total", label_config={"code": "500"}, params=at
        ),
        "get_metric_range_data": lambda: pc.get_metric_range_data(
            "http_requests_total", start_time=mid, end_time=mid + timedelta(minutes=5)
        ),
        "get_metric_range_data-chunks": lambda: pc.get_metric_range_data(
            "odd_values",
            label_config={"kind": "neg"},
            start_time=mid,
            end_time=mid + timedelta(minutes=10),
            chunk_size=timedelta(minutes=2),
        ),
        "all_metrics": lambda: pc.all_metrics(),
        "get_label_names": lambda: pc.get_label_names(),
        "get_label_names-match": lambda: pc.get_label_names(params={"match[]": "odd_values"}),
        "get_label_values": lambda: pc.get_label_values("job"),
        "get_label_values-escaping": lambda: pc.get_label_values("path"),
        "get_series": lambda: pc.get_series(mid, end, params={"match[]": "http_requests_total"}),
        "get_metric_aggregation": lambda: pc.get_metric_aggregation(
            "http_requests_total", ["sum", "max", "min", "average", "percentile_50", "deviation"], params=at
        ),
    }
    out: dict[str, Any] = {}
    for name, call in calls.items():
        try:
            out[name] = call()
        except Exception as exc:  # the error a client sees is part of the interface
            out[name] = (type(exc).__name__, str(exc))
    return out


def test_prometheus_api_client(pair: Pair) -> None:
    connect = pytest.importorskip(
        "prometheus_api_client",
        reason="interop: prometheus-api-client is not installed (pip install prometheus-api-client==0.7.2)",
    ).PrometheusConnect
    with connect(pair.prometheus) as theirs_pc, connect(pair.narthex) as ours_pc:
        theirs = _client_calls(theirs_pc, pair)
        ours = _client_calls(ours_pc, pair)
    assert list(ours) == list(theirs)
    for name in theirs:
        assert repr(ours[name]) == repr(theirs[name]), name  # repr: NaN == NaN
    assert theirs["check_connection"] is True
    assert isinstance(theirs["custom_query_range"], list) and theirs["custom_query_range"]
    assert theirs["custom_query-error"][0] == "PrometheusApiClientException"


# -- federation -----------------------------------------------------------------------------------

FEDERATOR = """\
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['{{__name__=~".+"}}']
    static_configs:
      - targets: ['{prometheus}']
        labels: {{source: prometheus}}
      - targets: ['{narthex}']
        labels: {{source: narthex}}
"""


def _federated(url: str, source: str, target: str, at: float) -> dict[str, list[Any]]:
    """The raw samples the federator stored from ``source`` (its own scrape series left out)."""
    result = _get_json(
        url, "/api/v1/query", [("query", f'{{source="{source}"}}[10m]'), ("time", f"{at:.3f}")]
    )
    out: dict[str, list[Any]] = {}
    for series in result["result"]:
        labels = dict(series["metric"])
        if labels.get("instance") == target:
            continue
        assert labels.pop("source") == source
        out[json.dumps(labels, sort_keys=True)] = series["values"]
    return out


def test_prometheus_federates_from_narthex(pair: Pair, tmp_path: pathlib.Path) -> None:
    binary = require_binary("prometheus")
    targets = {name: url.removeprefix("http://") for name, url in (("prometheus", pair.prometheus),
                                                                    ("narthex", pair.narthex))}  # fmt: skip
    config = FEDERATOR.format(**targets)
    with prometheus(binary, tmp_path / "federator", config, tmp_path / "federator" / "tsdb") as url:
        deadline = time.monotonic() + 30
        while True:
            at = time.time()
            theirs = _federated(url, "prometheus", targets["prometheus"], at)
            ours = _federated(url, "narthex", targets["narthex"], at)
            if (theirs and ours) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        up = _get_json(url, "/api/v1/query", [("query", 'up{job="federate"}'), ("time", f"{at:.3f}")])
    assert sorted(s["value"][1] for s in up["result"]) == ["1", "1"], up
    assert ours == theirs
    assert len(ours) == len(pair.data)
    # Original labels kept (honor_labels), external labels added where missing, one sample per series
    # at its original timestamp (the last of the data set).
    last = (pair.base_ms + 3_600_000) / 1000
    up_prom = json.dumps({"__name__": "up", "code": "x", "dc": "eu", "instance": "localhost:9090",
                          "job": "prometheus"}, sort_keys=True)  # fmt: skip
    assert ours[up_prom] == [[last, "1"]]
    errors = json.dumps({"__name__": "http_requests_total", "code": "500", "dc": "eu", "job": "api"},
                        sort_keys=True)  # fmt: skip
    assert ours[errors][-1][0] == last + 0.123
    # instance="" from /federate keeps the target's instance off; a series without job gets the
    # scrape job's (honor_labels only wins for labels the series has).
    nan = json.dumps({"__name__": "odd_values", "code": "x", "dc": "eu", "job": "federate", "kind": "nan"},
                     sort_keys=True)  # fmt: skip
    assert ours[nan] == [[last, "NaN"]]
