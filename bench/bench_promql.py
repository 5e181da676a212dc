"""PromQL range queries over HTTP: ``narthex serve`` vs Prometheus 2.42 on the same 2 h of data.

One OpenMetrics file (``bench.common.generate_openmetrics``: counters, gauges, classic histograms,
summaries, ``up``; 47 series per target, 15 s scrapes with ms jitter, 2 h from a block boundary) is
backfilled by ``promtool tsdb create-blocks-from openmetrics`` and by Narthex's own backfill into two
data directories; both servers start on 127.0.0.1 and every query below runs as ``/api/v1/query_range``
over the last hour of the data at a 15 s step (241 steps). Each query is sent once to warm up, then
``BENCH_PROMQL_REPEAT`` times to each server in turn; the figure is the median wall time of the HTTP
request (response fully read). Results are checked to agree (same series count) before timing.

Knobs: ``BENCH_PROMQL_TARGETS`` (default 100 targets = 4,700 series), ``BENCH_PROMQL_REPEAT`` (5),
``BENCH_PROMQL_PROFILE=1`` also samples the server with py-spy (if installed in the venv) while it
answers the query with the worst ratio. Every query is also timed in-process (engine only, no HTTP
or JSON) over a copy of the same Narthex blocks, interleaved with the requests.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench.common import (
    PYTHON,
    REPO,
    Row,
    env_int,
    free_port,
    generate_openmetrics,
    print_table,
    series_per_target,
    start,
    stop,
    timed,
    wait_http,
    which,
)

START_MS = 1_699_999_200_000  # a 2h block boundary
HOURS = 2.0
INTERVAL_S = 15
STEP_S = 15
RANGE_S = 3600

QUERIES: list[tuple[str, str]] = [
    ("rate", "rate(http_requests_total[5m])"),
    ("sum by rate", "sum by (job, code) (rate(http_requests_total[5m]))"),
    ("topk", "topk(5, rate(http_requests_total[5m]))"),
    (
        "histogram_quantile",
        "histogram_quantile(0.9, sum by (le, handler) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    ("histogram_quantile all", "histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[5m]))"),
    ("avg_over_time", "avg_over_time(node_memory_free_bytes[10m])"),
    ("max_over_time", "max_over_time(temperature_celsius[10m])"),
    ("quantile_over_time", "quantile_over_time(0.9, rpc_duration_seconds[10m])"),
    (
        "join on/group_left",
        "rate(http_requests_total[5m]) * on (instance, job) group_left up",
    ),
    (
        "join ratio",
        "sum by (instance, job, method) (rate(http_requests_total[5m]))"
        " / on (instance, job) group_left sum by (instance, job) (rate(http_requests_total[5m]))",
    ),
    ("subquery", "max_over_time(rate(http_requests_total[5m])[30m:1m])"),
    ("subquery default step", "avg_over_time(sum by (instance) (node_memory_free_bytes)[20m:])"),
]

CONFIG = "global:\n  scrape_interval: 15s\n  evaluation_interval: 1m\n"


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=600) as resp:
        return resp.read()


def _query_url(base: str, query: str, start_s: float, end_s: float) -> str:
    params = {"query": query, "start": f"{start_s:.3f}", "end": f"{end_s:.3f}", "step": str(STEP_S)}
    return f"{base}/api/v1/query_range?{urllib.parse.urlencode(params)}"


def _series_count(body: bytes) -> int:
    doc = json.loads(body)
    if doc.get("status") != "success":
        raise RuntimeError(f"query failed: {doc.get('errorType')}: {doc.get('error')}")
    return len(doc["data"]["result"])


def _interleaved(runs: tuple[Callable[[], object], ...], repeat: int) -> list[float]:
    """Median seconds of each callable, run in turn ``repeat`` times (so load changes hit all)."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeat):
        for run, out in zip(runs, times, strict=True):
            with timed() as elapsed:
                run()
            out.append(elapsed())
    return [statistics.median(t) for t in times]


