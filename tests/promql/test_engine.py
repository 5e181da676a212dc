"""Unit tests of the PromQL engine for what the shared conformance scripts do not cover."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from narthex.promql.engine import FEATURE_DELAYED_NAME_REMOVAL, Engine
from narthex.promql.storage import MemoryStorage
from narthex.promql.value import (
    BadDataError,
    ExecutionError,
    Matrix,
    QueryCanceledError,
    QueryTimeoutError,
    Scalar,
    String,
    TooManySamplesError,
    Vector,
)

MIN = 60_000


def lbl(name: str, **labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"__name__": name, **labels}.items()))


@pytest.fixture
def storage() -> MemoryStorage:
    s = MemoryStorage()
    # Counters sampled every minute for an hour: value = i * rate.
    for job, rate in (("a", 1.0), ("b", 2.0)):
        ts = np.arange(0, 61) * MIN
        s.add_series(lbl("requests_total", job=job), ts, ts / MIN * rate)
    s.add_series(lbl("gauge", job="a"), [0, MIN, 2 * MIN], [3.0, 1.0, 2.0])
    s.add_series(lbl("info_like", job="a", version="1"), np.arange(0, 61) * MIN, np.ones(61))
    return s


def vec(result) -> dict[tuple[tuple[str, str], ...], float]:  # type: ignore[no-untyped-def]
    assert isinstance(result.value, Vector)
    return {s.labels: s.value for s in result.value.samples}


def test_instant_selector_and_lookback(storage: MemoryStorage) -> None:
    eng = Engine()
    assert vec(eng.instant_query(storage, "gauge", 2 * MIN)) == {lbl("gauge", job="a"): 2.0}
    # The last sample is still visible within the 5m lookback window, not after it.
    assert vec(eng.instant_query(storage, "gauge", 7 * MIN - 1)) == {lbl("gauge", job="a"): 2.0}
    assert vec(eng.instant_query(storage, "gauge", 7 * MIN)) == {}
    assert vec(Engine(lookback_delta_ms=MIN).instant_query(storage, "gauge", 3 * MIN)) == {}


def test_staleness_marker_ends_series() -> None:
    from narthex.promql.value import STALE_NAN

    s = MemoryStorage()
    s.add_series(lbl("m"), [0, MIN, 2 * MIN], [1.0, STALE_NAN, 3.0])
    eng = Engine()
    res = eng.range_query(s, "m", 0, 2 * MIN, 30_000)
    assert isinstance(res.value, Matrix)
    (series,) = res.value.series
    assert series.timestamps.tolist() == [0, 30_000, 2 * MIN]
    assert series.values.tolist() == [1.0, 1.0, 3.0]
    # Stale markers are not samples of range vectors either.
    assert vec(eng.instant_query(s, "count_over_time(m[5m])", 2 * MIN)) == {(): 2.0}


def test_range_query_shapes(storage: MemoryStorage) -> None:
    eng = Engine()
    res = eng.range_query(storage, "rate(requests_total[5m])", 10 * MIN, 20 * MIN, MIN)
    assert isinstance(res.value, Matrix)
    assert [s.labels for s in res.value.series] == [(("job", "a"),), (("job", "b"),)]
    a, b = res.value.series
    assert a.timestamps.tolist() == list(range(10 * MIN, 21 * MIN, MIN))
    np.testing.assert_allclose(a.values, 1 / 60)
    np.testing.assert_allclose(b.values, 2 / 60)
    scalar = eng.range_query(storage, "1 + 1", 0, 2 * MIN, MIN)
    assert isinstance(scalar.value, Matrix)
    assert scalar.value.series[0].labels == ()
    assert scalar.value.series[0].values.tolist() == [2.0, 2.0, 2.0]


def test_instant_query_value_types(storage: MemoryStorage) -> None:
    eng = Engine()
    s = eng.instant_query(storage, "time() * 2", 90_000)
    assert isinstance(s.value, Scalar) and s.value.value == 180.0
    st = eng.instant_query(storage, '"hello"', 0)
    assert isinstance(st.value, String) and st.value.value == "hello"
    m = eng.instant_query(storage, "gauge[2m]", 2 * MIN)
    assert isinstance(m.value, Matrix)
    assert m.value.series[0].timestamps.tolist() == [MIN, 2 * MIN]


def test_subqueries(storage: MemoryStorage) -> None:
    eng = Engine()
    # max of the per-minute rate over the last 10 minutes, evaluated every minute.
    res = vec(eng.instant_query(storage, "max_over_time(rate(requests_total[2m])[10m:1m])", 30 * MIN))
    assert res[(("job", "b"),)] == pytest.approx(2 / 60)
    # The subquery grid is aligned to multiples of the step: 0, 1m, 2m, 3m in (-2m, 3m].
    job_a = (("job", "a"),)
    cnt = vec(eng.instant_query(storage, "count_over_time(gauge[5m:1m])", 3 * MIN))
    assert cnt == {job_a: 4.0}
    # (15m, 20m] at 2m steps: 16m, 18m, 20m.
    query = "count_over_time(requests_total{job='a'}[5m:2m] offset 10m)"
    assert vec(eng.instant_query(storage, query, 30 * MIN)) == {job_a: 3.0}
    # The default subquery step is the engine's (1m here).
    cnt = vec(eng.instant_query(storage, "count_over_time(requests_total{job='a'}[10m:])", 30 * MIN))
    assert cnt == {job_a: 10.0}
    # Nested subqueries: inner sums at 0, 1m, 2m are 3, 3+1, 1+2.
    nested = vec(eng.instant_query(storage, "max_over_time(sum_over_time(gauge[2m:1m])[3m:1m])", 2 * MIN))
    assert nested == {job_a: 4.0}


def test_at_modifier(storage: MemoryStorage) -> None:
    eng = Engine()
    res = eng.range_query(storage, "requests_total{job='a'} @ 600", 0, 5 * MIN, MIN)
    assert isinstance(res.value, Matrix)
    assert res.value.series[0].values.tolist() == [10.0] * 6
    res = eng.range_query(storage, "requests_total{job='a'} @ end()", 0, 5 * MIN, MIN)
    assert res.value.series[0].values.tolist() == [5.0] * 6  # type: ignore[union-attr]
    res = eng.range_query(storage, "requests_total{job='a'} @ start() offset -2m", MIN, 5 * MIN, MIN)
    assert res.value.series[0].values.tolist() == [3.0] * 5  # type: ignore[union-attr]
    # @ on a subquery fixes its time range.
    at_sub = vec(eng.instant_query(storage, "sum_over_time(requests_total{job='a'}[3m:1m] @ 300)", 50 * MIN))
    assert at_sub == {(("job", "a"),): 3.0 + 4.0 + 5.0}


def test_offset(storage: MemoryStorage) -> None:
    eng = Engine()
    assert vec(eng.instant_query(storage, "requests_total{job='b'} offset 10m", 30 * MIN)) == {
        lbl("requests_total", job="b"): 40.0
    }
    assert vec(eng.instant_query(storage, "requests_total{job='b'} offset -10m", 30 * MIN)) == {
        lbl("requests_total", job="b"): 80.0
    }


def test_trig_and_math_functions() -> None:
    eng = Engine()
    s = MemoryStorage()
    s.add_series(lbl("x"), [0], [0.5])
    checks = {
        "sin(x)": math.sin(0.5),
        "cos(x)": math.cos(0.5),
        "tan(x)": math.tan(0.5),
        "asin(x)": math.asin(0.5),
        "acos(x)": math.acos(0.5),
        "atan(x)": math.atan(0.5),
        "sinh(x)": math.sinh(0.5),
        "cosh(x)": math.cosh(0.5),
        "tanh(x)": math.tanh(0.5),
        "asinh(x)": math.asinh(0.5),
        "atanh(x)": math.atanh(0.5),
        "deg(x)": math.degrees(0.5),
        "rad(x)": math.radians(0.5),
        "x atan2 x": math.atan2(0.5, 0.5),
        "exp(x)": math.exp(0.5),
        "ln(x)": math.log(0.5),
        "sgn(-x)": -1.0,
        "round(x * 3, 0.5)": 1.5,
    }
    for query, want in checks.items():
        got = vec(eng.instant_query(s, query, 0))
        assert list(got.values()) == [pytest.approx(want)], query
        assert list(got) == [()], query  # the metric name is dropped
    assert math.isnan(next(iter(vec(eng.instant_query(s, "acosh(x)", 0)).values())))


def test_date_functions() -> None:
    eng = Engine()
    s = MemoryStorage()
    # 2024-02-29T13:45:30Z (a Thursday, day 60 of a leap year).
    t = 1709214330.0
    s.add_series(lbl("ts"), [0], [t])
    want = {
        "year": 2024,
        "month": 2,
        "day_of_month": 29,
        "day_of_year": 60,
        "day_of_week": 4,
        "hour": 13,
        "minute": 45,
        "days_in_month": 29,
    }
    for fn, value in want.items():
        assert vec(eng.instant_query(s, f"{fn}(ts)", 0)) == {(): float(value)}, fn
    # Without argument: the evaluation time (1970-01-01T00:02:00Z).
    assert vec(eng.instant_query(s, "minute()", 2 * MIN)) == {(): 2.0}
    assert vec(eng.instant_query(s, "year()", 0)) == {(): 1970.0}


def test_timestamp_function(storage: MemoryStorage) -> None:
    eng = Engine()
    # timestamp() of a selector gives the sample's own time, not the evaluation time.
    assert vec(eng.instant_query(storage, "timestamp(gauge)", 4 * MIN)) == {(("job", "a"),): 120.0}
    # Of any other expression, the evaluation time.
    assert vec(eng.instant_query(storage, "timestamp(gauge + 1)", 4 * MIN)) == {(("job", "a"),): 240.0}
    res = eng.range_query(storage, "timestamp(gauge)", 2 * MIN, 4 * MIN, MIN)
    assert res.value.series[0].values.tolist() == [120.0, 120.0, 120.0]  # type: ignore[union-attr]


def test_label_replace_and_join(storage: MemoryStorage) -> None:
    eng = Engine()
    got = vec(eng.instant_query(storage, 'label_replace(gauge, "dst", "x-$1", "job", "(.*)")', MIN))
    assert got == {lbl("gauge", job="a", dst="x-a"): 1.0}
    # No match: unchanged.
    got = vec(eng.instant_query(storage, 'label_replace(gauge, "dst", "$1", "job", "z(.*)")', MIN))
    assert got == {lbl("gauge", job="a"): 1.0}
    # Named groups and ${n} syntax.
    got = vec(eng.instant_query(storage, 'label_replace(gauge, "dst", "${v}!", "job", "(?P<v>.)")', MIN))
    assert got == {lbl("gauge", job="a", dst="a!"): 1.0}
    got = vec(
        eng.instant_query(storage, 'label_join(info_like, "joined", "-", "job", "version", "none")', MIN)
    )
    assert got == {lbl("info_like", job="a", version="1", joined="a-1-"): 1.0}
    with pytest.raises(ExecutionError, match="invalid regular expression in label_replace"):
        eng.instant_query(storage, 'label_replace(gauge, "dst", "", "job", "(")', MIN)
    # Replacing the job label by a constant makes the two series collide.
    with pytest.raises(ExecutionError, match="vector cannot contain metrics with the same labelset"):
        eng.instant_query(storage, 'label_replace(requests_total, "job", "x", "", "")', MIN)


def test_vector_matching_errors(storage: MemoryStorage) -> None:
    eng = Engine()
    with pytest.raises(ExecutionError, match="many-to-many matching not allowed"):
        eng.instant_query(storage, "gauge + on() requests_total", MIN)
    with pytest.raises(ExecutionError, match="many-to-one matching must be explicit"):
        eng.instant_query(storage, "requests_total + on() gauge", MIN)
    got = vec(eng.instant_query(storage, "requests_total * on(job) group_left(version) info_like", MIN))
    assert got == {(("job", "a"), ("version", "1")): 1.0}


def test_name_removal_modes(storage: MemoryStorage) -> None:
    immediate = Engine()
    delayed = Engine(features=frozenset({FEATURE_DELAYED_NAME_REMOVAL}))
    # Without delayed removal, dropping the name of two series with the same other labels collides.
    with pytest.raises(ExecutionError, match="same labelset"):
        immediate.instant_query(storage, '{job="a", __name__=~"requests_total|gauge"} + 1', MIN)
    # label_replace can restore the name before it is removed at the end.
    query = 'label_replace(rate(requests_total[5m]), "__name__", "r", "", "")'
    assert set(vec(delayed.instant_query(storage, query, 10 * MIN))) == {
        lbl("r", job="a"),
        lbl("r", job="b"),
    }
    assert set(vec(immediate.instant_query(storage, query, 10 * MIN))) == {
        lbl("r", job="a"),
        lbl("r", job="b"),
    }
    # last_over_time keeps the name.
    assert set(vec(immediate.instant_query(storage, "last_over_time(gauge[5m])", MIN))) == {
        lbl("gauge", job="a")
    }


def test_aggregations(storage: MemoryStorage) -> None:
    eng = Engine()
    assert vec(eng.instant_query(storage, "sum(requests_total)", 10 * MIN)) == {(): 30.0}
    assert vec(eng.instant_query(storage, "avg by (job) (requests_total)", 10 * MIN)) == {
        (("job", "a"),): 10.0,
        (("job", "b"),): 20.0,
    }
    res = eng.instant_query(storage, "topk(1, requests_total)", 10 * MIN)
    assert vec(res) == {lbl("requests_total", job="b"): 20.0}
    got = vec(eng.instant_query(storage, 'count_values("v", requests_total)', 10 * MIN))
    assert got == {(("v", "10"),): 1.0, (("v", "20"),): 1.0}
    got = vec(eng.instant_query(storage, "quantile(0.5, requests_total)", 10 * MIN))
    assert got == {(): 15.0}
    assert vec(eng.instant_query(storage, "stddev(requests_total)", 10 * MIN)) == {(): 5.0}


def test_sort_order(storage: MemoryStorage) -> None:
    eng = Engine()
    res = eng.instant_query(storage, "sort_desc(requests_total)", 10 * MIN)
    assert [s.value for s in res.value.samples] == [20.0, 10.0]  # type: ignore[union-attr]
    res = eng.instant_query(storage, "sort(requests_total)", 10 * MIN)
    assert [s.value for s in res.value.samples] == [10.0, 20.0]  # type: ignore[union-attr]
    ranged = eng.range_query(storage, "sort(requests_total)", 0, MIN, MIN)
    assert ranged.warnings == [
        "PromQL warning: sort is ineffective for range queries since results are always ordered by labels "
        "(1:1)"
    ]


def test_rate_info_annotation(storage: MemoryStorage) -> None:
    eng = Engine()
    res = eng.instant_query(storage, "rate(gauge[5m])", 2 * MIN)
    assert res.infos == [
        "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "
        '"gauge" (1:6)'
    ]
    assert eng.instant_query(storage, "rate(requests_total[5m])", 10 * MIN).infos == []


def test_histogram_quantile_classic() -> None:
    s = MemoryStorage()
    for le, count in (("0.1", 10.0), ("1", 50.0), ("+Inf", 100.0)):
        s.add_series(lbl("lat_bucket", le=le), [0], [count])
    eng = Engine()
    got = vec(eng.instant_query(s, "histogram_quantile(0.5, lat_bucket)", 0))
    assert got == {(): pytest.approx(1.0)}
    got = vec(eng.instant_query(s, "histogram_quantile(0.3, lat_bucket)", 0))
    assert got == {(): pytest.approx(0.1 + 0.9 * (30 - 10) / 40)}
    res = eng.instant_query(s, "histogram_quantile(2, lat_bucket)", 0)
    assert vec(res) == {(): math.inf}
    assert res.warnings == ["PromQL warning: quantile value should be between 0 and 1, got 2 (1:20)"]


def test_errors(storage: MemoryStorage) -> None:
    eng = Engine()
    with pytest.raises(BadDataError, match="parse error"):
        eng.instant_query(storage, "sum(", 0)
    with pytest.raises(BadDataError, match='invalid expression type "range vector" for range query'):
        eng.range_query(storage, "gauge[5m]", 0, MIN, MIN)
    with pytest.raises(BadDataError):
        eng.range_query(storage, "gauge", 0, MIN, 0)
    with pytest.raises(TooManySamplesError, match="query processing would load too many samples"):
        Engine(max_samples=10).range_query(storage, "requests_total", 0, 60 * MIN, MIN)
    with pytest.raises(QueryTimeoutError, match="query timed out in expression evaluation"):
        Engine(timeout_s=-1).instant_query(storage, "gauge", 0)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(QueryCanceledError, match="query was canceled in expression evaluation"):
        eng.instant_query(storage, "gauge", 0, cancel=cancel)
    with pytest.raises(ExecutionError, match="invalid label name"):
        eng.instant_query(storage, 'count_values("", gauge)', 0)
    assert BadDataError("x").error_type == "bad_data"
    assert ExecutionError("x").error_type == "execution"
    assert QueryTimeoutError().error_type == "timeout"


def test_memory_storage_replaces_duplicates() -> None:
    s = MemoryStorage()
    s.add_series(lbl("m"), [2, 1, 1], [20.0, 10.0, 11.0])
    s.add(lbl("m"), 3, 30.0)
    (series,) = s.querier(0, 10).select([])
    assert series.timestamps.tolist() == [1, 2, 3]
    assert series.values.tolist() == [11.0, 20.0, 30.0]
    assert s.querier(2, 2).select([])[0].values.tolist() == [20.0]


def test_columnar_range_query_is_fast() -> None:
    """A 300-series, 500-step range query with a range function and aggregation stays cheap."""
    import time

    s = MemoryStorage()
    ts = np.arange(0, 500 * 4) * 15_000
    for i in range(300):
        s.add_series(lbl("c_total", i=str(i), g=str(i % 5)), ts, np.cumsum(np.ones(len(ts))))
    eng = Engine()
    t0 = time.perf_counter()
    res = eng.range_query(s, "sum by (g) (rate(c_total[5m]))", 0, 499 * MIN, MIN)
    elapsed = time.perf_counter() - t0
    assert len(res.value.series) == 5  # type: ignore[union-attr]
    assert elapsed < 5.0


def test_against_tsdb(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The engine reads the TSDB through the same Queryable protocol."""
    from narthex.tsdb import open_db

    db = open_db(tmp_path / "data")
    try:
        app = db.appender()
        refs = np.array([app.series_ref(lbl("up_total", job=j)) for j in ("x", "y")])
        for i in range(11):
            app.append_batch(refs, i * MIN, np.array([i * 1.0, i * 2.0]))
        app.commit()
        eng = Engine()
        got = vec(eng.instant_query(db, "sum(increase(up_total[5m]))", 10 * MIN))
        assert got == {(): pytest.approx(15.0)}
        res = eng.range_query(db, "up_total{job='y'}", 0, 10 * MIN, 5 * MIN)
        assert res.value.series[0].values.tolist() == [0.0, 10.0, 20.0]  # type: ignore[union-attr]
    finally:
        db.close()


