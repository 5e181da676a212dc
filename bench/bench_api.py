"""HTTP API under concurrent load: ``narthex serve`` vs Prometheus 2.42 on the same data, same run.

One OpenMetrics file (``bench.common.generate_openmetrics``: 47 series per target, 15 s scrapes with
ms jitter, 2 h from a block boundary) is backfilled by promtool and by ``narthex tsdb
create-blocks-from openmetrics``; both servers start on 127.0.0.1. Each query is checked to give the
same series from both, then an aiohttp load generator (in this process) keeps ``BENCH_API_CLIENTS``
requests in flight (32 by default; one connection each, keep-alive) until ``BENCH_API_REQUESTS``
requests completed or ``BENCH_API_SECONDS`` passed, whichever comes first; requests in flight at the
deadline are awaited and counted. Reported per server: completed requests per second, the p50 /
p99 latency, and the server's CPU time per request (utime + stime of all its threads over the run:
less sensitive to other load on the machine than requests per second). The two servers are loaded
one after the other, Prometheus first, ``BENCH_API_ROUNDS`` times (best round kept).

Queries: ``cheap`` is the instant query ``up`` (one series per target); ``medium`` is
``sum by (job) (rate(http_request_duration_seconds_bucket[5m]))`` over the last hour at a 15 s step
(24 input series per target: 2,400 at the default 100 targets).

Knobs: ``BENCH_API_TARGETS`` (100), ``BENCH_API_CLIENTS`` (32), ``BENCH_API_SECONDS`` (20),
``BENCH_API_REQUESTS`` (20000), ``BENCH_API_ROUNDS`` (1), ``BENCH_API_PROFILE=1`` also samples
``narthex serve`` with py-spy (if installed in the venv) under each load and prints what dominates;
``BENCH_API_NARTHEX_FLAGS`` adds flags to ``narthex serve`` (e.g.
``--storage.tsdb.decoded-chunks-cache-size=0B`` to measure without the decoded-chunk cache).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.common import (
    PYTHON,
    REPO,
    Row,
    cpu_seconds,
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
END_S = (START_MS + int(HOURS * 3_600_000)) / 1000
CONFIG = "global:\n  scrape_interval: 15s\n  evaluation_interval: 1m\n"


@dataclass(frozen=True)
class Query:
    """One benchmarked request: a name, the API path and its parameters."""

    name: str
    path: str
    params: tuple[tuple[str, str], ...]

    def url(self, base: str) -> str:
        return f"{base}{self.path}?{urllib.parse.urlencode(self.params)}"


QUERIES = (
    Query("cheap: instant up", "/api/v1/query", (("query", "up"), ("time", f"{END_S - 1:.3f}"))),
    Query(
        "medium: sum by (job) (rate(...[5m])) 1h/15s",
        "/api/v1/query_range",
        (
            ("query", "sum by (job) (rate(http_request_duration_seconds_bucket[5m]))"),
            ("start", f"{END_S - 3600:.3f}"),
            ("end", f"{END_S:.3f}"),
            ("step", "15"),
        ),
    ),
)


@dataclass
class LoadResult:
    """What one load run measured."""

    completed: int
    errors: int
    seconds: float
    latencies: list[float]
    cpu_s: float = 0.0  # CPU time the server used during the run (all its threads)

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_s * 1000 / max(self.completed, 1)

    @property
    def rps(self) -> float:
        return self.completed / self.seconds

    def quantile(self, q: float) -> float:
        """Latency quantile in seconds (nearest rank)."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