def _backfill_narthex(openmetrics: Path, out: Path) -> tuple[float, str]:
    """Narthex's ``tsdb create-blocks-from openmetrics`` (through ``narthex tsdb`` when wired)."""
    import subprocess

    cli = [PYTHON, "-m", "narthex", "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(out)]
    probe = subprocess.run([PYTHON, "-m", "narthex", "tsdb", "--help"], capture_output=True, cwd=REPO)
    if probe.returncode != 0:
        cli = [
            PYTHON,
            "-c",
            "import sys; from narthex.cli.tsdb import tsdb_main; sys.exit(tsdb_main(sys.argv[1:]))",
            "create-blocks-from",
            "openmetrics",
            str(openmetrics),
            str(out),
        ]
    with timed() as elapsed:
        subprocess.run(cli, check=True, capture_output=True, cwd=REPO)
    return elapsed(), " ".join(cli[:3]) + " ..."


# Request plumbing every sample goes through: left out of the inclusive listing.
_WRAPPERS = (
    "narthex/cli/",
    "narthex/__main__",
    "narthex/web/app.py",
    "narthex/web/api/core.py",
    "api/__init__.py",
)


def _profile_server(pid: int, url: str, seconds: int) -> None:
    """Sample the ``narthex serve`` process with py-spy while ``url`` is requested in a loop; print
    the functions that hold most samples (inclusive) and the hottest lines (self)."""
    import subprocess
    import threading

    spy = Path(PYTHON).parent / "py-spy"
    if not spy.exists():
        print("(py-spy not installed in the venv: no profile)")
        return
    out = Path(tempfile.mkdtemp(prefix="bench-promql-spy-")) / "raw.txt"
    done = threading.Event()

    def load() -> None:
        while not done.is_set():
            _get(url)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    try:
        cmd = [str(spy), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200"]
        cmd.extend(["--format", "raw", "--nonblocking", "-o", str(out)])
        subprocess.run(
            cmd,
            check=True,
            capture_output=True,
        )
    finally:
        done.set()
        worker.join()
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        if not any("narthex/" in f for f in frames):
            continue  # idle event loop and thread pool
        total += count
        for frame in set(frames):
            if "narthex/" in frame and not any(w in frame for w in _WRAPPERS):
                key = frame.split(" (")[0] + " " + frame.rsplit("narthex/", 1)[1].split(":")[0]
                inclusive[key] = inclusive.get(key, 0) + count
        leaf = frames[-1].split(" (")[0] + " " + frames[-1].rsplit("/", 1)[-1].rstrip(")")
        own[leaf] = own.get(leaf, 0) + count
    print(f"busy samples: {total}")
    print("inclusive (narthex functions):")
    for key, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:14]:
        print(f"  {100 * count / total:5.1f}%  {key}")
    print("self (hottest lines):")
    for key, count in sorted(own.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {100 * count / total:5.1f}%  {key}")


def main() -> int:
    prometheus, promtool = which("prometheus"), which("promtool")
    if prometheus is None or promtool is None:
        print("skipped: prometheus/promtool not installed")
        return 0
    import subprocess

    targets = env_int("BENCH_PROMQL_TARGETS", 100)
    repeat = env_int("BENCH_PROMQL_REPEAT", 5)
    with tempfile.TemporaryDirectory(prefix="bench-promql-") as tmp:
        work = Path(tmp)
        om = work / "data.om"
        samples = generate_openmetrics(
            om, targets=targets, hours=HOURS, interval_s=INTERVAL_S, start_ms=START_MS
        )
        nseries = targets * series_per_target()
        print(
            f"data: {targets} targets x {series_per_target()} series = {nseries} series, "
            f"{samples:,} samples over {HOURS:g} h at {INTERVAL_S} s"
        )
        prom_dir, nx_dir = work / "prom", work / "narthex"
        with timed() as elapsed:
            subprocess.run(
                [promtool, "tsdb", "create-blocks-from", "openmetrics", str(om), str(prom_dir)],
                check=True,
                capture_output=True,
            )
        print(f"promtool backfill: {elapsed():.1f} s")
        nx_secs, nx_cmd = _backfill_narthex(om, nx_dir)
        print(f"narthex backfill: {nx_secs:.1f} s ({nx_cmd})")
        om.unlink()
        config = work / "config.yml"
        config.write_text(CONFIG)
        # The engine alone is timed in this process over a copy of the same blocks (the server owns its
        # directory), interleaved with the HTTP requests.
        shutil.copytree(nx_dir, work / "narthex-copy")
        from prometheus_client import CollectorRegistry

        from narthex.promql.engine import Engine
        from narthex.tsdb import TSDBOptions, open_db

        local_db = open_db(
            work / "narthex-copy", TSDBOptions(background_compaction=False), CollectorRegistry()
        )
        engine = Engine()

        prom_port, nx_port = free_port(), free_port()
        prom = start(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={prom_dir}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--storage.tsdb.retention.time=100y",
            ],
            log=work / "prometheus.log",
        )
        nx = start(
            [
                PYTHON,
                "-m",
                "narthex",
                "serve",
                f"--config.file={config}",
                f"--storage.tsdb.path={nx_dir}",
                f"--web.listen-address=127.0.0.1:{nx_port}",
                "--storage.tsdb.retention.time=100y",
            ],
            log=work / "narthex.log",
            cwd=REPO,
        )
        try:
            prom_base, nx_base = f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{nx_port}"
            wait_http(prom_base + "/-/ready", proc=prom)
            wait_http(nx_base + "/-/ready", timeout=120, proc=nx)
            end_s = (START_MS + HOURS * 3_600_000) / 1000
            start_s = end_s - RANGE_S
            rows: list[Row] = []
            ratios: list[float] = []
            http_ms: dict[str, float] = {}
            prom_ms: dict[str, float] = {}
            engine_s: dict[str, float] = {}
            start_ms, end_ms = int(start_s * 1000), int(end_s * 1000)
            for name, query in QUERIES:
                p_url = _query_url(prom_base, query, start_s, end_s)
                n_url = _query_url(nx_base, query, start_s, end_s)
                p_series, n_series = _series_count(_get(p_url)), _series_count(_get(n_url))
                if p_series != n_series:
                    raise RuntimeError(f"{name}: {n_series} series from narthex, {p_series} from prometheus")

                def local(q: str = query) -> object:
                    return engine.range_query(local_db, q, start_ms, end_ms, STEP_S * 1000)

                local()
                n_time, p_time, e_time = _interleaved(
                    (lambda u=n_url: _get(u), lambda u=p_url: _get(u), local), repeat
                )
                engine_s[name] = e_time
                ratios.append(n_time / p_time)
                http_ms[name] = n_time * 1000
                prom_ms[name] = p_time * 1000
                rows.append(Row(f"{name} [{n_series} series]", n_time * 1000, p_time * 1000, "ms"))
            print_table(f"range queries over HTTP: 1h at {STEP_S}s, median of {repeat}", rows)
            geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
            worst = max(range(len(ratios)), key=ratios.__getitem__)
            print(f"geometric mean ratio: {geo:.2f} (target <= 1.0)")
            print(f"slowest relative: {QUERIES[worst][0]} at {ratios[worst]:.2f}x (target <= 3x)")
            if env_int("BENCH_PROMQL_PROFILE", 0):
                name, query = QUERIES[worst]
                print(f"-- profile of narthex serve (py-spy, 10 s of repeated requests): {name}: {query}")
                _profile_server(nx.pid, _query_url(nx_base, query, start_s, end_s), 10)
        finally:
            stop(nx)
            stop(prom)
            local_db.close()
        engine_only = engine_s
        print(
            "-- narthex engine alone (in-process, a copy of the blocks, no HTTP/JSON) vs prometheus over HTTP"
        )
        print(f"{'query':<28} {'engine':>10} {'narthex HTTP':>13} {'prom HTTP':>10} {'engine/prom':>12}")
        engine_ratios = []
        for name, _query in QUERIES:
            ratio = engine_only[name] * 1000 / prom_ms[name]
            engine_ratios.append(ratio)
            print(
                f"{name:<28} {engine_only[name] * 1000:>8,.1f}ms {http_ms[name]:>11,.1f}ms"
                f" {prom_ms[name]:>8,.1f}ms {ratio:>12.2f}"
            )
        geo_engine = math.exp(sum(math.log(r) for r in engine_ratios) / len(engine_ratios))
        print(f"geometric mean engine-only / prometheus HTTP: {geo_engine:.2f}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
