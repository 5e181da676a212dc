"""The decoded chunk cache of blocks, the block label cache and ``Querier.select_flat``."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from narthex.model.matcher import Matcher, MatchType
from narthex.tsdb.block import Block, BlockMeta, write_block
from narthex.tsdb.chunkcache import ENTRY_OVERHEAD, ChunkCache, LabelSetBudget
from narthex.tsdb.chunks import ChunkCodec
from narthex.tsdb.head import SeriesData, merge_samples
from narthex.tsdb.metrics import register
from narthex.tsdb.ulid import new_ulid

from .conftest import STALE_NAN, fill, lbl

EQ, RE = MatchType.EQUAL, MatchType.REGEX
ALL = [Matcher(RE, "__name__", ".+")]
SERIES = [lbl("m", job=j, i=str(i)) for j in ("a", "b") for i in range(4)]
HOUR = 3_600_000


def _stale_values(t: int, offsets: np.ndarray) -> np.ndarray:
    vals = t / 1000 + offsets
    if (t // 15_000) % 17 == 0:
        vals[::3] = STALE_NAN
    return vals


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-identical arrays (NaN payloads included)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _assert_same_data(x: SeriesData, y: SeriesData) -> None:
    assert x.labels == y.labels
    assert _same(x.t, y.t) and _same(x.v, y.v) and _same(x.offsets, y.offsets)


def _reference_select(q, matchers) -> list[tuple]:
    """Per-series reference: each part's non-empty series, merged by labels with ``merge_samples``."""
    runs: dict = {}
    for part, _sorted in q._parts(matchers):
        off = part.offsets.tolist()
        for i, labels in enumerate(part.labels):
            if off[i + 1] > off[i]:
                runs.setdefault(labels, []).append((part.t[off[i] : off[i + 1]], part.v[off[i] : off[i + 1]]))
    out = []
    for labels in sorted(runs):
        pieces = runs[labels]
        t, v = (
            pieces[0] if len(pieces) == 1 else merge_samples([p[0] for p in pieces], [p[1] for p in pieces])
        )
        out.append(SimpleNamespace(labels=labels, timestamps=t, values=v))
    return out


def _assert_flat_equals_select(q, matchers) -> None:
    flat = q.select_flat(matchers)
    series = _reference_select(q, matchers)
    assert [(s.labels, s.timestamps.tolist()) for s in q.select(matchers)] == [
        (s.labels, s.timestamps.tolist()) for s in series
    ]
    assert flat.st is None
    assert flat.labels == [s.labels for s in series]
    lengths = [len(s.timestamps) for s in series]
    assert flat.offsets.tolist() == np.concatenate([[0], np.cumsum(lengths)]).tolist()
    assert all(n > 0 for n in lengths)
    if series:
        assert _same(flat.t, np.concatenate([s.timestamps for s in series]).astype(np.int64))
        assert _same(flat.v, np.concatenate([s.values for s in series]).astype(np.float64))
    else:
        assert len(flat.t) == 0 and len(flat.v) == 0


def _blocks_and_head(open_test_db, **opts):
    """Several 1h blocks plus head data (some series only in the head)."""
    db = open_test_db(block_range_ms=HOUR, **opts)
    fill(db, SERIES, 0, 4 * HOUR, 15_000, _stale_values)
    db.compact()
    assert len(db.blocks) >= 2 and db.head.num_series > 0
    fill(db, [lbl("m", job="c", i="9")], 3 * HOUR, 4 * HOUR, 15_000)
    return db


# -- chunk cache -----------------------------------------------------------------------------------