async def _load(url: str, clients: int, max_requests: int, seconds: float) -> LoadResult:
    """Keep ``clients`` requests in flight until ``max_requests`` are done or ``seconds`` passed."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    timeout = aiohttp.ClientTimeout(total=600)
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.perf_counter()
        deadline = began + seconds

        async def client() -> None:
            nonlocal issued, errors
            while issued < max_requests and time.perf_counter() < deadline:
                issued += 1
                t0 = time.perf_counter()
                async with session.get(url) as resp:
                    await resp.read()
                    ok = resp.status == 200
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    return LoadResult(len(latencies), errors, elapsed, latencies)


def load(url: str, clients: int, max_requests: int, seconds: float, pid: int | None = None) -> LoadResult:
    """Run one bounded load against ``url`` (a short warm-up first); with ``pid``, also the CPU
    time that process used during the measured run."""
    asyncio.run(_load(url, min(clients, 4), 8, 5.0))
    before = cpu_seconds(pid) if pid else 0.0
    result = asyncio.run(_load(url, clients, max_requests, seconds))
    if pid:
        result.cpu_s = cpu_seconds(pid) - before
    return result


def _result(url: str) -> list[dict]:
    with urllib.request.urlopen(url, timeout=600) as resp:
        doc = json.loads(resp.read())
    if doc.get("status") != "success":
        raise RuntimeError(f"query failed: {doc}")
    return doc["data"]["result"]


def _same_answer(prom_url: str, nx_url: str) -> int:
    """Check both servers return the same series and values (to 9 digits); the series count."""

    def norm(result: list[dict]) -> list[tuple[str, list]]:
        out = []
        for series in result:
            points = series.get("values") or [series["value"]]
            out.append(
                (json.dumps(series["metric"], sort_keys=True), [(t, f"{float(v):.9g}") for t, v in points])
            )
        return sorted(out)

    theirs, ours = norm(_result(prom_url)), norm(_result(nx_url))
    if theirs != ours:
        raise RuntimeError(f"different answers for {nx_url}: {theirs[:2]} vs {ours[:2]}")
    return len(ours)


_AREAS = (  # (area, substring of a frame's file), first match from the leaf up wins
    ("tsdb (narthex/tsdb)", "narthex/tsdb/"),
    ("promql engine (narthex/promql)", "narthex/promql/"),
    ("API handlers + JSON (narthex/web/api)", "narthex/web/api/"),
    ("web middleware, metrics (narthex/web)", "narthex/web/"),
    ("aiohttp (HTTP parsing, gzip, writing)", "aiohttp/"),
    ("asyncio / uvloop / threads", "asyncio/"),
)


def _area(frames: list[str]) -> str:
    """The innermost narthex or library area a stack's leaf belongs to (numpy counts for its caller)."""
    for frame in reversed(frames):
        for area, marker in _AREAS:
            if marker in frame:
                return area
    return "other"


def _profile(pid: int, url: str, clients: int, seconds: int) -> None:
    """Sample ``narthex serve`` with py-spy (``--gil``: the thread holding the GIL, i.e. Python CPU
    time) under load; print the time per area, the top functions (inclusive) and the hottest lines."""
    spy = Path(PYTHON).parent / "py-spy"
    if not spy.exists():
        print("(py-spy not installed in the venv: no profile)")
        return
    with tempfile.TemporaryDirectory(prefix="bench-api-spy-") as tmp:
        out = Path(tmp) / "raw.txt"
        if _record(spy, pid, url, clients, seconds, out):
            _summarise(out.read_text(), seconds)


