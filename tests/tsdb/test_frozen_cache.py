"""The cache of decoded rows of compressed head chunks."""

from __future__ import annotations

import numpy as np
import pytest

from narthex.model.matcher import Matcher, MatchType
from narthex.tsdb.frozen import FrozenChunks

from .conftest import STALE_NAN, fill, lbl

WIDTH = 30
ALL = [Matcher(MatchType.REGEX, "__name__", ".+")]


def _rows(k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.integers(1, 20_000, size=(k, WIDTH)), axis=1).astype(np.int64)
    v = rng.normal(size=(k, WIDTH))
    v[::5, 3] = STALE_NAN
    return t, v, np.full(k, WIDTH, dtype=np.int64)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("cache_bytes", [0, 16 * WIDTH * 10, 1 << 20])
def test_decode_hits_misses_and_reuse(cache_bytes):
    fc = FrozenChunks(WIDTH, cache_bytes=cache_bytes)
    t, v, n = _rows(100, 1)
    ids = fc.add(t, v, n)
    for pick in (ids[::7], ids[::7], ids[3:40], ids[::-3], ids[:5]):
        got_t, got_v = fc.decode(pick)
        want = np.searchsorted(ids, pick)
        assert _same(got_t, t[want]) and _same(got_v, v[want])
        got_t[:] = 0  # callers own the rows
    if cache_bytes:
        assert fc.cache_hits > 0 and np.count_nonzero(fc._cslot) <= fc.cache_rows
    else:
        assert fc.cache_hits == 0 and fc.cache_misses == 0
    # Dropped ids are reused by new rows: the cache must not return the old rows.
    fc.drop(ids[:50])
    t2, v2, n2 = _rows(50, 2)
    ids2 = fc.add(t2, v2, n2)
    assert set(ids2.tolist()) == set(ids[:50].tolist())
    got_t, got_v = fc.decode(ids2)
    assert _same(got_t, t2) and _same(got_v, v2)
    got_t, got_v = fc.decode(ids[50:])
    assert _same(got_t, t[50:]) and _same(got_v, v[50:])


def test_head_reads_identical_with_and_without_cache(open_test_db, tmp_path):
    series = [lbl("m", i=str(i)) for i in range(40)]
    dbs = [
        open_test_db(path=tmp_path / "a", head_chunk_cache_bytes=0),
        open_test_db(path=tmp_path / "b", head_chunk_cache_bytes=16 * WIDTH * 64),
        open_test_db(path=tmp_path / "c"),
    ]
    for db in dbs:
        fill(db, series, 0, 3 * 3_600_000, 15_000)
    for step in range(3):
        for mint, maxt in [(0, 2**62), (1_000_000, 2_000_000), (3 * 3_600_000 - 300_000, 2**62)]:
            ref = dbs[0].querier(mint, maxt).select_flat(ALL)
            for db in dbs[1:]:
                got = db.querier(mint, maxt).select_flat(ALL)
                assert got.labels == ref.labels
                assert _same(got.t, ref.t) and _same(got.v, ref.v) and _same(got.offsets, ref.offsets)
        if step == 0:
            for db in dbs:  # cut a block: truncation drops (and frees) compressed rows
                db.compact()
                fill(db, series, 3 * 3_600_000, 4 * 3_600_000, 15_000)
    assert dbs[1].head.frozen.cache_hits > 0 and dbs[2].head.frozen.cache_hits > 0