def test_quantile_over_time_nan_sorts_first() -> None:
    s = MemoryStorage()
    s.add_series(lbl("m"), [0, MIN, 2 * MIN, 3 * MIN], [1.0, math.nan, 3.0, 2.0])
    eng = Engine()
    res = eng.range_query(s, "quantile_over_time(0.5, m[5m])", MIN, 3 * MIN, MIN)
    got = res.value.series[0].values.tolist()  # type: ignore[union-attr]
    assert math.isnan(got[0]) and got[1:] == [1.0, 1.5]


def test_start_timestamps_in_rate() -> None:
    """A counter whose start time lies inside the window is taken to be zero at that time."""
    s = MemoryStorage()
    ts = [2 * MIN, 3 * MIN, 4 * MIN]
    s.add_series(lbl("c_total"), ts, [60.0, 120.0, 180.0], [MIN + 30_000, MIN + 30_000, MIN + 30_000])
    eng = Engine()
    got = vec(eng.instant_query(s, "increase(c_total[5m])", 4 * MIN))
    assert got == {(): pytest.approx(180.0)}
    # A start timestamp after the previous sample signals a reset.
    s2 = MemoryStorage()
    s2.add_series(lbl("d_total"), ts, [60.0, 60.0, 60.0], [MIN, 2 * MIN, 3 * MIN])
    assert vec(eng.instant_query(s2, "resets(d_total[5m])", 4 * MIN)) == {(): 2.0}
    eng_x = Engine(features=frozenset({"promql-experimental-functions"}))
    assert vec(eng_x.instant_query(s2, "start_timestamp(d_total)", 4 * MIN)) == {(): 180.0}


