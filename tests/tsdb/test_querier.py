"""Matcher selection with Prometheus semantics, label names and values, on head and blocks."""

from __future__ import annotations

import numpy as np
import pytest

from narthex.model.matcher import Matcher, MatchType

from .conftest import fill, lbl

EQ, NEQ, RE, NRE = MatchType.EQUAL, MatchType.NOT_EQUAL, MatchType.REGEX, MatchType.NOT_REGEX

SERIES = [
    lbl("http_requests", job="api", code="200"),
    lbl("http_requests", job="api", code="500"),
    lbl("http_requests", job="web"),
    lbl("up", job="api"),
    lbl("up", job="web", env="prod"),
    lbl("up", env=""),  # empty value means no label
]


def _names(q, *matchers):
    return [dict(s.labels) for s in q.select([Matcher(t, n, v) for t, n, v in matchers])]


@pytest.fixture(params=["head", "block"])
def querier(request, open_test_db):
    db = open_test_db(block_range_ms=60_000)
    fill(db, SERIES, 0, 50_000, 10_000)
    if request.param == "block":
        fill(db, SERIES, 100_000, 100_001, 1)
        db.compact()
        assert len(db.blocks) == 1
        return db.querier(0, 50_000)
    return db.querier(0, 50_000)


CASES = [
    ([(EQ, "__name__", "up")], 3),
    ([(EQ, "job", "api")], 3),
    ([(NEQ, "job", "api")], 3),  # includes the series without job
    ([(EQ, "code", "")], 4),  # series without code
    ([(NEQ, "code", "")], 2),
    ([(RE, "code", "2..|")], 5),  # empty-matching regex: also series without code
    ([(RE, "code", "2.*")], 1),
    ([(NRE, "code", "5.*")], 5),
    ([(NRE, "code", ".*")], 0),
    ([(RE, "env", ".*")], 6),
    ([(RE, "env", ".+")], 1),
    ([(EQ, "__name__", "up"), (RE, "job", "api|web")], 2),
    ([(EQ, "__name__", "up"), (EQ, "job", "")], 1),
    ([(EQ, "nope", "x")], 0),
    ([(RE, "__name__", "http_.*"), (NRE, "job", "web")], 2),
]


@pytest.mark.parametrize(("matchers", "count"), CASES)
def test_select(querier, matchers, count):
    got = _names(querier, *matchers)
    assert len(got) == count
    # Cross-check against evaluating the matchers on each series directly.
    ms = [Matcher(t, n, v) for t, n, v in matchers]
    expected = sorted(s for s in SERIES if all(m.matches(dict(s).get(m.name, "")) for m in ms))
    assert [tuple(sorted(d.items())) for d in got] == expected


def test_select_is_sorted_and_has_samples(querier):
    out = querier.select([Matcher(RE, "__name__", ".+")])
    assert [s.labels for s in out] == sorted(SERIES)
    for s in out:
        assert s.timestamps.tolist() == [0, 10_000, 20_000, 30_000, 40_000]
        assert isinstance(s.values, np.ndarray)


def test_label_names_and_values(querier):
    assert querier.label_names() == ["__name__", "code", "env", "job"]
    assert querier.label_names([Matcher(EQ, "__name__", "up")]) == ["__name__", "env", "job"]
    assert querier.label_values("job") == ["api", "web"]
    assert querier.label_values("code", [Matcher(EQ, "job", "api")]) == ["200", "500"]
    assert querier.label_values("job", [Matcher(EQ, "env", "prod")]) == ["web"]
    assert querier.label_values("missing") == []


def test_regex_evaluated_once_per_value(open_test_db):
    db = open_test_db()
    series = [lbl("m", i=str(i % 7), j=str(i)) for i in range(700)]
    fill(db, series, 0, 1, 1)
    calls: list[str] = []

    class Counting(Matcher):
        def matches(self, value: str) -> bool:
            calls.append(value)
            return super().matches(value)

    m = Counting(RE, "i", "[0-3]")
    assert len(db.querier(0, 10).select([m])) == 400
    assert sorted(calls) == sorted(["", *[str(k) for k in range(7)]])


@pytest.mark.parametrize("where", ["head", "block", "both"])
def test_series_labels_filters_by_time_without_reading_samples(open_test_db, where):
    db = open_test_db(block_range_ms=60_000)
    early, late = lbl("m", i="early"), lbl("m", i="late")
    fill(db, [early], 0, 50_000, 10_000)
    fill(db, [late], 200_000, 250_000, 10_000)
    if where != "head":
        fill(db, [lbl("other")], 400_000, 400_001, 1)  # moves the head on so that blocks are cut
        db.compact()
        assert db.blocks
    if where == "both":
        fill(db, [late], 400_000, 410_000, 10_000)
    q = db.querier
    m = [Matcher(EQ, "__name__", "m")]
    assert q(0, 100_000).series_labels(m) == [early]
    assert q(150_000, 300_000).series_labels(m) == [late]
    assert q(0, 500_000).series_labels(m) == [early, late]
    assert q(60_000, 190_000).series_labels(m) == []
    # The same series as a full select over the whole range, where chunks and samples agree.
    assert q(0, 500_000).series_labels(m) == [s.labels for s in q(0, 500_000).select(m)]
    db.delete(0, 100_000, m)
    assert q(0, 500_000).series_labels(m) == [late]
    assert q(0, 100_000).series_labels(m) == []
