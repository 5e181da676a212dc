"""Scraping: Narthex and Prometheus scraping the same static targets, concurrently, in the same run.

N targets (``BENCH_SCRAPE_TARGETS``, default 100) x S series (``BENCH_SCRAPE_SERIES``, default 1000)
of Prometheus text exposition (counters, gauges, classic histograms with a few labels) are served as
static files by nginx on 127.0.0.1, one port per target. Each target has V versions of its file
(``BENCH_SCRAPE_VERSIONS``, default 6) with advancing values; a symlink is rotated every interval so
that values change between scrapes. Both servers scrape every target every 5 s
(``BENCH_SCRAPE_INTERVAL``), each pinned to its own core with ``taskset`` (Prometheus gets core 0, so
Go sees one CPU: ``GOMAXPROCS=1``; Narthex, one asyncio thread, gets core 1); nginx and this driver
are not pinned.

After a warm-up (``BENCH_SCRAPE_WARMUP``, default 30 s) the measurement window
(``BENCH_SCRAPE_SECONDS``, default 180 s) yields per server: CPU seconds (utime + stime of
``/proc/<pid>/stat``) per million samples appended (``prometheus_tsdb_head_samples_appended_total``),
RSS at the end, and scrape-interval jitter (``prometheus_target_interval_length_seconds`` quantiles
minus the interval; both servers' summaries cover the last 10 minutes, so start-up is included unless
the warm-up exceeds 600 s). Also printed: the slowest scrape in the window, when (since start) any
scrape took over 0.5 s, Narthex's full gc collections in the window, and with
``BENCH_SCRAPE_WATCHDOG=1`` the episodes in which Narthex's event-loop thread was never idle for
over 0.3 s (length, CPU used meanwhile, stacks). With ``BENCH_SCRAPE_PROFILE`` > 0, Narthex is
then sampled with py-spy for that many seconds (after the window, so that profiling does not
distort the figures) and the functions that dominate its CPU are printed
(``BENCH_SCRAPE_PROFILE_NATIVE=1`` adds C frames).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    PYTHON,
    Row,
    cpu_seconds,
    env_int,
    print_table,
    rss_bytes,
    start,
    stop,
    wait_http,
    which,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")
QUANTILES = ("0.5", "0.9", "0.99")
# Runs ``narthex`` with a gc callback that logs every full (generation 2) collection and its pause,
# and (BENCH_SCRAPE_WATCHDOG=1) a thread that samples the main thread 20 times a second and logs
# episodes of over 0.3 s in which it was never idle: their length, the main thread's CPU seconds
# meanwhile (about the length: busy; about 0: descheduled or blocked) and the stacks seen.
GC_WRAPPER = """
import collections, gc, os, sys, threading, time
_start = [0.0]
def _log(phase, info):
    if info["generation"] == 2:
        if phase == "start":
            _start[0] = time.perf_counter()
        else:
            sys.stderr.write(f"BENCH-GC2 {time.time():.3f} {time.perf_counter() - _start[0]:.4f}\\n")
