"""Differential tests: the Narthex engine against a real Prometheus 2.42 over the same samples.

One demo-shaped OpenMetrics file (``difftools.generate_demo``: ~350 series over 2 h, gauges, counters
with resets, classic histograms, gaps) is backfilled with ``promtool`` and served by ``prometheus``;
the same samples go into a Narthex MemoryStorage. Each case is evaluated as instant queries at three
times (mid-data, 7.5 minutes in, just after the end) and as a range query, by both engines, and the
results must agree: identical label sets and timestamps, values within 1e-9 (relative).

Narthex implements Prometheus 3 semantics. Where 2.42 differs, the case either sends 2.42 an
equivalent query (``prom=``: the left-open windows of 3.0 are the closed windows 1 ms shorter; the
name atan2 drops in 3.x is removed with label_replace) or is checked by one of the tests at the end
(left-open windows and lookback, zero-point extrapolation of rate, UTF-8 label names, holt_winters),
which assert Narthex's 3.x answer and that 2.42 really answers differently.
"""

from __future__ import annotations

import itertools
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from narthex.promql.engine import Engine
from narthex.promql.storage import MemoryStorage
from tests.conftest import require_binary
from tests.promql.difftools import (
    DemoData,
    Outcome,
    ReferenceServer,
    backfill,
    compare,
    from_prometheus_json,
    generate_demo,
    memory_storage,
    ranges_left_open,
    run_narthex,
)

LOOKBACK_MS = 300_000


@dataclass
class Env:
    data: DemoData
    storage: MemoryStorage
    engine: Engine
    prom: ReferenceServer

    @property
    def instants(self) -> list[int]:
        start = self.data.start_ms
        return [start + 3_600_000, start + 450_000, start + 7_380_000]

    @property
    def range(self) -> tuple[int, int, int]:
        return (self.data.start_ms + 1_200_000, self.data.start_ms + 7_500_000, 60_000)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    prometheus = require_binary("prometheus")
    promtool = require_binary("promtool")
    work: pathlib.Path = tmp_path_factory.mktemp("differential")
    data = generate_demo(work / "demo.om")
    backfill(promtool, data.path, work / "data")
    server = ReferenceServer(prometheus, work / "data", work)
    try:
        yield Env(data, memory_storage(data), Engine(lookback_delta_ms=LOOKBACK_MS), server)
    finally:
        server.close()


# Absolute times (seconds) used by @ modifiers: the data starts at 2023-11-14T20:00:00Z.
S = 1_699_992_000
AT_MID = S + 3600
AT_LATE = S + 6000


@dataclass(frozen=True)
class Case:
    """One query; ``prom`` is the 2.42 query that means what ``query`` means in Prometheus 3."""

    query: str
    prom: str | None = None
    note: str = ""
    rel: float = 1e-9
    ordered: bool = False
    instant_only: bool = False
    error_prefix_only: bool = False
    skip_early: str = ""  # why the instant 7.5 minutes into the data is not compared
    xfail: str = ""  # a known Narthex discrepancy (strict: the test fails once it is fixed)


def sub(query: str, rel: float = 1e-9) -> Case:
    """A subquery case: 2.42 gets the subquery ranges 1 ms shorter (3.0 made them left-open)."""
    return Case(query, ranges_left_open(query), "3.0: left-open subquery windows", rel=rel)


def drop_name(query: str, note: str) -> Case:
    """A case whose result loses its metric name in 3.x but not in 2.42 (2.42 gets it removed)."""
    return Case(query, f'label_replace({query}, "__name__", "", "", "")', note)


ZERO_POINT_NOTE = (
    "3.0 caps the extrapolation towards a counter's zero point after the half-interval rule, 2.42 before"
    " it: a 10m window that starts before the first sample extrapolates differently"
    " (test_zero_point_extrapolation)"
)
DUPLICATE_FORMAT_NOTE = (
    "Prometheus 2.42 prints the two duplicate series in the order it met them; Prometheus 3 sorts them"
    " (engine.go: 'Make the error message consistent between runs'), and so does Narthex"
)
ATAN2_NOTE = (
    "3.0 drops the metric name for atan2 like other arithmetic operators (upstream 531567d); 2.42 kept it"
)

