"""Shared benchmark helpers: reference binaries on free local ports, RSS, timing, ratio tables, and a
realistic OpenMetrics generator (counters, gauges, classic histograms, summaries, ms jitter)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


# -- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def which(name: str) -> str | None:
    """Path of a reference binary, or None (the benchmark then reports it as skipped)."""
    return shutil.which(name)


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> float:
    """Poll ``url`` until it answers 200; returns the seconds waited."""
    start = time.perf_counter()
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while waiting for {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return time.perf_counter() - start
        except OSError:
            pass
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{url} not ready after {timeout}s")
        time.sleep(0.05)


def start(cmd: list[str], log: Path | None = None, **kw) -> subprocess.Popen:
    """Start a process in its own session, output to ``log`` (or discarded)."""
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Signal a process we started and wait for it (SIGKILL if it does not exit)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_measured(cmd: list[str], **kw) -> tuple[float, int]:
    """Run a command to completion (it must succeed); returns (wall seconds, peak RSS bytes)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, **kw)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return time.perf_counter() - t0, usage.ru_maxrss * 1024


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_rss() -> int:
    return rss_bytes(os.getpid())


def dir_bytes(path: Path, skip: tuple[str, ...] = ()) -> int:
    """Apparent size of all files under ``path`` (names in ``skip`` excluded)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            if name not in skip:
                total += os.path.getsize(os.path.join(root, name))
    return total


@contextlib.contextmanager
def timed() -> Iterator[Callable[[], float]]:
    """``with timed() as elapsed: ...; elapsed()`` in seconds."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def env_int(name: str, default: int) -> int:
    """A size knob from the environment (``BENCH_...``)."""
    return int(os.environ.get(name, default))


# -- reporting ----------------------------------------------------------------------------------


@dataclass
class Row:
    """One benchmark figure: ours vs the reference, and whether lower is better."""

    what: str
    narthex: float
    reference: float | None
    unit: str
    lower_is_better: bool = True
    target: str = ""


def print_table(title: str, rows: list[Row]) -> None:
    """A small ratio table: ratio = narthex / reference."""
    print(f"-- {title}")
    print(f"{'metric':<44} {'narthex':>14} {'reference':>14} {'ratio':>7}  target")
    for r in rows:
        ref = f"{r.reference:,.3f}" if r.reference is not None else "n/a"
        ratio = f"{r.narthex / r.reference:.2f}" if r.reference else "n/a"
        print(f"{r.what + ' (' + r.unit + ')':<44} {r.narthex:>14,.3f} {ref:>14} {ratio:>7}  {r.target}")
    sys.stdout.flush()


# -- data ---------------------------------------------------------------------------------------

HIST_BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf")
QUANTILES = ("0.5", "0.9", "0.99")


def _ts(t_ms: int) -> str:
    return f"{t_ms // 1000}.{t_ms % 1000:03d}"


