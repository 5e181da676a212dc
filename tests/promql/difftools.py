"""Differential-testing helpers: the same demo-shaped samples in Prometheus and in Narthex.

:func:`generate_demo` writes an OpenMetrics file (gauges, counters with resets, classic histograms,
series with gaps) and returns the exact samples it wrote; :class:`ReferenceServer` backfills that file
with ``promtool tsdb create-blocks-from openmetrics`` and runs ``prometheus`` on the blocks;
:func:`memory_storage` loads the same samples into a Narthex :class:`MemoryStorage`. Results of both
are brought to one canonical shape (:func:`from_prometheus_json`, :func:`from_narthex`) and compared
with :func:`compare` (identical label sets and timestamps, float tolerance on values).
"""

from __future__ import annotations

import json
import math
import random
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from narthex.model.labels import Labels
from narthex.promql.engine import Engine
from narthex.promql.storage import MemoryStorage
from narthex.promql.value import Matrix, PromQLError, Scalar, String, Vector

# 2023-11-14T20:00:00Z, a 2h block boundary (so promtool and any later loader cut the same blocks).
DEMO_START_MS = 1_699_992_000_000
HIST_BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf")

# ---------------------------------------------------------------------------------------------
# Data.


@dataclass
class DemoData:
    """What :func:`generate_demo` wrote: per series (sorted labels) its ms timestamps and values."""

    path: Path
    start_ms: int
    end_ms: int
    series: dict[Labels, tuple[list[int], list[float]]] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return sum(len(t) for t, _ in self.series.values())


def _om_ts(t_ms: int) -> str:
    return f"{t_ms // 1000}.{t_ms % 1000:03d}"


def _parse_ts(text: str) -> int:
    """Milliseconds as the OpenMetrics parser of Prometheus computes them: ``int64(seconds * 1000)``."""
    return int(float(text) * 1000)


def _fmt_labels(labels: Labels) -> str:
    body = ",".join(f'{k}="{v}"' for k, v in labels if k != "__name__")
    name = dict(labels)["__name__"]
    return f"{name}{{{body}}}" if body else name


class _Writer:
    """Accumulates one metric family's lines and the parsed samples behind them."""

    def __init__(self, data: DemoData, lines: list[str]) -> None:
        self.data = data
        self.lines = lines

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")

    def sample(self, labels: dict[str, str], t_ms: int, value_text: str) -> None:
        lbls: Labels = tuple(sorted(labels.items()))
        ts_text = _om_ts(t_ms)
        self.lines.append(f"{_fmt_labels(lbls)} {value_text} {ts_text}\n")
        ts, vs = self.data.series.setdefault(lbls, ([], []))
        ts.append(_parse_ts(ts_text))
        vs.append(float(value_text))