def test_hit_path_returns_identical_data(open_test_db):
    db = _blocks_and_head(open_test_db)
    block = db.blocks[0]
    ids = block.all_postings()
    codec = ChunkCodec()
    plain = block.read(ids, 600_000, 2_000_000, codec, use_cache=False)
    cold = block.read(ids, 600_000, 2_000_000, codec)
    misses = db.chunk_cache.misses
    assert misses > 0 and len(db.chunk_cache) > 0
    warm = block.read(ids, 600_000, 2_000_000, codec)
    assert db.chunk_cache.misses == misses and db.chunk_cache.hits >= misses
    _assert_same_data(plain, cold)
    _assert_same_data(plain, warm)
    # Partly cached: a wider range decodes only the new chunks.
    wide = block.read(ids, 0, HOUR, codec)
    _assert_same_data(block.read(ids, 0, HOUR, codec, use_cache=False), wide)
    # Callers own the arrays they get: modifying them does not reach the cache.
    one = block.read(ids[:1], 0, 100_000, codec)
    one.t[:] = 0
    one.v[:] = 0
    _assert_same_data(
        block.read(ids[:1], 0, 100_000, codec, use_cache=False), block.read(ids[:1], 0, 100_000, codec)
    )


def test_cache_counters_are_exported(open_test_db):
    db = _blocks_and_head(open_test_db)
    registry = CollectorRegistry()
    register(db, registry)
    db.querier(0, HOUR).select(ALL)
    db.querier(0, HOUR).select(ALL)
    text = generate_latest(registry).decode()
    hits = registry.get_sample_value("narthex_tsdb_decoded_chunks_cache_hits_total")
    misses = registry.get_sample_value("narthex_tsdb_decoded_chunks_cache_misses_total")
    assert hits == db.chunk_cache.hits > 0 and misses == db.chunk_cache.misses > 0
    assert "narthex_tsdb_decoded_chunks_cache_bytes " in text