def test_histogram_fraction_and_quantiles_classic() -> None:
    s = MemoryStorage()
    for le, count in (("1", 20.0), ("2", 60.0), ("+Inf", 100.0)):
        s.add_series(lbl("h_bucket", le=le), [0], [count])
    eng = Engine()
    assert vec(eng.instant_query(s, "histogram_fraction(0, 1, h_bucket)", 0)) == {(): pytest.approx(0.2)}
    assert vec(eng.instant_query(s, "histogram_fraction(1, 1.5, h_bucket)", 0)) == {(): pytest.approx(0.2)}
    eng_x = Engine(features=frozenset({"promql-experimental-functions"}))
    got = vec(eng_x.instant_query(s, 'histogram_quantiles(h_bucket, "q", 0.5, 0.1)', 0))
    assert got == {(("q", "0.5"),): pytest.approx(1.75), (("q", "0.1"),): pytest.approx(0.5)}


def test_info_function() -> None:
    s = MemoryStorage()
    s.add_series(lbl("requests", instance="i", job="j"), [0], [5.0])
    s.add_series(lbl("target_info", instance="i", job="j", region="eu"), [0], [1.0])
    eng = Engine(features=frozenset({"promql-experimental-functions"}))
    got = vec(eng.instant_query(s, "info(requests)", 0))
    assert got == {lbl("requests", instance="i", job="j", region="eu"): 5.0}
    got = vec(eng.instant_query(s, 'info(requests, {region="us"})', 0))
    assert got == {}