def generate_demo(
    path: Path,
    instances: int = 8,
    hours: float = 2.0,
    interval_s: int = 15,
    start_ms: int = DEMO_START_MS,
    seed: int = 42,
) -> DemoData:
    """Write a demo-shaped OpenMetrics file (about 45 series per instance) and return its samples.

    Every scrape time has a non-zero millisecond part, so no sample of the general families lies on
    the edge of a window whose bounds are whole seconds (where Prometheus 2.42's closed windows and
    Prometheus 3's left-open ones differ); ``demo_boundary_total`` (whole-second samples every 15 s)
    exists to exercise exactly that edge.
    """
    rng = random.Random(seed)
    steps = int(hours * 3600 / interval_s)
    insts = [f"host-{i}:9100" for i in range(instances)]
    jobs = {inst: ("api" if i % 2 == 0 else "worker") for i, inst in enumerate(insts)}
    times: dict[str, list[int]] = {}
    for inst in insts:
        phase = rng.randrange(interval_s) * 1000 + rng.randrange(100, 900)
        times[inst] = [start_ms + phase + k * interval_s * 1000 + rng.randint(-50, 50) for k in range(steps)]
    data = DemoData(path, start_ms, start_ms + int(hours * 3600_000) + interval_s * 1000)
    lines: list[str] = []
    w = _Writer(data, lines)

    def base(inst: str) -> dict[str, str]:
        return {"instance": inst, "job": jobs[inst]}

    w.family("demo_cpu_usage_seconds", "counter", "CPU seconds (with restarts).")
    for inst in insts:
        for mode in ("idle", "system", "user", "iowait"):
            value = rng.uniform(0, 1e4)
            speed = rng.uniform(0.01, 1.0) * interval_s
            resets = set(rng.sample(range(10, steps - 10), rng.randrange(0, 3)))
            for k, t in enumerate(times[inst]):
                value = rng.uniform(0, speed) if k in resets else value + rng.uniform(0, 2 * speed)
                w.sample(
                    {"__name__": "demo_cpu_usage_seconds_total", **base(inst), "mode": mode},
                    t,
                    f"{value:.3f}",
                )

    w.family("demo_requests", "counter", "Requests served.")
    for inst in insts:
        for method in ("GET", "POST"):
            for status in ("200", "404", "500"):
                value = float(rng.randrange(1000))
                lam = rng.uniform(0.1, 20) if status == "200" else rng.uniform(0, 0.5)
                reset_at = rng.randrange(steps // 3, steps) if rng.random() < 0.3 else -1
                for k, t in enumerate(times[inst]):
                    value = 0.0 if k == reset_at else value + rng.randrange(int(2 * lam * interval_s) + 1)
                    labels = {
                        "__name__": "demo_requests_total",
                        **base(inst),
                        "method": method,
                        "status": status,
                    }
                    w.sample(labels, t, f"{value:.0f}")

    w.family("demo_memory_bytes", "gauge", "Memory by type.")
    for inst in insts:
        for kind in ("cached", "free", "used"):
            value = rng.uniform(1e8, 4e9)
            for t in times[inst]:
                value = max(0.0, value + rng.gauss(0, 2e6))
                w.sample({"__name__": "demo_memory_bytes", **base(inst), "type": kind}, t, f"{value:.0f}")

    w.family("demo_angle", "gauge", "A value in [-1.5, 1.5] for trigonometry.")
    for inst in insts:
        for sensor in ("a", "b"):
            phase = rng.uniform(0, 6.3)
            for k, t in enumerate(times[inst]):
                value = 1.5 * math.sin(phase + k / 40) + rng.gauss(0, 0.01)
                w.sample({"__name__": "demo_angle", **base(inst), "sensor": sensor}, t, f"{value:.6f}")

    w.family(
        "demo_event_timestamp_seconds", "gauge", "Unix times of events, across leap years and month ends."
    )
    for inst in insts:
        for t in times[inst]:
            value = rng.uniform(946684800, 4102444800)  # 2000..2100
            w.sample({"__name__": "demo_event_timestamp_seconds", **base(inst)}, t, f"{value:.3f}")

    w.family("demo_items_in_queue", "gauge", "Queue length; scrapes missing in places.")
    for i, inst in enumerate(insts):
        value = 50.0
        # instance 0: a 3 minute gap (inside the lookback); 1: a 12 minute gap; 2: starts late; 3: ends early.
        for k, t in enumerate(times[inst]):
            minute = (t - start_ms) / 60_000
            if (i == 0 and 40 <= minute < 43) or (i == 1 and 50 <= minute < 62):
                continue
            if (i == 2 and minute < 30) or (i == 3 and minute > 90):
                continue
            if i == 4 and k % 7 == 3:
                continue
            value = max(0.0, value + rng.choice((-3, -1, 0, 1, 2, 4)))
            w.sample({"__name__": "demo_items_in_queue", **base(inst)}, t, f"{value:.0f}")

    w.family("demo_build_info", "gauge", "Build information (1 per instance).")
    for i, inst in enumerate(insts):
        labels = {"__name__": "demo_build_info", **base(inst), "version": f"1.{i % 3}.0", "revision": f"r{i}"}
        for t in times[inst]:
            w.sample(labels, t, "1")

    w.family("up", "gauge", "Target health.")
    for i, inst in enumerate(insts):
        for k, t in enumerate(times[inst]):
            down = i == 5 and 200 <= k < 230
            w.sample({"__name__": "up", **base(inst)}, t, "0" if down else "1")

    w.family("demo_request_duration_seconds", "histogram", "Request latency.")
    for inst in insts:
        for method in ("GET", "POST"):
            cum = [0] * len(HIST_BUCKETS)
            total = 0.0
            reset_at = rng.randrange(steps // 2, steps) if rng.random() < 0.25 else -1
            for k, t in enumerate(times[inst]):
                if k == reset_at:
                    cum = [0] * len(HIST_BUCKETS)
                    total = 0.0
                for _ in range(rng.randrange(0, 25)):
                    obs = rng.lognormvariate(-3, 1.3)
                    total += obs
                    for j, b in enumerate(HIST_BUCKETS):
                        if b == "+Inf" or obs <= float(b):
                            cum[j] += 1
                lb = {**base(inst), "method": method}
                for b, c in zip(HIST_BUCKETS, cum, strict=True):
                    w.sample({"__name__": "demo_request_duration_seconds_bucket", **lb, "le": b}, t, str(c))
                w.sample({"__name__": "demo_request_duration_seconds_count", **lb}, t, str(cum[-1]))
                w.sample({"__name__": "demo_request_duration_seconds_sum", **lb}, t, f"{total:.6f}")

    w.family("demo_boundary", "counter", "Whole-second samples, for the left-open window edge.")
    t0 = start_ms + 600_000
    for k in range(steps):
        w.sample({"__name__": "demo_boundary_total", "job": "edge"}, t0 + k * interval_s * 1000, str(k * 10))

    lines.append("# EOF\n")
    path.write_text("".join(lines))
    return data


def memory_storage(data: DemoData) -> MemoryStorage:
    """The demo samples in a Narthex MemoryStorage."""
    storage = MemoryStorage()
    for labels, (ts, vs) in data.series.items():
        storage.add_series(labels, ts, vs)
    return storage


# ---------------------------------------------------------------------------------------------
# The reference server.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backfill(promtool: str, openmetrics: Path, out_dir: Path) -> None:
    """``promtool tsdb create-blocks-from openmetrics FILE DIR``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(out_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"promtool backfill failed: {proc.stderr or proc.stdout}")


class ReferenceServer:
    """A ``prometheus`` process on 127.0.0.1 over a data directory, queried over its HTTP API."""

    def __init__(self, binary: str, data_dir: Path, workdir: Path, lookback: str = "5m") -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = workdir / "prometheus.yml"
        # evaluation_interval is the default subquery step: 1m, as the Narthex engine's default.
        config.write_text("global:\n  scrape_interval: 15s\n  evaluation_interval: 1m\n")
        self.log = workdir / "prometheus.log"
        self._log_file = open(self.log, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--query.lookback-delta={lookback}",
                "--storage.tsdb.retention.time=100y",
                "--log.level=warn",
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.close()
        raise TimeoutError("prometheus not ready")

    def get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """GET an API path; the decoded JSON body (error bodies too)."""
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())

    def instant(self, query: str, time_ms: int) -> dict[str, Any]:
        return self.get("/api/v1/query", {"query": query, "time": f"{time_ms / 1000:.3f}"})

    def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> dict[str, Any]:
        params = {
            "query": query,
            "start": f"{start_ms / 1000:.3f}",
            "end": f"{end_ms / 1000:.3f}",
            "step": f"{step_ms / 1000:.3f}",
        }
        return self.get("/api/v1/query_range", params)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


# ---------------------------------------------------------------------------------------------
# Canonical results and comparison.


@dataclass
class Outcome:
    """A query's result in one shape for both systems: a value (kind + series) or an error."""

    kind: str  # vector | matrix | scalar | string | error
    # labels -> (timestamps, values); vectors and scalars have one point per entry.
    series: dict[Labels, tuple[list[int], list[float]]] = field(default_factory=dict)
    order: list[Labels] = field(default_factory=list)
    text: str = ""  # string value
    error_type: str = ""
    error: str = ""

    def describe(self) -> str:
        if self.kind == "error":
            return f"error {self.error_type}: {self.error}"
        points = sum(len(t) for t, _ in self.series.values())
        return f"{self.kind} with {len(self.series)} series, {points} points"


_QUERY_PARAM_PREFIX = 'invalid parameter "query": '


def from_prometheus_json(body: dict[str, Any]) -> Outcome:
    """The canonical outcome of a Prometheus API response body."""
    if body.get("status") != "success":
        msg = str(body.get("error", ""))
        if msg.startswith(_QUERY_PARAM_PREFIX):
            msg = msg[len(_QUERY_PARAM_PREFIX) :]
        return Outcome("error", error_type=str(body.get("errorType", "")), error=msg)
    data = body["data"]
    kind, result = data["resultType"], data["result"]
    out = Outcome(kind)
    if kind == "scalar":
        out.series[()] = ([round(result[0] * 1000)], [float(result[1])])
    elif kind == "string":
        out.text = result[1]
    elif kind == "vector":
        for s in result:
            lbls: Labels = tuple(sorted(s["metric"].items()))
            out.series[lbls] = ([round(s["value"][0] * 1000)], [float(s["value"][1])])
            out.order.append(lbls)
    else:
        for s in result:
            lbls = tuple(sorted(s["metric"].items()))
            pts = s.get("values", [])
            out.series[lbls] = ([round(p[0] * 1000) for p in pts], [float(p[1]) for p in pts])
            out.order.append(lbls)
    return out


def from_narthex(value: Matrix | Vector | Scalar | String) -> Outcome:
    """The canonical outcome of a Narthex engine result value."""
    if isinstance(value, Scalar):
        return Outcome("scalar", {(): ([value.timestamp], [value.value])})
    if isinstance(value, String):
        return Outcome("string", text=value.value)
    if isinstance(value, Vector):
        out = Outcome("vector")
        for s in value.samples:
            lbls = tuple(s.labels)
            out.series[lbls] = ([int(s.timestamp)], [float(s.value)])
            out.order.append(lbls)
        return out
    out = Outcome("matrix")
    for ser in value.series:
        lbls = tuple(ser.labels)
        out.series[lbls] = ([int(t) for t in ser.timestamps], [float(v) for v in ser.values])
        out.order.append(lbls)
    return out


def run_narthex(
    engine: Engine,
    storage: MemoryStorage,
    query: str,
    *,
    time_ms: int | None = None,
    rng: tuple[int, int, int] | None = None,
) -> Outcome:
    """Evaluate with the Narthex engine in-process: an instant query at ``time_ms`` or a range query."""
    try:
        if rng is not None:
            res = engine.range_query(storage, query, *rng)
        else:
            assert time_ms is not None
            res = engine.instant_query(storage, query, time_ms)
    except PromQLError as exc:
        return Outcome("error", error_type=exc.error_type, error=str(exc))
    return from_narthex(res.value)


def _close(a: float, b: float, rel: float, abs_tol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_tol)


def _fmt(lbls: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in lbls) + "}"


def compare(
    narthex: Outcome,
    reference: Outcome,
    rel: float = 1e-9,
    abs_tol: float = 1e-9,
    ordered: bool = False,
    error_prefix_only: bool = False,
) -> list[str]:
    """Differences between two outcomes (empty when they agree).

    Values agree within ``rel``/``abs_tol`` (NaN matches NaN, infinities match exactly); label sets and
    timestamps must be identical. ``ordered`` also compares the order of series (``sort()``...);
    ``error_prefix_only`` compares error messages up to the first ``:`` (for messages that quote
    whichever of several duplicate series each engine met first).
    """
    if narthex.kind != reference.kind:
        return [f"kind: narthex {narthex.describe()} vs prometheus {reference.describe()}"]
    if narthex.kind == "error":
        problems = []
        if narthex.error_type != reference.error_type:
            problems.append(
                f"error type: narthex {narthex.error_type!r} vs prometheus {reference.error_type!r}"
            )
        a, b = narthex.error, reference.error
        if error_prefix_only:
            a, b = a.split(":")[0], b.split(":")[0]
        if a != b:
            problems.append(f"error: narthex {narthex.error!r} vs prometheus {reference.error!r}")
        return problems
    if narthex.kind == "string":
        return [] if narthex.text == reference.text else [f"string {narthex.text!r} vs {reference.text!r}"]
    problems: list[str] = []
    only_n = set(narthex.series) - set(reference.series)
    only_r = set(reference.series) - set(narthex.series)
    for lbls in sorted(only_n)[:5]:
        problems.append(f"only narthex: {_fmt(lbls)}")
    for lbls in sorted(only_r)[:5]:
        problems.append(f"only prometheus: {_fmt(lbls)}")
    for lbls in sorted(set(narthex.series) & set(reference.series)):
        tn, vn = narthex.series[lbls]
        tr, vr = reference.series[lbls]
        if tn != tr:
            extra = sorted(set(tn) ^ set(tr))[:4]
            problems.append(f"{_fmt(lbls)}: timestamps differ ({len(tn)} vs {len(tr)} points; e.g. {extra})")
            continue
        for t, a, b in zip(tn, vn, vr, strict=True):
            if not _close(a, b, rel, abs_tol):
                problems.append(f"{_fmt(lbls)} @{t}: narthex {a!r} vs prometheus {b!r}")
                break
        if len(problems) > 10:
            break
    if ordered and not problems and narthex.order != reference.order:
        problems.append(f"order: narthex {narthex.order[:4]} vs prometheus {reference.order[:4]}")
    return problems


def ranges_left_open(query: str, subqueries_only: bool = True) -> str:
    """The 2.42 query whose closed windows select what Prometheus 3's left-open windows do.

    ``[d:s]`` (and with ``subqueries_only=False`` also ``[d]``) becomes ``[d - 1ms:s]``: with
    millisecond timestamps the closed window ``[t - d + 1ms, t]`` holds exactly the samples of the
    left-open ``(t - d, t]``. Subquery points are aligned to their step, so 2.42 includes one more point
    whenever the evaluation time is a multiple of the step.
    """
    import re

    def shorten(m: re.Match[str]) -> str:
        ms = _duration_ms(m.group(1)) - 1
        return "[" + _go_duration(ms) + (m.group(2) or "") + "]"

    pattern = r"\[([0-9a-z]+)(:[0-9a-z]*)\]" if subqueries_only else r"\[([0-9a-z]+)(:[0-9a-z]*)?\]"
    return re.sub(pattern, shorten, query)


_UNITS = (
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
)


def _duration_ms(text: str) -> int:
    import re

    total = 0
    for num, unit in re.findall(r"([0-9]+)(ms|y|w|d|h|m|s)", text):
        total += int(num) * dict(_UNITS)[unit]
    return total


def _go_duration(ms: int) -> str:
    out = []
    for unit, size in _UNITS:
        if ms >= size:
            out.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(out) or "0s"