def test_tiny_budget_evicts_and_stays_correct(open_test_db, tmp_path):
    db = _blocks_and_head(open_test_db, chunk_cache_bytes=3 * (16 * 120 + ENTRY_OVERHEAD))
    ref = _blocks_and_head(open_test_db, path=tmp_path / "ref", chunk_cache_bytes=0)
    for _ in range(2):
        for mint, maxt in [(0, 4 * HOUR), (HOUR // 2, 2 * HOUR), (0, 10)]:
            got = db.querier(mint, maxt).select(ALL)
            want = ref.querier(mint, maxt).select(ALL)
            assert [s.labels for s in got] == [s.labels for s in want]
            for a, b in zip(got, want, strict=True):
                assert _same(a.timestamps, b.timestamps) and _same(a.values, b.values)
    cache = db.chunk_cache
    assert cache.evictions > 0 and 0 < cache.size_bytes <= cache.max_bytes and len(cache) <= 3


def test_zero_budget_disables_the_cache(open_test_db):
    db = _blocks_and_head(open_test_db, chunk_cache_bytes=0)
    assert db.chunk_cache is None
    assert all(b._cache is None for b in db.blocks)
    assert len(db.querier(0, 4 * HOUR).select(ALL)) == len(SERIES) + 1


def test_tombstones_apply_to_cached_chunks(open_test_db):
    db = _blocks_and_head(open_test_db)
    q = db.querier(0, 4 * HOUR)
    before = {s.labels: s for s in q.select(ALL)}
    assert db.chunk_cache.misses > 0
    db.delete(HOUR // 2, HOUR + 60_000, [Matcher(EQ, "job", "a")])
    hits = db.chunk_cache.hits
    after = {s.labels: s for s in db.querier(0, 4 * HOUR).select(ALL)}
    assert db.chunk_cache.hits > hits
    for labels, s in after.items():
        old = before[labels]
        if dict(labels)["job"] == "a":
            assert not np.any((s.timestamps >= HOUR // 2) & (s.timestamps <= HOUR + 60_000))
            assert len(s.timestamps) == len(old.timestamps) - 125
        else:
            assert _same(s.timestamps, old.timestamps) and _same(s.values, old.values)
    _assert_flat_equals_select(db.querier(0, 4 * HOUR), ALL)
    # Rewriting the blocks without the deleted samples keeps reads identical.
    db.clean_tombstones()
    again = {s.labels: s for s in db.querier(0, 4 * HOUR).select(ALL)}
    assert again.keys() == after.keys()
    for labels, s in again.items():
        assert _same(s.timestamps, after[labels].timestamps) and _same(s.values, after[labels].values)


def _write(root: Path, offset: float, mint: int = 0) -> Path:
    """A block of two series with 300 samples each; values shifted by ``offset``."""
    t = np.arange(mint, mint + 300 * 15_000, 15_000, dtype=np.int64)
    data = SeriesData(
        [lbl("m", i="0"), lbl("m", i="1")],
        np.concatenate([t, t]),
        np.concatenate([t / 1000 + offset, t / 1000 + offset + 1]),
        np.array([0, 300, 600], dtype=np.int64),
    )
    meta = BlockMeta(ulid=new_ulid(), min_time=mint, max_time=mint + 300 * 15_000)
    meta.sources = [meta.ulid]
    root.mkdir(parents=True, exist_ok=True)
    return write_block(root, meta, data, ChunkCodec())


def test_entries_of_another_block_are_never_served(tmp_path):
    cache = ChunkCache(1 << 20)
    codec = ChunkCodec()
    a = Block(_write(tmp_path / "a", 0.0), cache)
    ids = a.all_postings()
    got_a = a.read(ids, 0, 2**62, codec)
    assert len(cache) > 0
    a.close()
    assert len(cache) == 0 and cache.size_bytes == 0
    b = Block(_write(tmp_path / "b", 1000.0), cache)
    c = Block(_write(tmp_path / "c", 2000.0), cache)  # same chunk numbers, both cached at once
    for block, offset in ((b, 1000.0), (c, 2000.0), (b, 1000.0), (c, 2000.0)):
        got = block.read(ids, 0, 2**62, codec)
        assert np.array_equal(got.v, got_a.v + offset)
    assert cache.hits > 0
    b.close()
    c.close()


def test_drop_after_compaction_and_concurrent_reads(open_test_db, tmp_path):
    db = _blocks_and_head(open_test_db, chunk_cache_bytes=40 * (16 * 120 + ENTRY_OVERHEAD))
    ref = _blocks_and_head(open_test_db, path=tmp_path / "ref", chunk_cache_bytes=0)
    want = ref.querier(0, 4 * HOUR).select_flat(ALL)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for k in range(15):
                mint = (k % 5) * HOUR // 2
                got = db.querier(mint, 4 * HOUR).select_flat(ALL)
                exp = ref.querier(mint, 4 * HOUR).select_flat(ALL)
                assert got.labels == exp.labels
                assert _same(got.t, exp.t) and _same(got.v, exp.v) and _same(got.offsets, exp.offsets)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    # Compacting the blocks together drops the sources' entries; reads stay identical.
    old = list(db.blocks)
    db.options.block_range_ms = HOUR
    for b in old:
        b.drop_cached()
    assert len(db.chunk_cache) == 0
    db.clean_tombstones()
    got = db.querier(0, 4 * HOUR).select_flat(ALL)
    assert got.labels == want.labels and _same(got.t, want.t) and _same(got.v, want.v)


# -- label cache -----------------------------------------------------------------------------------


def test_series_labels_are_cached(tmp_path):
    block = Block(_write(tmp_path, 0.0))
    ids = block.all_postings()
    assert block.series_labels(ids[1:], cache=False) == [lbl("m", i="1")]
    assert block._labels == [None, None]
    first = block.series_labels(ids)
    assert first == [lbl("m", i="0"), lbl("m", i="1")]
    assert all(x is y for x, y in zip(block.series_labels(ids), first, strict=True))
    block.close()


def test_kept_label_sets_stay_within_the_budget(tmp_path):
    budget = LabelSetBudget(3)
    a = Block(_write(tmp_path / "a", 0.0), label_budget=budget)
    b = Block(_write(tmp_path / "b", 0.0, mint=10 * HOUR), label_budget=budget)
    both = [lbl("m", i="0"), lbl("m", i="1")]
    assert a.series_labels(a.all_postings()) == both
    assert b.series_labels(b.all_postings()) == both  # only one of b's sets fits
    assert budget.used == 3 and b._labels.count(None) == 1
    assert b.series_labels(b.all_postings()) == both  # the other is built again, correctly
    a.close()  # its share goes back to the budget
    assert budget.used == 1
    b.series_labels(b.all_postings())
    assert budget.used == 2 and b._labels.count(None) == 0
    b.close()
    assert budget.used == 0


# -- select_flat -----------------------------------------------------------------------------------

RANGES = [
    (0, 4 * HOUR),
    (HOUR // 2, 3 * HOUR + 1),
    (3 * HOUR + 60_000, 4 * HOUR),
    (0, 1),
    (10 * HOUR, 11 * HOUR),
]
MATCHERS = [
    ALL,
    [Matcher(EQ, "job", "a")],
    [Matcher(EQ, "job", "c")],
    [Matcher(EQ, "i", "1")],
    [Matcher(EQ, "x", "y")],
]


@pytest.mark.parametrize("cache", [0, 1 << 20])
def test_select_flat_equals_select(open_test_db, cache):
    db = _blocks_and_head(open_test_db, chunk_cache_bytes=cache)
    db.delete(HOUR - 60_000, HOUR + 60_000, [Matcher(EQ, "i", "1")])
    db.delete(0, 10 * HOUR, [Matcher(EQ, "i", "2"), Matcher(EQ, "job", "b")])  # whole series gone
    for mint, maxt in RANGES:
        for matchers in MATCHERS:
            _assert_flat_equals_select(db.querier(mint, maxt), matchers)


def test_select_flat_head_only_and_block_only(open_test_db, tmp_path):
    head_only = open_test_db(block_range_ms=HOUR)
    fill(head_only, SERIES[::-1], 0, HOUR, 15_000, _stale_values)
    block_only = open_test_db(path=tmp_path / "b", block_range_ms=HOUR)
    fill(block_only, SERIES, 0, 2 * HOUR, 15_000)
    fill(block_only, SERIES[:1], 5 * HOUR, 5 * HOUR + 1, 1)
    block_only.compact()
    for db in (head_only, block_only):
        for mint, maxt in RANGES:
            for matchers in MATCHERS:
                _assert_flat_equals_select(db.querier(mint, maxt), matchers)


def test_select_flat_overlapping_blocks(open_test_db, tmp_path):
    root = tmp_path / "data"
    db = open_test_db(path=root, block_range_ms=100 * HOUR)
    fill(db, [*SERIES[:2], lbl("m", i="0")], 5_000_000, 5_300_000, 7_500)  # head overlaps blocks
    paths = [
        _write(root, 0.0, mint=0),
        _write(root, 0.5, mint=1_500_000),  # overlaps, equal timestamps with other values
        _write(root, 7.0, mint=1_507_500),  # overlaps, timestamps in between
    ]
    # As a head cut publishing its block before truncating the head.
    db.blocks = [Block(p, db.chunk_cache) for p in paths]
    assert db.head.num_series == 3
    for mint, maxt in [(0, 10 * HOUR), (1_400_000, 1_600_000), (4_000_000, 6_000_000), (1, 2)]:
        for matchers in (ALL, [Matcher(EQ, "i", "0")]):
            _assert_flat_equals_select(db.querier(mint, maxt), matchers)
    flat = db.querier(0, 10 * HOUR).select_flat([Matcher(EQ, "i", "0")])
    t, v = flat.t[: flat.offsets[1]], flat.v[: flat.offsets[1]]
    assert np.all(np.diff(t) > 0)
    # On equal timestamps the earlier part (blocks by min time, then the head) wins.
    assert v[t == 1_500_000][0] == 1_500.0
    assert v[t == 5_010_000][0] == 5_010.5