def test_many_to_many_error_names_series_as_prometheus_3_does():
    s = MemoryStorage()
    for name, extra in (("left", "x"), ("right", "y"), ("right", "z")):
        s.add_series((("__name__", name), ("a", "1"), ("b", extra)), [0], [1.0])
    with pytest.raises(ExecutionError) as info:
        Engine().instant_query(s, "left + on(a) right", 0)
    assert str(info.value) == (
        'found duplicate series for the match group {a="1"} on the right hand-side of the operation: '
        '[{__name__="right", a="1", b="y"}, {__name__="right", a="1", b="z"}];'
        "many-to-many matching not allowed: matching labels must be unique on one side"
    )


class _BlockingStorage:
    """Wraps a storage: selecting waits until ``release`` is set, counting concurrent selections."""

    def __init__(self, inner: MemoryStorage) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0

    def querier(self, mint: int, maxt: int) -> _BlockingStorage._Querier:
        return _BlockingStorage._Querier(self, self.inner.querier(mint, maxt))

    class _Querier:
        def __init__(self, owner: _BlockingStorage, inner: object) -> None:
            self.owner = owner
            self.inner = inner

        def select(self, matchers: list[object]) -> object:
            o = self.owner
            with o.lock:
                o.active += 1
                o.peak = max(o.peak, o.active)
            o.entered.release()
            o.release.wait(5)
            with o.lock:
                o.active -= 1
            return self.inner.select(matchers)  # type: ignore[attr-defined]


