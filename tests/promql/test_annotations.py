"""Annotation texts as Prometheus 3 renders them: message, merged details and ``(line:col)``."""

from __future__ import annotations

import numpy as np
import pytest

from narthex.promql.engine import FEATURE_DELAYED_NAME_REMOVAL, Engine
from narthex.promql.storage import MemoryStorage

MIN = 60_000
MONOTONICITY = (
    "PromQL info: input to histogram_quantile needed to be fixed for monotonicity "
    "(see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)"
)


def lbl(name: str, **labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"__name__": name, **labels}.items()))


@pytest.fixture
def storage() -> MemoryStorage:
    s = MemoryStorage()
    ts = np.arange(0, 11) * MIN
    s.add_series(lbl("requests_total", job="a"), ts, ts / 1000.0)
    s.add_series(lbl("temperature", job="a"), ts, np.full(11, 20.0))
    # A classic histogram whose bucket counts decrease (10 -> 4 -> 3) and one without "le".
    for le, count in (("0.1", 10.0), ("1", 4.0), ("10", 3.0), ("+Inf", 12.0)):
        s.add_series(lbl("lat_bucket", le=le), ts, np.full(11, count))
    s.add_series(lbl("nole_bucket", job="a"), ts, np.ones(11))
    s.add_series(lbl("badle_bucket", le="Hello World"), ts, np.ones(11))
    return s


@pytest.fixture
def delayed() -> Engine:
    """Delayed name removal, as upstream's test engine (annotations then name the metric)."""
    return Engine(features=frozenset({FEATURE_DELAYED_NAME_REMOVAL}))


def test_possible_non_counter(storage: MemoryStorage) -> None:
    res = Engine().instant_query(storage, "rate(temperature[5m])", 10 * MIN)
    assert res.infos == [
        "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "
        '"temperature" (1:6)'
    ]
    assert res.warnings == []
    assert Engine().instant_query(storage, "increase(requests_total[5m])", 10 * MIN).infos == []


def test_position_is_line_and_column_of_the_argument(storage: MemoryStorage) -> None:
    res = Engine().instant_query(storage, "sum(\n  rate(\n    temperature[5m]))", 10 * MIN)
    assert res.infos == [
        "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "
        '"temperature" (3:5)'
    ]


def test_repeated_annotation_keeps_the_latest_position(storage: MemoryStorage) -> None:
    res = Engine().instant_query(storage, "rate(temperature[5m]) + rate(temperature[2m])", 10 * MIN)
    assert res.infos == [
        "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "
        '"temperature" (1:30)'
    ]


def test_quantile_out_of_range(storage: MemoryStorage) -> None:
    eng = Engine()
    res = eng.instant_query(storage, "histogram_quantile(1.5, lat_bucket)", 10 * MIN)
    assert res.warnings == ["PromQL warning: quantile value should be between 0 and 1, got 1.5 (1:20)"]
    res = eng.instant_query(storage, "quantile(-0.5, requests_total)", 10 * MIN)
    assert res.warnings == ["PromQL warning: quantile value should be between 0 and 1, got -0.5 (1:10)"]
    res = eng.instant_query(storage, "quantile_over_time(NaN, requests_total[5m])", 10 * MIN)
    assert res.warnings == ["PromQL warning: quantile value should be between 0 and 1, got NaN (1:20)"]


def test_ratio_out_of_range(storage: MemoryStorage) -> None:
    eng = Engine(features=frozenset({"promql-experimental-functions"}))
    res = eng.instant_query(storage, "limit_ratio(1.5, requests_total)", 10 * MIN)
    assert res.warnings == [
        "PromQL warning: ratio value should be between -1 and 1, got 1.5, capping to 1 (1:13)"
    ]