gc.callbacks.append(_log)
_MAIN, _TID = threading.main_thread().ident, threading.get_native_id()
def _cpu():
    with open(f"/proc/self/task/{_TID}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
def _watch():
    since, cpu0, seen = None, 0.0, collections.Counter()
    while True:
        time.sleep(0.05)
        frame = sys._current_frames().get(_MAIN)
        idle = frame is None or (frame.f_code.co_name == "run" and "runners" in frame.f_code.co_filename)
        now = time.monotonic()
        if not idle:
            if since is None:
                since, cpu0, seen = now, _cpu(), collections.Counter()
            names = []
            while frame is not None and len(names) < 4:
                names.append(frame.f_code.co_name)
                frame = frame.f_back
            seen["<".join(names)] += 1
        elif since is not None:
            if now - since > 0.3:
                top = "; ".join(f"{k} x{v}" for k, v in seen.most_common(3))
                sys.stderr.write(
                    f"BENCH-STALL {time.time():.3f} {now - since:.2f}s cpu {_cpu() - cpu0:.2f}s {top}\\n"
                )
            since = None
if os.environ.get("BENCH_SCRAPE_WATCHDOG") == "1":
    threading.Thread(target=_watch, daemon=True).start()
sys.argv[0] = "narthex"
from narthex.cli.main import entry
entry()
"""
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


# -- targets ------------------------------------------------------------------------------------


def exposition(series: int, version: int, seed: int) -> str:
    """One target's text exposition with ``series`` series; values advance with ``version``.

    About 56% histogram series (handler x method, 12 buckets + _sum + _count), 24% counters
    (handler x method x code) and the rest gauges (device x fstype x mountpoint).
    """
    rng = random.Random(seed)
    n_hist = max(1, round(series * 0.04))
    n_counter = max(1, round(series * 0.24))
    n_gauge = max(0, series - n_hist * (len(BUCKETS) + 2) - n_counter)
    out: list[str] = []
    w = out.append
    w("# HELP http_requests_total Total HTTP requests.\n# TYPE http_requests_total counter\n")
    for i in range(n_counter):
        handler, method, code = f"/api/v1/h{i // 6:03d}", ("GET", "POST")[i % 2], ("200", "404", "500")[i % 3]
        rate = rng.uniform(0.1, 100.0)
        value = int(rng.uniform(0, 1e6) + rate * 5 * version)
        w(f'http_requests_total{{code="{code}",handler="{handler}",method="{method}"}} {value}\n')
    w(
        "# HELP http_request_duration_seconds HTTP request latency.\n"
        "# TYPE http_request_duration_seconds histogram\n"
    )
    for i in range(n_hist):
        labels = f'handler="/api/v1/h{i // 2:03d}",method="{("GET", "POST")[i % 2]}"'
        total = int(rng.uniform(1e3, 1e6)) + version * rng.randrange(1, 500)
        cum = 0
        for b in BUCKETS:
            cum = total if b == "+Inf" else min(total, cum + int(total * rng.uniform(0.0, 0.3)))
            w(f'http_request_duration_seconds_bucket{{{labels},le="{b}"}} {cum}\n')
        w(f"http_request_duration_seconds_sum{{{labels}}} {total * rng.uniform(0.01, 0.2):.6f}\n")
        w(f"http_request_duration_seconds_count{{{labels}}} {total}\n")
    w("# HELP node_filesystem_avail_bytes Filesystem space available.\n")
    w("# TYPE node_filesystem_avail_bytes gauge\n")
    for i in range(n_gauge):
        value = rng.uniform(1e9, 1e12) - version * rng.uniform(0, 1e6)
        fstype = ("ext4", "xfs", "tmpfs")[i % 3]
        w(
            f'node_filesystem_avail_bytes{{device="/dev/sd{i:04d}",fstype="{fstype}",'
            f'mountpoint="/mnt/d{i:04d}"}} {value:.7g}\n'
        )
    return "".join(out)


def write_targets(root: Path, targets: int, series: int, versions: int) -> list[Path]:
    """``root/tNNN/v<k>.prom`` for every target and version, plus the ``metrics`` symlink to v0."""
    dirs = []
    for t in range(targets):
        d = root / f"t{t:03d}"
        d.mkdir(parents=True)
        for v in range(versions):
            (d / f"v{v}.prom").write_text(exposition(series, v, seed=t))
        (d / "metrics").symlink_to("v0.prom")
        dirs.append(d)
    return dirs


def rotate(dirs: list[Path], version: int) -> None:
    """Point every target's ``metrics`` at ``v<version>.prom`` (atomic rename of a new symlink)."""
    for d in dirs:
        tmp = d / "metrics.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(f"v{version}.prom")
        os.replace(tmp, d / "metrics")


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports on 127.0.0.1 (all bound at once, then released)."""
    import socket

    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def nginx_config(root: Path, dirs: list[Path], ports: list[int]) -> Path:
    """A foreground nginx config serving ``<dir>/metrics`` at ``http://127.0.0.1:<port>/metrics``."""
    servers = "\n".join(
        f"  server {{ listen 127.0.0.1:{p}; root {d}; location = /metrics {{ }} }}"
        for d, p in zip(dirs, ports, strict=True)
    )
    conf = root / "nginx.conf"
    conf.write_text(
        f"""daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  types {{ }}
  default_type "{CONTENT_TYPE}";
  keepalive_requests 100000;
  keepalive_timeout 120s;
  client_body_temp_path {root}/tmp-body;
  proxy_temp_path {root}/tmp-proxy;
  fastcgi_temp_path {root}/tmp-fastcgi;
  uwsgi_temp_path {root}/tmp-uwsgi;
  scgi_temp_path {root}/tmp-scgi;
{servers}
}}
"""
    )
    return conf


def scrape_config(path: Path, ports: list[int], interval_s: int) -> None:
    """The one config both servers load: a single job over every target."""
    targets = ", ".join(f'"127.0.0.1:{p}"' for p in ports)
    path.write_text(
        f"""global:
  scrape_interval: {interval_s}s
  scrape_timeout: {max(1, interval_s - 1)}s
scrape_configs:
  - job_name: bench
    static_configs:
      - targets: [{targets}]
"""
    )


# -- measuring ----------------------------------------------------------------------------------


def fetch_metrics(base: str) -> dict[str, list[tuple[str, float]]]:
    """``/metrics`` of a server as {name: [(labels text, value)]}."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    out: dict[str, list[tuple[str, float]]] = collections.defaultdict(list)
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m is not None:
            out[m.group(1)].append((m.group(2) or "", float(m.group(3))))
    return out


def metric_sum(metrics: dict[str, list[tuple[str, float]]], name: str) -> float:
    return sum(v for _, v in metrics.get(name, []))


def interval_quantiles(metrics: dict[str, list[tuple[str, float]]], interval: str) -> dict[str, float]:
    """``prometheus_target_interval_length_seconds`` quantiles for one interval, by quantile text."""
    out = {}
    for labels, value in metrics.get("prometheus_target_interval_length_seconds", []):
        lab = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if lab.get("interval") == interval and "quantile" in lab:
            out[str(float(lab["quantile"]))] = value
    return out


def query_scalar(base: str, expr: str) -> float | None:
    """The single value of an instant query, or None."""
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            result = json.load(resp)["data"]["result"]
    except (OSError, KeyError, ValueError):
        return None
    return float(result[0]["value"][1]) if result else None


@dataclass
class Snapshot:
    """What one server's counters say at one instant."""

    cpu_s: float
    samples: float


def snapshot(pid: int, base: str) -> Snapshot:
    metrics = fetch_metrics(base)
    return Snapshot(cpu_seconds(pid), metric_sum(metrics, "prometheus_tsdb_head_samples_appended_total"))


@dataclass
class Result:
    """One server's figures over the measurement window."""

    name: str
    cpu_s: float
    samples: float
    rss: int
    jitter_ms: dict[str, float]
    up: float | None
    max_scrape_s: float | None
    gc_pauses: list[float] | None = None

    @property
    def cpu_per_million(self) -> float:
        return self.cpu_s / (self.samples / 1e6) if self.samples else float("nan")


def slow_scrapes(base: str, since: float, until: float, step: int, over_s: float = 0.5) -> list[str]:
    """When (seconds after ``since``) the slowest scrape of an interval took more than ``over_s``."""
    params = {"query": "max(scrape_duration_seconds)", "start": since, "end": until, "step": step}
    url = f"{base}/api/v1/query_range?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            result = json.load(resp)["data"]["result"]
    except (OSError, KeyError, ValueError):
        return ["(query failed)"]
    points = result[0]["values"] if result else []
    return [f"t+{float(t) - since:.0f}s: {float(v):.2f}s" for t, v in points if float(v) > over_s]


def git_state() -> str:
    """HEAD and the modified files under src/ (benchmarks run the working tree)."""
    from bench.common import REPO

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--", "src").splitlines()
    return f"{git('rev-parse', '--short', 'HEAD')}, {len(dirty)} modified file(s) under src/"


def gc_pauses(log: Path, t0: float, t1: float) -> list[float]:
    """Pauses (s) of the full collections :data:`GC_WRAPPER` logged between ``t0`` and ``t1``."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("BENCH-GC2 "):
            _, when, pause = line.split()
            if t0 <= float(when) <= t1:
                out.append(float(pause))
    return out


# -- profiling ----------------------------------------------------------------------------------


def summarize_profile(raw: Path, top: int = 15) -> None:
    """Print the functions with the most samples (self, then inclusive) from py-spy's raw output."""
    self_counts: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")]
        if frames[-1].startswith(("epoll_wait", "epoll_pwait")) or any(
            f.startswith("PyThread_acquire_lock_timed") for f in frames
        ):
            continue  # idle, as native (--native) profiles report it
        total += count
        self_counts[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    if not total:
        print("profile: no samples")
        return
    print(f"-- profile: {total} samples (non-idle)")
    print("self%  function")
    for name, n in self_counts.most_common(top):
        print(f"{100 * n / total:5.1f}  {name}")
    print("incl%  function")
    for name, n in incl.most_common(top + 10):
        print(f"{100 * n / total:5.1f}  {name}")


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` as ``func (file.py)``; line numbers merged."""
    m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if m is None:
        return frame
    path = m.group(2)
    marker = "site-packages/"
    if marker in path:
        path = path.split(marker, 1)[1]
    elif "/src/" in path:
        path = path.split("/src/", 1)[1]
    else:
        path = os.path.basename(path)
    return f"{m.group(1)} ({path})"


# -- the run ------------------------------------------------------------------------------------


class Rotator:
    """Rotates the targets' file versions once per interval while the driver waits."""

    def __init__(self, dirs: list[Path], versions: int, interval_s: float) -> None:
        self.dirs = dirs
        self.versions = versions
        self.interval_s = interval_s
        self.version = 0
        self.next = time.monotonic() + interval_s

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, rotating whenever an interval elapses."""
        end = time.monotonic() + seconds
        while (now := time.monotonic()) < end:
            if now >= self.next:
                self.version = (self.version + 1) % self.versions
                rotate(self.dirs, self.version)
                self.next += self.interval_s
            time.sleep(max(0.0, min(end, self.next) - time.monotonic()))


@contextlib.contextmanager
def started(cmd: list[str], log: Path, ready_url: str, timeout: float = 120.0) -> Iterator[int]:
    """Start a server, wait until ``ready_url`` answers, yield its pid; always stop it."""
    proc = start(cmd, log)
    try:
        wait_http(ready_url, timeout, proc)
        yield proc.pid
    finally:
        stop(proc)


def main() -> int:
    """Serve the targets, run both servers side by side, print their figures and the ratios."""
    targets = env_int("BENCH_SCRAPE_TARGETS", 100)
    series = env_int("BENCH_SCRAPE_SERIES", 1000)
    versions = env_int("BENCH_SCRAPE_VERSIONS", 6)
    interval = env_int("BENCH_SCRAPE_INTERVAL", 5)
    warmup = env_int("BENCH_SCRAPE_WARMUP", 30)
    seconds = env_int("BENCH_SCRAPE_SECONDS", 180)
    profile = env_int("BENCH_SCRAPE_PROFILE", 0)
    nginx, prometheus, taskset = which("nginx"), which("prometheus"), which("taskset")
    if nginx is None:
        print("skipped: nginx not installed (apt-get install nginx-light)")
        return 0
    cores = os.cpu_count() or 1
    pin = taskset is not None and cores >= 2

    def pinned(core: int, cmd: list[str]) -> list[str]:
        return [taskset, "-c", str(core), *cmd] if pin and taskset else cmd

    root = Path(tempfile.mkdtemp(prefix="bench-scrape-"))
    root.chmod(0o755)  # nginx workers run as an unprivileged user when started by root
    try:
        dirs = write_targets(root / "targets", targets, series, versions)
        for p in root.rglob("*"):
            if p.is_dir():
                p.chmod(0o755)
        size = (dirs[0] / "v0.prom").stat().st_size
        print(f"narthex tree: {git_state()}")
        print(
            f"{targets} targets x {series} series ({size:,} bytes each), {interval}s interval, "
            f"warm-up {warmup}s, window {seconds}s, {'pinned' if pin else 'not pinned'}"
        )
        ports = free_ports(targets + 2)
        conf = nginx_config(root, dirs, ports[:targets])
        config = root / "scrape.yml"
        scrape_config(config, ports[:targets], interval)
        n_port, p_port = ports[targets], ports[targets + 1]
        narthex_base, prom_base = f"http://127.0.0.1:{n_port}", f"http://127.0.0.1:{p_port}"
        nginx_cmd = [nginx, "-p", str(root), "-c", str(conf)]
        narthex_cmd = pinned(
            1,
            [
                PYTHON, "-c", GC_WRAPPER, "serve", f"--config.file={config}",
                f"--storage.tsdb.path={root / 'narthex-data'}", f"--web.listen-address=127.0.0.1:{n_port}",
                "--log.level=warn",
            ],
        )  # fmt: skip
        servers = [("narthex", narthex_cmd, narthex_base)]
        if prometheus is not None:
            prom_cmd = pinned(
                0,
                [
                    prometheus, f"--config.file={config}", f"--storage.tsdb.path={root / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{p_port}", "--log.level=warn",
                ],
            )  # fmt: skip
            servers.append(("prometheus", prom_cmd, prom_base))
        else:
            print("prometheus not installed: reference skipped")
        with contextlib.ExitStack() as stack:
            stack.enter_context(
                started(nginx_cmd, root / "nginx.log", f"http://127.0.0.1:{ports[0]}/metrics")
            )
            pids = {
                name: stack.enter_context(started(cmd, root / f"{name}.log", f"{base}/-/ready"))
                for name, cmd, base in servers
            }
            bases = {name: base for name, _, base in servers}
            started_at = time.time()
            rotator = Rotator(dirs, versions, interval)
            rotator.wait(warmup)
            load0, t0 = os.getloadavg(), time.time()
            before = {name: snapshot(pids[name], bases[name]) for name in pids}
            rotator.wait(seconds)
            after = {name: snapshot(pids[name], bases[name]) for name in pids}
            load1, t1 = os.getloadavg(), time.time()
            results = []
            for name in pids:
                metrics = fetch_metrics(bases[name])
                quantiles = interval_quantiles(metrics, f"{interval}s")
                results.append(
                    Result(
                        name,
                        after[name].cpu_s - before[name].cpu_s,
                        after[name].samples - before[name].samples,
                        rss_bytes(pids[name]),
                        {q: (v - interval) * 1000 for q, v in quantiles.items()},
                        query_scalar(bases[name], "sum(up)"),
                        query_scalar(bases[name], f"max(max_over_time(scrape_duration_seconds[{seconds}s]))"),
                    )
                )
            results[0].gc_pauses = gc_pauses(root / "narthex.log", t0, t1)
            for name in pids:
                slow = slow_scrapes(bases[name], started_at, t1, interval)
                print(f"{name}: scrapes over 0.5 s: {', '.join(slow) or 'none'}")
            log_lines = (root / "narthex.log").read_text(errors="replace").splitlines()
            for line in log_lines:
                if line.startswith("BENCH-STALL "):
                    _, when, rest = line.split(" ", 2)
                    print(f"narthex stall at t+{float(when) - started_at:.0f}s: {rest}")
            other = [line for line in log_lines if not line.startswith(("BENCH-GC2 ", "BENCH-STALL "))]
            if other:
                print("narthex log (last lines):", *other[-10:], sep="\n  ")
            report(results, load0, load1, seconds)
            if profile > 0:
                run_profile(root, pids["narthex"], profile, rotator)
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_profile(root: Path, pid: int, seconds: int, rotator: Rotator) -> None:
    """Sample Narthex with py-spy for ``seconds`` (the targets keep rotating) and summarise."""
    py_spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    if not os.path.exists(py_spy):
        print("profile skipped: py-spy not installed")
        return
    raw = root / "profile.txt"
    cmd = [py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "100"]
    cmd += ["--format", "raw", "--output", str(raw)]
    # --native (C frames: uvloop, numpy...) needs py-spy to pause the process while sampling.
    cmd += ["--native"] if os.environ.get("BENCH_SCRAPE_PROFILE_NATIVE") == "1" else ["--nonblocking"]
    proc = start(cmd, root / "py-spy.log")
    try:
        rotator.wait(seconds + 2)
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    finally:
        stop(proc)
    if raw.exists():
        summarize_profile(raw)
        keep = os.environ.get("BENCH_SCRAPE_PROFILE_OUT")
        if keep:
            shutil.copy(raw, keep)
    else:
        print("profile: py-spy wrote nothing; see", (root / "py-spy.log").read_text()[-500:])


def report(results: list[Result], load0: tuple[float, ...], load1: tuple[float, ...], seconds: int) -> None:
    """Print each server's figures and the narthex / prometheus ratio table."""
    for r in results:
        jit = ", ".join(f"p{float(q) * 100:g} {v:+.1f} ms" for q, v in sorted(r.jitter_ms.items()))
        print(
            f"{r.name}: cpu {r.cpu_s:.2f} s ({100 * r.cpu_s / seconds:.1f}% of a core), "
            f"samples {r.samples:,.0f} ({r.samples / seconds:,.0f}/s), "
            f"{r.cpu_per_million:.3f} cpu-s/M samples, rss {r.rss / 2**20:.0f} MiB, "
            f"sum(up) {r.up}, max scrape duration {1000 * (r.max_scrape_s or 0):.0f} ms, "
            f"interval jitter {jit}"
        )
        if r.gc_pauses is not None:
            longest = max(r.gc_pauses, default=0.0)
            print(f"{r.name}: {len(r.gc_pauses)} full gc collections in the window, longest {longest:.3f} s")
    print(f"load average at window start {load0[0]:.2f}, at end {load1[0]:.2f} (1-min)")
    by_name = {r.name: r for r in results}
    n, p = by_name["narthex"], by_name.get("prometheus")
    rows = [
        Row(
            "CPU per million samples",
            n.cpu_per_million,
            p.cpu_per_million if p else None,
            "s",
            target="<= 1.5",
        ),
        Row("RSS at end", n.rss / 2**20, p.rss / 2**20 if p else None, "MiB"),
    ]
    for q in ("0.5", "0.9", "0.99"):
        rows.append(
            Row(
                f"interval jitter p{float(q) * 100:g}",
                abs(n.jitter_ms.get(q, float("nan"))),
                abs(p.jitter_ms[q]) if p and q in p.jitter_ms else None,
                "ms, abs",
                target="< 100 ms" if q == "0.99" else "",
            )
        )
    print_table("scrape: narthex vs prometheus 2.42", rows)


if __name__ == "__main__":
    raise SystemExit(main())
