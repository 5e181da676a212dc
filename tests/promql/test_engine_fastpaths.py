"""The engine's fast paths agree with their plain definitions (window search, counter resets) and
the parse cache shares trees without losing annotation positions."""

from __future__ import annotations

import numpy as np
import pytest

from narthex.promql import eval_range as rf
from narthex.promql.engine import Engine, search_windows_many
from narthex.promql.parser import ALL_FEATURES
from narthex.promql.value import RangeBlock


def _series(rng: np.random.Generator, nseries: int) -> tuple[np.ndarray, np.ndarray]:
    lens = rng.integers(0, 30, nseries)
    parts = [np.sort(rng.choice(np.arange(0, 400_000, 1000), n, replace=False)) for n in lens]
    t = np.concatenate(parts).astype(np.int64) if nseries else np.zeros(0, dtype=np.int64)
    return t, np.concatenate(([0], np.cumsum(lens))).astype(np.int64)


def _reference(t: np.ndarray, offsets: np.ndarray, q: np.ndarray, side: str) -> np.ndarray:
    nseries = len(offsets) - 1
    q = np.broadcast_to(q, (nseries, q.shape[-1]))
    out = np.empty(q.shape, dtype=np.int64)
    for i in range(nseries):
        a, b = offsets[i], offsets[i + 1]
        out[i] = a + np.searchsorted(t[a:b], q[i], side=side)  # type: ignore[call-overload]
    return out


@pytest.mark.parametrize("seed", range(40))
def test_search_windows_many_matches_per_series_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t, offsets = _series(rng, int(rng.integers(0, 8)))
    steps = int(rng.integers(1, 40))
    if seed % 3 == 0:
        refs = np.sort(rng.integers(0, 450_000, steps))
    elif seed % 3 == 1:
        refs = 1000 * int(rng.integers(0, 100)) + 15_000 * np.arange(steps)
    else:
        refs = np.full(steps, int(rng.integers(0, 450_000)))
    refs = refs.astype(np.int64)
    rng_ms = int(rng.choice([1000, 15_000, 60_000, 300_000]))
    for side in ("right", "left"):
        queries = [(refs - rng_ms)[None, :], refs[None, :]]
        got = search_windows_many(t, offsets, queries, side)
        for q, g in zip(queries, got, strict=True):
            np.testing.assert_array_equal(g, _reference(t, offsets, q, side))


@pytest.mark.parametrize("seed", range(20))
def test_counter_reset_sums_match_dense_sum(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t, offsets = _series(rng, 5)
    v = rng.choice([0.0, -0.0, 1.0, 3.0, -2.0, np.inf, np.nan, 7.5], t.size)
    refs = np.sort(rng.integers(0, 450_000, 12)).astype(np.int64)
    lo, hi = search_windows_many(t, offsets, [(refs - 60_000)[None, :], refs[None, :]], "right")
    rb = RangeBlock([()] * 5, t, v, offsets, lo, hi, refs, 60_000, np.zeros(5, dtype=bool))
    prev = np.concatenate(([np.nan], v[:-1]))
    dropped = v < prev
    dropped[offsets[:-1][offsets[:-1] < v.size]] = False
    with np.errstate(invalid="ignore"):
        dense = rf._cum_window(np.where(dropped, prev, 0.0), lo, hi)
        resets = rf._Resets(rb, None)
        got = resets.window_sums(lo, hi) if resets else np.zeros(lo.shape)
    np.testing.assert_array_equal(got, dense)
    numbers = ~np.isnan(dense)
    np.testing.assert_array_equal(np.signbit(got[numbers]), np.signbit(dense[numbers]))


def test_parse_cache_shares_trees_per_features() -> None:
    eng = Engine()
    text = "rate(some_metric_total[5m])"
    assert eng.parse(text) is eng.parse(text)
    assert Engine().parse(text) is eng.parse(text)
    other = Engine(features=ALL_FEATURES)
    assert other.parse(text) is not eng.parse(text)
    assert other.parse(text) == eng.parse(text)


def test_cached_tree_keeps_annotation_positions() -> None:
    class Empty:
        def querier(self, mint: int, maxt: int) -> Empty:
            return self

        def select(self, matchers: list[object]) -> list[object]:
            return []

    eng = Engine()
    text = "quantile(2, vector(1))"
    for _ in range(2):
        res = eng.instant_query(Empty(), eng.parse(text), 0)
        assert res.warnings == ["PromQL warning: quantile value should be between 0 and 1, got 2 (1:10)"]