def _record(spy: Path, pid: int, url: str, clients: int, seconds: int, out: Path) -> bool:
    """py-spy samples of ``pid`` into ``out`` while ``url`` is under load; False if py-spy failed."""
    runner = threading.Thread(target=load, args=(url, clients, 10**9, seconds + 2), daemon=True)
    runner.start()
    try:
        cmd = [str(spy), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200"]
        cmd += ["--format", "raw", "--gil", "--nonblocking", "-o", str(out)]
        spied = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        runner.join()
    if spied.returncode != 0:
        print(f"(py-spy failed: {spied.stderr.strip()[:300]})")
    return spied.returncode == 0


def _summarise(raw: str, seconds: int) -> None:
    """Print time per area, top inclusive functions and hottest lines of py-spy's raw output."""
    areas: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")
        count = int(count_text)
        total += count
        area = _area(frames)
        areas[area] = areas.get(area, 0) + count
        keys = set()
        for frame in frames:
            name, _, where = frame.partition(" (")
            keys.add(f"{name} ({where.rsplit('site-packages/', 1)[-1].split(':')[0]})")
        for key in keys:
            inclusive[key] = inclusive.get(key, 0) + count
        name, _, where = frames[-1].partition(" (")
        leaf = f"{name} ({where.rsplit('/', 1)[-1]}"
        own[leaf] = own.get(leaf, 0) + count
    if total == 0:
        print("(no samples: the server never held the GIL while sampled)")
        return
    print(f"GIL-holding samples: {total} ({seconds} s at 200 Hz: {total / (2 * seconds):.0f}% of one core)")
    print("by area (the leaf's innermost narthex/library frame):")
    for key, count in sorted(areas.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * count / total:5.1f}%  {key}")
    print("inclusive (top functions below the event loop / thread bootstrap):")
    skip = (
        "threading.py",
        "thread.py",
        "runpy",
        "__main__",
        "cli/",
        "runners.py",
        "base_events",
        "events.py",
    )
    ranked = [
        kv for kv in sorted(inclusive.items(), key=lambda kv: -kv[1]) if not any(s in kv[0] for s in skip)
    ]
    for key, count in ranked[:18]:
        print(f"  {100 * count / total:5.1f}%  {key}")
    print("self (hottest lines):")
    for key, count in sorted(own.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {100 * count / total:5.1f}%  {key}")


def main() -> int:
    prometheus, promtool = which("prometheus"), which("promtool")
    if prometheus is None or promtool is None:
        print("skipped: prometheus/promtool not installed")
        return 0
    targets = env_int("BENCH_API_TARGETS", 100)
    clients = env_int("BENCH_API_CLIENTS", 32)
    seconds = env_int("BENCH_API_SECONDS", 20)
    max_requests = env_int("BENCH_API_REQUESTS", 20_000)
    rounds = env_int("BENCH_API_ROUNDS", 1)
    profile = os.environ.get("BENCH_API_PROFILE") == "1"
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        work = Path(tmp)
        om = work / "data.om"
        samples = generate_openmetrics(om, targets=targets, hours=HOURS, interval_s=15, start_ms=START_MS)
        print(
            f"data: {targets} targets x {series_per_target()} series = {targets * series_per_target()} "
            f"series, {samples:,} samples over {HOURS:g} h at 15 s"
        )
        prom_dir, nx_dir = work / "prom", work / "narthex"
        with timed() as elapsed:
            subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(om), str(prom_dir)],
                           check=True, capture_output=True)  # fmt: skip
        print(f"promtool backfill: {elapsed():.1f} s")
        with timed() as elapsed:
            subprocess.run([PYTHON, "-m", "narthex", "tsdb", "create-blocks-from", "openmetrics", str(om),
                            str(nx_dir)], check=True, capture_output=True, cwd=REPO)  # fmt: skip
        print(f"narthex backfill: {elapsed():.1f} s")
        om.unlink()
        config = work / "config.yml"
        config.write_text(CONFIG)
        prom_port, nx_port = free_port(), free_port()
        common = [f"--config.file={config}", "--storage.tsdb.retention.time=100y"]
        prom_cmd = [prometheus, *common, f"--storage.tsdb.path={prom_dir}"]
        extra = os.environ.get("BENCH_API_NARTHEX_FLAGS", "").split()
        nx_cmd = [PYTHON, "-m", "narthex", "serve", *common, f"--storage.tsdb.path={nx_dir}", *extra]
        procs = []
        try:
            prom = start(
                [*prom_cmd, f"--web.listen-address=127.0.0.1:{prom_port}"], log=work / "prometheus.log"
            )
            procs.append(prom)
            nx = start(
                [*nx_cmd, f"--web.listen-address=127.0.0.1:{nx_port}"], log=work / "narthex.log", cwd=REPO
            )
            procs.append(nx)
            prom_base, nx_base = f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{nx_port}"
            wait_http(prom_base + "/-/ready", proc=prom)
            wait_http(nx_base + "/-/ready", timeout=120, proc=nx)
            print(f"load average before the load: {os.getloadavg()}")
            rows: list[Row] = []
            for query in QUERIES:
                n_series = _same_answer(query.url(prom_base), query.url(nx_base))
                best: dict[str, LoadResult] = {}
                for _ in range(rounds):
                    for who, base, pid in (("prometheus", prom_base, prom.pid), ("narthex", nx_base, nx.pid)):
                        got = load(query.url(base), clients, max_requests, seconds, pid)
                        if got.errors:
                            raise RuntimeError(f"{who}: {got.errors} failed requests for {query.name}")
                        if who not in best or got.rps > best[who].rps:
                            best[who] = got
                ours, theirs = best["narthex"], best["prometheus"]
                label = f"{query.name} [{n_series} series out]"
                print(
                    f"{label}: narthex {ours.completed} requests in {ours.seconds:.1f} s, "
                    f"prometheus {theirs.completed} in {theirs.seconds:.1f} s; "
                    f"p50 {statistics.median(ours.latencies) * 1000:.1f} / "
                    f"{statistics.median(theirs.latencies) * 1000:.1f} ms"
                )
                rows.append(Row(f"{query.name} req/s", ours.rps, theirs.rps, "1/s", False, ">= 1.0"))
                rows.append(Row(f"{query.name} p99", ours.quantile(0.99) * 1000,
                                theirs.quantile(0.99) * 1000, "ms"))  # fmt: skip
                rows.append(Row(f"{query.name} server CPU per request", ours.cpu_ms_per_request,
                                theirs.cpu_ms_per_request, "ms"))  # fmt: skip
            print_table(f"HTTP API, {clients} concurrent clients, up to {seconds} s per run", rows)
            print(f"load average after the run: {os.getloadavg()}")
            if profile:
                for query in QUERIES:
                    print(f"-- py-spy profile of narthex serve under {query.name}")
                    _profile(nx.pid, query.url(nx_base), clients, 10)
        finally:
            for proc in procs:
                stop(proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