def test_max_concurrency_queues_queries(storage: MemoryStorage) -> None:
    blocking = _BlockingStorage(storage)
    eng = Engine(max_concurrency=2)
    results: list[object] = []

    def run() -> None:
        results.append(eng.instant_query(blocking, "sum(requests_total)", 10 * MIN))

    threads = [threading.Thread(target=run) for _ in range(5)]
    for t in threads:
        t.start()
    assert blocking.entered.acquire(timeout=5) and blocking.entered.acquire(timeout=5)
    # Two queries run; the others wait for a slot instead of reaching the storage.
    assert not blocking.entered.acquire(timeout=0.2)
    blocking.release.set()
    for t in threads:
        t.join(5)
    assert len(results) == 5 and blocking.peak == 2


def test_queue_wait_counts_against_the_timeout(storage: MemoryStorage) -> None:
    blocking = _BlockingStorage(storage)
    first = Engine(max_concurrency=1, timeout_s=10)
    # A second engine sharing the gate (as a per-request engine with another timeout would).
    second = Engine(timeout_s=0.2, gate=first.gate)
    holder = threading.Thread(target=lambda: first.instant_query(blocking, "requests_total", 10 * MIN))
    holder.start()
    assert blocking.entered.acquire(timeout=5)
    with pytest.raises(QueryTimeoutError, match=r"^context deadline exceeded$"):
        second.instant_query(storage, "requests_total", 10 * MIN)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(QueryCanceledError, match=r"^context canceled$"):
        Engine(gate=first.gate).instant_query(storage, "requests_total", 10 * MIN, cancel=cancel)
    blocking.release.set()
    holder.join(5)
    # The slot is free again.
    assert len(second.instant_query(storage, "requests_total", 10 * MIN).value) == 2  # type: ignore[arg-type]