CASES: dict[str, list[Case]] = {
    "subquery": [
        sub("max_over_time(rate(demo_requests_total[5m])[30m:1m])"),
        sub("avg_over_time(demo_memory_bytes[20m:])"),
        sub("min_over_time(sum by (job) (rate(demo_cpu_usage_seconds_total[2m]))[15m:30s] offset 5m)"),
        # Narthex (3.x) extrapolates to the 10m window edge, 2.42 to 1 ms less: a 1.7e-6 relative shift.
        sub("rate(demo_requests_total[10m:15s])", rel=1e-5),
        sub("max_over_time(deriv(demo_memory_bytes[5m:30s])[10m:1m])"),
        sub("sum_over_time(demo_items_in_queue[7m:20s])"),
        sub("count_over_time(demo_items_in_queue[17m:1m])"),
        sub(f"max_over_time(demo_angle[10m:1m] @ {AT_MID})"),
        sub("quantile_over_time(0.9, (demo_memory_bytes / 1e6)[30m:2m])"),
        sub("last_over_time(demo_requests_total[3m:7s])"),
        sub("max_over_time(sum(demo_memory_bytes)[1h:5m] offset -10m)"),
    ],
    "at_offset": [
        Case(f"demo_memory_bytes @ {AT_MID}"),
        Case(f"rate(demo_requests_total[5m] @ {AT_LATE})"),
        Case("demo_memory_bytes @ start()"),
        Case("demo_memory_bytes @ end()"),
        Case("sum by (job) (rate(demo_cpu_usage_seconds_total[5m] @ end()))"),
        Case("rate(demo_requests_total[5m] @ start() offset 2m)"),
        Case(f"demo_memory_bytes @ {AT_MID} offset 10m"),
        Case(f"demo_memory_bytes offset 10m @ {AT_MID}.5"),
        Case("demo_memory_bytes offset -10m"),
        Case("rate(demo_requests_total[5m] offset -15m)"),
        Case("demo_memory_bytes - demo_memory_bytes offset 1h"),
        Case(f"timestamp(demo_items_in_queue @ {AT_MID})"),
        Case("demo_items_in_queue offset 30m"),
        Case(f"demo_memory_bytes @ {AT_MID} - demo_memory_bytes @ start()"),
        Case(f"sum_over_time(demo_items_in_queue[10m] @ {AT_LATE} offset -5m)"),
    ],
    "trig": [
        Case(f"{fn}(demo_angle)")
        for fn in (
            "sin",
            "cos",
            "tan",
            "asin",
            "acos",
            "atan",
            "sinh",
            "cosh",
            "tanh",
            "asinh",
            "acosh",
            "atanh",
        )
    ]
    + [
        Case("deg(demo_angle)"),
        Case("rad(demo_angle)"),
        Case("pi()"),
        Case("demo_angle * pi()"),
        drop_name('demo_angle{sensor="a"} atan2 ignoring(sensor) demo_angle{sensor="b"}', ATAN2_NOTE),
        drop_name("demo_angle atan2 0.5", ATAN2_NOTE),
        Case("sin(deg(demo_angle) * 0 + pi() / 2)"),
    ],
    "date": [Case(f"{fn}()") for fn in ("day_of_month", "day_of_week", "day_of_year", "days_in_month")]
    + [Case(f"{fn}()") for fn in ("hour", "minute", "month", "year")]
    + [
        Case(f"{fn}(demo_event_timestamp_seconds)")
        for fn in (
            "day_of_month",
            "day_of_week",
            "day_of_year",
            "days_in_month",
            "hour",
            "minute",
            "month",
            "year",
        )
    ]
    + [
        Case("days_in_month(vector(951782400))"),  # 2000-02-29
        Case("day_of_year(vector(1709164800))"),  # 2024-02-29
        Case("day_of_week(vector(-86400))"),
        Case("year(vector(4102444799))"),
        Case("hour(timestamp(demo_memory_bytes))"),
        Case("minute(vector(time()))"),
    ],
    "timestamp": [
        Case("timestamp(demo_memory_bytes)"),
        Case("timestamp(demo_items_in_queue)"),
        Case("time() - timestamp(up)"),
        Case("timestamp(sum by (job) (demo_memory_bytes))"),
        Case("time()"),
        Case("vector(time())"),
        Case("scalar(sum(up))"),
    ],
    "labels": [
        Case('label_replace(demo_requests_total, "host", "$1", "instance", "(.*):.*")'),
        Case('label_replace(demo_build_info, "revision", "", "revision", ".*")'),
        Case('label_replace(up, "job", "x-$1-$2", "instance", "host-([0-9]+):(.*)")'),
        Case('label_replace(up, "nomatch", "$1", "instance", "zzz(.*)")'),
        Case('label_replace(demo_memory_bytes, "__name__", "renamed_$1", "type", "(.*)")'),
        Case('label_join(demo_requests_total, "combo", "-", "method", "status")'),
        Case('label_join(up, "instance", ",", "job", "instance", "job")'),
        Case('label_join(up, "empty", "-")'),
        Case('label_join(rate(demo_requests_total[5m]), "k", "/", "method", "missing")'),
    ],
    "rates": [
        Case("rate(demo_requests_total[5m])"),
        Case("rate(demo_cpu_usage_seconds_total[1m])"),
        Case("irate(demo_cpu_usage_seconds_total[1m])"),
        Case("increase(demo_requests_total[10m])"),
        Case("increase(demo_items_in_queue[5m])"),
        Case("delta(demo_memory_bytes[10m])"),
        Case("delta(demo_items_in_queue[15m])"),
        Case("idelta(demo_memory_bytes[2m])"),
        Case("deriv(demo_memory_bytes[10m])"),
        Case("deriv(demo_items_in_queue[20m])"),
        Case("predict_linear(demo_memory_bytes[10m], 600)"),
        Case("predict_linear(demo_items_in_queue[15m], -300)"),
        Case("resets(demo_cpu_usage_seconds_total[30m])"),
        Case("changes(demo_items_in_queue[10m])"),
        Case("rate(demo_request_duration_seconds_sum[5m]) / rate(demo_request_duration_seconds_count[5m])"),
        Case("rate(demo_boundary_total[2m])"),
    ],
    "over_time": [
        Case(f"{fn}(demo_items_in_queue[10m])")
        for fn in (
            "avg_over_time",
            "min_over_time",
            "max_over_time",
            "sum_over_time",
            "count_over_time",
            "stddev_over_time",
            "stdvar_over_time",
            "last_over_time",
            "present_over_time",
        )
    ]
    + [
        Case("quantile_over_time(0.9, demo_memory_bytes[15m])"),
        Case("quantile_over_time(0, demo_items_in_queue[10m])"),
        Case("quantile_over_time(1.5, demo_angle[5m])"),
        Case("quantile_over_time(-1, demo_angle[5m])"),
        Case("avg_over_time(demo_memory_bytes[1h])"),
        Case("stddev_over_time(demo_angle[30m])"),
        Case("absent_over_time(demo_items_in_queue[1m])"),
        Case('absent_over_time(nonexistent{job="x"}[5m])'),
    ],
    "histogram": [
        Case("histogram_quantile(0.9, rate(demo_request_duration_seconds_bucket[5m]))"),
        Case("histogram_quantile(0.5, sum by (le) (rate(demo_request_duration_seconds_bucket[5m])))"),
        Case(
            "histogram_quantile(0.99, sum by (le, job) (rate(demo_request_duration_seconds_bucket[10m])))",
            skip_early=ZERO_POINT_NOTE,
        ),
        Case(
            "histogram_quantile(0.25, sum by (le, method) "
            "(increase(demo_request_duration_seconds_bucket[2m])))"
        ),
        Case("histogram_quantile(1.5, sum by (le) (rate(demo_request_duration_seconds_bucket[5m])))"),
        Case("histogram_quantile(-0.1, sum by (le) (rate(demo_request_duration_seconds_bucket[5m])))"),
        Case("histogram_quantile(0.9, demo_request_duration_seconds_bucket)"),
        Case('histogram_quantile(0.9, demo_request_duration_seconds_bucket{le!="+Inf"})'),
    ],
    "aggregation": [
        Case("topk(3, demo_memory_bytes)"),
        Case("topk by (job) (2, rate(demo_requests_total[5m]))"),
        Case("bottomk(2, rate(demo_cpu_usage_seconds_total[5m]))"),
        Case("bottomk without (mode) (1, demo_cpu_usage_seconds_total)"),
        Case("sort_desc(topk(5, demo_memory_bytes))", ordered=True, instant_only=True),
        Case("sort(bottomk(4, demo_items_in_queue))", ordered=True, instant_only=True),
        Case("quantile(0.5, demo_memory_bytes)"),
        Case("quantile by (job) (0.9, rate(demo_requests_total[5m]))"),
        Case("quantile(2, demo_angle)"),
        Case('count_values("value", up)'),
        Case('count_values by (job) ("n", demo_items_in_queue)'),
        Case('count_values("version", demo_build_info)'),
        Case("sum by (job) (rate(demo_requests_total[5m]))"),
        Case("avg without (instance) (demo_memory_bytes)"),
        Case("stddev by (type) (demo_memory_bytes)"),
        Case("stdvar(demo_angle)"),
        Case("count by (job, status) (demo_requests_total)"),
        Case("group by (version) (demo_build_info)"),
        Case("max by (mode) (rate(demo_cpu_usage_seconds_total[5m]))"),
        Case("min(demo_items_in_queue)"),
    ],
    "binary": [
        Case("demo_requests_total * on (instance, job) group_left (version) demo_build_info"),
        Case(
            "rate(demo_cpu_usage_seconds_total[5m]) / on (instance, job) group_left "
            "sum by (instance, job) (rate(demo_cpu_usage_seconds_total[5m]))"
        ),
        Case("demo_build_info * on (instance) group_right (version) demo_memory_bytes"),
        Case("sum by (instance, job) (demo_memory_bytes) / ignoring (version, revision) group_left up"),
        Case('demo_memory_bytes{type="used"} / ignoring (type) demo_memory_bytes{type="free"}'),
        Case("demo_items_in_queue > 50"),
        Case("demo_items_in_queue > bool 50"),
        Case("up == 0"),
        Case("demo_items_in_queue and on (instance) (up == 1)"),
        Case("demo_items_in_queue or on (instance) demo_build_info"),
        Case("up unless on (instance) demo_items_in_queue"),
        Case("demo_memory_bytes % 7 ^ 2"),
        Case("-demo_angle + 1 - -2"),
        Case("rate(demo_requests_total[5m]) > on (instance, job) group_left sum by (instance, job) (up)"),
        Case("1 / (demo_items_in_queue - demo_items_in_queue)"),
    ],
    "error": [
        Case("demo_memory_bytes + on (instance) demo_cpu_usage_seconds_total", error_prefix_only=True),
        Case(
            "demo_memory_bytes * on (instance) group_left demo_cpu_usage_seconds_total",
            error_prefix_only=True,
        ),
        Case('demo_build_info * on (job) group_left demo_memory_bytes{type="free"}', error_prefix_only=True),
        Case(
            "demo_memory_bytes * on (instance) group_left demo_cpu_usage_seconds_total",
            xfail=DUPLICATE_FORMAT_NOTE,
        ),
        Case("sum by (instance, job) (demo_memory_bytes) + on (job) up", xfail=DUPLICATE_FORMAT_NOTE),
        Case("demo_requests_total + on (instance, job) group_right demo_build_info", error_prefix_only=True),
        Case("rate(demo_memory_bytes)"),
        Case("rate(demo_memory_bytes[5m], 1)"),
        Case("histogram_quantile(demo_request_duration_seconds_bucket)"),
        Case('label_replace(up, "x", "$1", "instance", "(")'),
        Case("topk(demo_memory_bytes, 3)"),
        Case("no_such_function(up)"),
        Case('label_replace(demo_memory_bytes, "type", "x", "", "")'),
        Case("demo_memory_bytes[5m] + 1"),
        Case("sum(demo_memory_bytes) by (type) offset 5m"),
        Case("demo_memory_bytes @ end() @ start()"),
        Case("quantile_over_time(demo_memory_bytes[5m])"),
        Case("sum_over_time(demo_memory_bytes[5m:1m:1m])"),
    ],
}