def test_non_monotonic_buckets_merge_details(storage: MemoryStorage, delayed: Engine) -> None:
    res = delayed.range_query(storage, "histogram_quantile(0.5, lat_bucket)", 2 * MIN, 6 * MIN, 2 * MIN)
    assert res.infos == [
        f'{MONOTONICITY} for metric name "lat_bucket", from buckets 1 to 10, with a max diff of 7, '
        "over 3 samples from 1970-01-01T00:02:00Z to 1970-01-01T00:06:00Z (1:25)"
    ]
    # Without delayed name removal the metric name is not known any more.
    res = Engine().instant_query(storage, "histogram_quantile(0.5, lat_bucket)", 10 * MIN)
    assert res.infos == [
        f"{MONOTONICITY}, from buckets 1 to 10, with a max diff of 7, over 1 samples from "
        "1970-01-01T00:10:00Z to 1970-01-01T00:10:00Z (1:25)"
    ]


def test_bad_bucket_label(storage: MemoryStorage, delayed: Engine) -> None:
    res = delayed.instant_query(storage, "histogram_quantile(0.5, nole_bucket)", 10 * MIN)
    assert res.warnings == [
        'PromQL warning: bucket label "le" is missing or has a malformed value of "" '
        'for metric name "nole_bucket" (1:25)'
    ]
    res = delayed.instant_query(storage, "histogram_fraction(0, 1, badle_bucket)", 10 * MIN)
    assert res.warnings == [
        'PromQL warning: bucket label "le" is missing or has a malformed value of "Hello World" '
        'for metric name "badle_bucket" (1:26)'
    ]
    res = Engine().instant_query(storage, "histogram_quantile(0.5, nole_bucket)", 10 * MIN)
    assert res.warnings == [
        'PromQL warning: bucket label "le" is missing or has a malformed value of "" (1:25)'
    ]


def test_sort_in_range_query(storage: MemoryStorage) -> None:
    res = Engine().range_query(storage, "1 + sort_desc(requests_total)", 0, MIN, MIN)
    assert res.warnings == [
        "PromQL warning: sort is ineffective for range queries since results are always ordered by "
        "labels (1:5)"
    ]


def test_incompatible_types_in_binop(storage: MemoryStorage) -> None:
    res = Engine().instant_query(storage, "requests_total </ 2", 10 * MIN)
    assert res.infos == [
        'PromQL info: incompatible sample types encountered for binary operator "</": float </ float (1:1)'
    ]


def test_start_time_overlap_counts_occurrences() -> None:
    s = MemoryStorage()
    ts = np.arange(0, 5) * MIN
    # Every sample claims to start before the previous sample's timestamp.
    s.add_series(lbl("c_total"), ts, np.arange(5.0), start_timestamps=ts - 90_000 + 1)
    eng = Engine()
    res = eng.instant_query(s, "rate(c_total[3m])", 4 * MIN)
    assert res.warnings == [
        "PromQL warning: sample has start time that overlaps with previous sample timestamp "
        'for metric "c_total" (1:6)'
    ]
    res = eng.range_query(s, "rate(c_total[3m])", 3 * MIN, 4 * MIN, MIN)
    assert res.warnings == [
        "PromQL warning: sample has start time that overlaps with previous sample timestamp "
        'for metric "c_total" (2 occurrences) (1:6)'
    ]


def test_parsed_tree_keeps_its_text(storage: MemoryStorage) -> None:
    eng = Engine()
    tree = eng.parse("  rate(temperature[5m])")
    assert eng.instant_query(storage, tree, 10 * MIN).infos == [
        "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "
        '"temperature" (1:8)'
    ]
    # A tree the engine did not parse has no text: the bare message, as upstream without a query.
    assert Engine().instant_query(storage, tree, 10 * MIN).infos == [
        "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "
        '"temperature"'
    ]


def test_position_counts_utf8_bytes(storage: MemoryStorage) -> None:
    res = Engine().instant_query(storage, 'rate(temperature{job!="ä"}[5m]) + rate(temperature[5m])', 10 * MIN)
    assert res.infos == [
        "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "
        '"temperature" (1:41)'
    ]