def generate_openmetrics(
    path: Path,
    targets: int = 10,
    hours: float = 2.0,
    interval_s: int = 5,
    start_ms: int = 1_700_000_000_000,
    jitter_ms: int = 25,
    seed: int = 1,
) -> int:
    """Write an OpenMetrics file and return its sample count.

    Per target (``instance``): 8 counters (method x code), 4 gauges, one classic histogram (12
    buckets + _sum + _count) per 2 handlers, one summary (3 quantiles + _sum + _count) and a ``up``
    gauge: 70 series per target. Each target scrapes every ``interval_s`` with its own phase and
    +-``jitter_ms`` uniform millisecond jitter, as a real scrape loop does.
    """
    rng = random.Random(seed)
    steps = int(hours * 3600 / interval_s)
    instances = [f"10.0.{i // 250}.{i % 250}:9100" for i in range(targets)]
    times = {}
    for inst in instances:
        phase = rng.randrange(interval_s * 1000)
        times[inst] = [
            start_ms + phase + k * interval_s * 1000 + rng.randint(-jitter_ms, jitter_ms)
            for k in range(steps)
        ]
    count = 0
    with open(path, "w") as f:
        w = f.write
        w("# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n")
        for inst in instances:
            for method in ("GET", "POST"):
                for code in ("200", "404", "500", "503"):
                    rate = rng.uniform(0.1, 50) if code == "200" else rng.uniform(0, 0.5)
                    value = float(rng.randrange(1000))
                    labels = f'code="{code}",instance="{inst}",job="node",method="{method}"'
                    lbl = f"http_requests_total{{{labels}}} "
                    for t in times[inst]:
                        value += rng.expovariate(1 / (rate * interval_s)) if rate else 0.0
                        w(f"{lbl}{round(value)} {_ts(t)}\n")
                        count += 1
        w("# HELP node_memory_free_bytes Free memory.\n# TYPE node_memory_free_bytes gauge\n")
        for inst in instances:
            for dev in ("a", "b", "c", "d"):
                value = rng.uniform(1e9, 8e9)
                lbl = f'node_memory_free_bytes{{device="{dev}",instance="{inst}",job="node"}} '
                for t in times[inst]:
                    value = max(0.0, value + rng.gauss(0, 5e6))
                    w(f"{lbl}{round(value)} {_ts(t)}\n")
                    count += 1
        w("# HELP temperature_celsius Temperature.\n# TYPE temperature_celsius gauge\n")
        for inst in instances:
            value = rng.uniform(30, 60)
            lbl = f'temperature_celsius{{instance="{inst}",job="node"}} '
            for t in times[inst]:
                value += rng.gauss(0, 0.1)
                w(f"{lbl}{value:.2f} {_ts(t)}\n")
                count += 1
        w("# HELP http_request_duration_seconds Latency.\n# TYPE http_request_duration_seconds histogram\n")
        for inst in instances:
            for handler in ("/api", "/metrics"):
                cum = [0] * len(HIST_BUCKETS)
                total = 0.0
                base = f'handler="{handler}",instance="{inst}",job="node"'
                for t in times[inst]:
                    for _ in range(rng.randrange(0, 20)):
                        obs = rng.lognormvariate(-3, 1.2)
                        total += obs
                        for i, b in enumerate(HIST_BUCKETS):
                            if b == "+Inf" or obs <= float(b):
                                cum[i] += 1
                    ts = _ts(t)
                    for b, c in zip(HIST_BUCKETS, cum, strict=True):
                        w(f'http_request_duration_seconds_bucket{{{base},le="{b}"}} {c} {ts}\n')
                    w(f"http_request_duration_seconds_count{{{base}}} {cum[-1]} {ts}\n")
                    w(f"http_request_duration_seconds_sum{{{base}}} {total:.6f} {ts}\n")
                    count += len(HIST_BUCKETS) + 2
        w("# HELP rpc_duration_seconds RPC latency.\n# TYPE rpc_duration_seconds summary\n")
        for inst in instances:
            n = 0
            total = 0.0
            base = f'instance="{inst}",job="node"'
            for t in times[inst]:
                k = rng.randrange(1, 30)
                n += k
                total += k * rng.uniform(0.01, 0.05)
                ts = _ts(t)
                for q in QUANTILES:
                    w(f'rpc_duration_seconds{{{base},quantile="{q}"}} {rng.uniform(0.001, 0.2):.4f} {ts}\n')
                w(f"rpc_duration_seconds_count{{{base}}} {n} {ts}\n")
                w(f"rpc_duration_seconds_sum{{{base}}} {total:.5f} {ts}\n")
                count += len(QUANTILES) + 2
        w("# TYPE up gauge\n")
        for inst in instances:
            for t in times[inst]:
                w(f'up{{instance="{inst}",job="node"}} 1 {_ts(t)}\n')
                count += 1
        w("# EOF\n")
    return count


def series_per_target() -> int:
    """Series :func:`generate_openmetrics` writes per target."""
    return 8 + 4 + 1 + 2 * (len(HIST_BUCKETS) + 2) + (len(QUANTILES) + 2) + 1


def bench_labels(n: int) -> list[tuple[tuple[str, str], ...]]:
    """``n`` sorted label sets: 100 metric names x pods, each with instance/job/namespace/pod."""
    out = []
    for i in range(n):
        out.append(
            (
                ("__name__", f"bench_metric_{i % 100}_total"),
                ("instance", f"10.1.{(i // 100) % 256}.{i // 25600}:8080"),
                ("job", "bench"),
                ("namespace", f"ns-{(i // 1000) % 20}"),
                ("pod", f"pod-{i // 100:06d}"),
            )
        )
    return out


def write_labels_file(path: Path, n: int) -> None:
    """The label sets in ``promtool tsdb bench write``'s input format (one JSON object per line)."""
    import json

    with open(path, "w") as f:
        for lb in bench_labels(n):
            f.write(json.dumps(dict(lb)) + "\n")