ALL = [(group, i, case) for group, cases in CASES.items() for i, case in enumerate(cases)]


def _check(env: Env, group: str, case: Case) -> list[str]:
    prom_query = case.prom or case.query
    problems = []
    outcomes: list[Outcome] = []
    for t in env.instants[:1] + env.instants[2:] if case.skip_early else env.instants:
        got = run_narthex(env.engine, env.storage, case.query, time_ms=t)
        want = from_prometheus_json(env.prom.instant(prom_query, t))
        for p in compare(got, want, case.rel, ordered=case.ordered, error_prefix_only=case.error_prefix_only):
            problems.append(f"instant @{t}: {p}")
        outcomes.append(want)
    if not case.instant_only:
        got = run_narthex(env.engine, env.storage, case.query, rng=env.range)
        want = from_prometheus_json(env.prom.range(prom_query, *env.range))
        for p in compare(got, want, case.rel, error_prefix_only=case.error_prefix_only):
            problems.append(f"range: {p}")
        outcomes.append(want)
    # Guard against agreeing on nothing: each case must mean something to the reference.
    if group == "error":
        if not all(o.kind == "error" for o in outcomes):
            problems.append("expected an error from Prometheus")
    elif all(o.kind == "error" or not o.series for o in outcomes if o.kind != "string"):
        problems.append("Prometheus returned no data (or only errors) for this case")
    return problems