def test_time_waiting_for_a_slot_is_reported(storage: MemoryStorage) -> None:
    blocking = _BlockingStorage(storage)
    eng = Engine(max_concurrency=1)
    holder = threading.Thread(target=lambda: eng.instant_query(blocking, "requests_total", 10 * MIN))
    holder.start()
    assert blocking.entered.acquire(timeout=5)
    threading.Timer(0.3, blocking.release.set).start()
    waited = eng.instant_query(storage, "requests_total", 10 * MIN)
    holder.join(5)
    assert 0.2 < waited.queue_s < 5
    assert eng.instant_query(storage, "requests_total", 10 * MIN).queue_s < 0.1


def test_gate_is_released_after_errors(storage: MemoryStorage) -> None:
    eng = Engine(max_concurrency=1)
    with pytest.raises(ExecutionError):
        eng.instant_query(storage, 'label_replace(requests_total, "job", "x", "", "")', 10 * MIN)
    assert len(eng.instant_query(storage, "requests_total", 10 * MIN).value) == 2  # type: ignore[arg-type]


@pytest.mark.parametrize("samples_per_series", [0, 3, 40, 400])
@pytest.mark.parametrize("side", ["left", "right"])
def test_search_windows_matches_per_series_searchsorted(samples_per_series: int, side: str) -> None:
    from narthex.promql.engine import search_windows_many

    rng = np.random.default_rng(samples_per_series)
    lengths = rng.integers(0, samples_per_series + 1, 30)
    lengths[::7] = 0  # some series without samples
    series = [np.sort(rng.integers(0, 2_000, n)) for n in lengths]
    t = np.concatenate(series).astype(np.int64) if lengths.sum() else np.zeros(0, dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    refs = np.arange(-100, 2_200, 50, dtype=np.int64)
    got = search_windows_many(t, offsets, [(refs - 300)[None, :], refs[None, :]], side)
    for q, out in zip((refs - 300, refs), got, strict=True):
        want = np.array([offsets[i] + np.searchsorted(s, q, side=side) for i, s in enumerate(series)])  # type: ignore[call-overload]
        assert np.array_equal(out, want.reshape(len(series), len(refs)))


def test_memory_storage_flat_selection_matches_select() -> None:
    from narthex.model.matcher import Matcher, MatchType

    s = MemoryStorage()
    s.add_series(lbl("m", a="1"), [0, 10, 20, 30], [1.0, 2.0, 3.0, 4.0])
    s.add_series(lbl("m", a="2"), [25, 35], [5.0, 6.0], start_timestamps=[20, 30])
    s.add_series(lbl("m", a="3"), [100], [7.0])
    s.add_series(lbl("other"), [5], [8.0])
    for mint, maxt in ((-5, 1000), (10, 30), (31, 99), (200, 300)):
        q = s.querier(mint, maxt)
        for matchers in (
            [Matcher(MatchType.EQUAL, "__name__", "m")],
            [Matcher(MatchType.EQUAL, "__name__", "m"), Matcher(MatchType.NOT_EQUAL, "a", "2")],
            [Matcher(MatchType.REGEX, "__name__", ".+")],
        ):
            series = q.select(matchers)
            flat = q.select_flat(matchers)
            assert flat is not None
            assert flat.labels == [x.labels for x in series]
            for i, x in enumerate(series):
                a, b = int(flat.offsets[i]), int(flat.offsets[i + 1])
                assert flat.t[a:b].tolist() == x.timestamps.tolist()
                assert flat.v[a:b].tolist() == x.values.tolist()
            with_st = [x for x in series if x.start_timestamps is not None]
            assert (flat.st is not None) == bool(with_st)