PARAMS = [
    pytest.param(
        group,
        case,
        id=f"{group}-{i}",
        marks=[pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else [],
    )
    for group, i, case in ALL
]


@pytest.mark.parametrize(("group", "case"), PARAMS)
def test_differential(env: Env, group: str, case: Case) -> None:
    problems = _check(env, group, case)
    assert not problems, f"{case.query}\n" + "\n".join(problems[:12])


# ---------------------------------------------------------------------------------------------
# Where Prometheus 2.42 and 3.x disagree: Narthex must give the 3.x answer.


def _instant(env: Env, query: str, t: int, prom_query: str | None = None) -> tuple[Outcome, Outcome]:
    got = run_narthex(env.engine, env.storage, query, time_ms=t)
    return got, from_prometheus_json(env.prom.instant(prom_query or query, t))


def test_left_open_range_window(env: Env) -> None:
    """3.0 (#13904): a sample exactly at ``t - range`` is outside the window; 2.42 counted it."""
    ts, _ = env.data.series[(("__name__", "demo_boundary_total"), ("job", "edge"))]
    t = ts[40]
    query = "count_over_time(demo_boundary_total[1m])"
    got, closed = _instant(env, query, t)
    assert got.series[(("job", "edge"),)][1] == [4.0]  # t-45s, t-30s, t-15s, t
    assert closed.series[(("job", "edge"),)][1] == [5.0]  # 2.42 also counts t-60s
    got, same = _instant(env, query, t, ranges_left_open(query, subqueries_only=False))
    assert compare(got, same) == []
    rng = (t - 600_000, t + 600_000, 15_000)
    # Without extrapolation the shortened windows give identical values; rate() extrapolates to the
    # window edge and divides by the range, both 1 ms longer in 3.x (relative differences <= 2e-5).
    for query, rel in (
        ("sum_over_time(demo_boundary_total[1m]) + changes(demo_boundary_total[45s])", 1e-12),
        ("rate(demo_boundary_total[1m])", 1e-4),
    ):
        got_range = run_narthex(env.engine, env.storage, query, rng=rng)
        want = from_prometheus_json(env.prom.range(ranges_left_open(query, subqueries_only=False), *rng))
        assert compare(got_range, want, rel) == [], query


def test_left_open_lookback(env: Env) -> None:
    """3.0 (#13904): the lookback window is left-open too: a sample exactly 5m old is not returned."""
    ts, vs = env.data.series[(("__name__", "demo_boundary_total"), ("job", "edge"))]
    last = ts[-1]
    edge = last + LOOKBACK_MS
    got, ref = _instant(env, "demo_boundary_total", edge)
    assert got.series == {}
    assert ref.series[(("__name__", "demo_boundary_total"), ("job", "edge"))][1] == [vs[-1]]
    got, ref = _instant(env, "demo_boundary_total", edge - 1)
    assert compare(got, ref) == []
    assert got.series


def _rate3(ts: list[int], vs: list[float], t: int, range_ms: int, is_rate: bool) -> float | None:
    """Prometheus 3's extrapolatedRate for a float counter at ``t`` over ``(t - range, t]``."""
    pts = [(a, b) for a, b in zip(ts, vs, strict=True) if t - range_ms < a <= t]
    if len(pts) < 2:
        return None
    result = pts[-1][1] - pts[0][1]
    for (_, prev), (_, cur) in itertools.pairwise(pts):
        if cur < prev:
            result += prev
    to_start = (pts[0][0] - (t - range_ms)) / 1000
    to_end = (t - pts[-1][0]) / 1000
    sampled = (pts[-1][0] - pts[0][0]) / 1000
    avg = sampled / (len(pts) - 1)
    if to_start >= avg * 1.1:
        to_start = avg / 2
    if result > 0 and pts[0][1] >= 0:
        to_start = min(to_start, sampled * (pts[0][1] / result))
    if to_end >= avg * 1.1:
        to_end = avg / 2
    factor = (sampled + to_start + to_end) / sampled
    if is_rate:
        factor /= range_ms / 1000
    return result * factor


def test_zero_point_extrapolation(env: Env) -> None:
    """3.0 applies the counter zero-point cap after the half-interval rule (2.42: before it).

    Near the start of the data a 10m window begins before the first sample; for buckets whose first
    value is small the two orders extrapolate differently. Narthex must match the 3.x formula.
    """
    t = env.data.start_ms + 450_000
    query = "increase(demo_request_duration_seconds_bucket[10m])"
    got, ref = _instant(env, query, t)
    differs_from_242 = 0
    for labels, (ts, vs) in env.data.series.items():
        if dict(labels)["__name__"] != "demo_request_duration_seconds_bucket":
            continue
        key = tuple(p for p in labels if p[0] != "__name__")
        want = _rate3(ts, vs, t, 600_000, is_rate=False)
        assert want is not None
        assert got.series[key][1][0] == pytest.approx(want, rel=1e-12), key
        if ref.series[key][1][0] != pytest.approx(want, rel=1e-9):
            differs_from_242 += 1
    assert differs_from_242 > 0, "the data no longer exercises the changed extrapolation"


def test_utf8_label_names(env: Env) -> None:
    """3.0 accepts any UTF-8 label name; 2.42 rejected non-legacy names in label_replace/label_join."""
    t = env.instants[0]
    got, ref = _instant(env, 'label_replace(up, "1st", "$1", "job", "(.*)")', t)
    assert ref.kind == "error" and ref.error == "invalid destination label name in label_replace(): 1st"
    assert got.kind == "vector" and len(got.series) == 8
    assert all(dict(lbls)["1st"] == dict(lbls)["job"] for lbls in got.series)
    got, ref = _instant(env, 'label_join(up, "x", "-", "in valid")', t)
    assert ref.kind == "error" and ref.error == "invalid source label name in label_join(): in valid"
    assert got.kind == "vector" and len(got.series) == 8  # the missing source joins to "": no label x


def test_holt_winters_renamed(env: Env) -> None:
    """3.0 renamed holt_winters to double_exponential_smoothing, behind the experimental-functions flag."""
    t = env.instants[0]
    got, ref = _instant(env, "holt_winters(demo_memory_bytes[10m], 0.5, 0.5)", t)
    assert ref.kind == "vector" and len(ref.series) == 24
    assert (got.error_type, got.error) == (
        "bad_data",
        '1:1: parse error: unknown function with name "holt_winters"',
    )
    got = run_narthex(
        env.engine, env.storage, "double_exponential_smoothing(demo_memory_bytes[10m], 0.5, 0.5)", time_ms=t
    )
    assert got.error == '1:1: parse error: function "double_exponential_smoothing" is not enabled'
    experimental = Engine(
        lookback_delta_ms=LOOKBACK_MS, features=frozenset({"promql-experimental-functions"})
    )
    got = run_narthex(
        experimental, env.storage, "double_exponential_smoothing(demo_memory_bytes[10m], 0.5, 0.5)", time_ms=t
    )
    _, ref = _instant(env, "", t, "holt_winters(demo_memory_bytes[10m], 0.5, 0.5)")
    assert compare(got, ref) == []
