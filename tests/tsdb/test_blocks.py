"""Head-to-block cuts, merged queries, restarts, compaction and retention."""

from __future__ import annotations

import itertools
import json
import threading

import numpy as np

from narthex.model.matcher import Matcher, MatchType
from narthex.tsdb.block import BlockMeta
from narthex.tsdb.compact import plan
from narthex.tsdb.ulid import is_ulid

from .conftest import STALE_NAN, add, fill, lbl, select_all

H = 3_600_000
RANGE = 60_000  # one-minute blocks keep the tests small
STEP = 5_000
SERIES = [lbl("m", i=str(i), job="j") for i in range(30)]


def _values(t: int, offsets: np.ndarray) -> np.ndarray:
    vals = np.sin(t / 7e4 + offsets) * 100 + offsets
    if t % 95_000 == 0:
        vals = vals.copy()
        vals[0] = STALE_NAN
    return vals


def _expected(start: int, end: int) -> dict:
    ts = np.arange(start, end, STEP)
    offsets = np.arange(len(SERIES), dtype=np.float64)
    vals = np.stack([_values(int(t), offsets) for t in ts], axis=1)
    return {lb: (ts, vals[i]) for i, lb in enumerate(SERIES)}


def _assert_same(db, start: int, end: int, mint=-(2**62), maxt=2**62) -> None:
    exp = _expected(start, end)
    got = select_all(db, mint, maxt, job="j")
    assert [s.labels for s in got] == sorted(SERIES)
    for s in got:
        ts, vs = exp[s.labels]
        keep = (ts >= mint) & (ts <= maxt)
        np.testing.assert_array_equal(s.timestamps, ts[keep])
        np.testing.assert_array_equal(s.values.view(np.uint64), vs[keep].view(np.uint64))


def test_head_cut_into_blocks_and_merged_reads(open_test_db, tmp_path):
    db = open_test_db(block_range_ms=RANGE)
    fill(db, SERIES, 0, 400_000, STEP, _values)
    db.compact()
    # Head spans <= 1.5 ranges afterwards; everything older lives in blocks.
    assert db.head.max_time - db.head.min_time <= RANGE * 3 // 2
    assert len(db.blocks) >= 2
    _assert_same(db, 0, 400_000)
    _assert_same(db, 0, 400_000, 55_000, 190_000)  # spans blocks and head
    meta = json.loads((db.blocks[0].path / "meta.json").read_text())
    assert is_ulid(meta["ulid"]) and meta["ulid"] == db.blocks[0].path.name
    assert set(meta) >= {"ulid", "minTime", "maxTime", "stats", "compaction", "version"}
    assert set(meta["stats"]) >= {"numSamples", "numSeries", "numChunks"}
    assert meta["stats"]["numSeries"] == 30
    assert meta["compaction"]["level"] >= 1 and meta["compaction"]["sources"]
    # Samples older than the newest block are out of bounds now.
    assert add(db, SERIES[:1], 1_000, [1.0]).rejected == {"out of bounds": 1}
    db.close()
    db2 = open_test_db(block_range_ms=RANGE)
    assert len(db2.blocks) == len(db.blocks)
    _assert_same(db2, 0, 400_000)


def test_unselected_chunks_are_not_decoded(open_test_db, monkeypatch):
    db = open_test_db(block_range_ms=RANGE)
    fill(db, SERIES, 0, 200_000, STEP, _values)
    db.compact()
    from narthex.tsdb import chunks

    decoded: list[int] = []
    original = chunks.ChunkCodec.decode

    def spy(self, payloads, counts):
        decoded.append(len(payloads))
        return original(self, payloads, counts)

    monkeypatch.setattr(chunks.ChunkCodec, "decode", spy)
    q = db.querier(0, 200_000)
    out = q.select([Matcher(MatchType.EQUAL, "i", "3")])
    assert len(out) == 1
    assert sum(decoded) == sum(1 for b in db.blocks)  # one chunk per block for one series


def test_compaction_keeps_samples_identical(open_test_db):
    db = open_test_db(block_range_ms=RANGE, retention_ms=100 * RANGE)
    # ranges: 1m, 3m, 9m (10% of 100m)
    fill(db, SERIES, 0, 1_200_000, STEP, _values)
    db.compact()
    levels = sorted(b.meta.level for b in db.blocks)
    assert max(levels) >= 3
    assert db.counters["compactions"] > len(db.blocks)
    _assert_same(db, 0, 1_200_000)
    metas = [b.meta for b in db.blocks]
    for a, b in itertools.pairwise(metas):
        assert a.max_time <= b.min_time  # no overlaps left
    top = max(db.blocks, key=lambda b: b.meta.level)
    doc = json.loads((top.path / "meta.json").read_text())
    assert len(doc["compaction"]["sources"]) > 1 and doc["compaction"]["parents"]
    db.close()
    db2 = open_test_db(block_range_ms=RANGE, retention_ms=100 * RANGE)
    _assert_same(db2, 0, 1_200_000)


def test_reads_stay_correct_during_compaction(open_test_db):
    db = open_test_db(block_range_ms=RANGE, retention_ms=100 * RANGE)
    fill(db, SERIES, 0, 600_000, STEP, _values)
    q_before = db.querier(0, 2**62)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        try:
            while not stop.is_set():
                _assert_same(db, 0, 600_000)
        except BaseException as err:
            errors.append(err)

    th = threading.Thread(target=reader)
    th.start()
    db.compact()
    stop.set()
    th.join()
    assert not errors
    # A querier opened before compaction still reads its (now deleted) blocks and the head.
    got = q_before.select([Matcher(MatchType.EQUAL, "i", "0")])
    np.testing.assert_array_equal(got[0].timestamps, np.arange(0, 600_000, STEP))


def test_time_retention(open_test_db):
    db = open_test_db(block_range_ms=RANGE, retention_ms=3 * RANGE)
    fill(db, SERIES[:3], 0, 600_000, STEP)
    db.compact()
    newest = max(b.meta.max_time for b in db.blocks)
    assert all(newest - b.meta.max_time < 3 * RANGE for b in db.blocks)
    assert db.counters["time_retentions"] >= 1
    out = select_all(db)
    assert out[0].timestamps[0] >= newest - 4 * RANGE
    assert out[0].timestamps[-1] == 595_000


def test_size_retention(open_test_db):
    db = open_test_db(block_range_ms=RANGE, retention_ms=0)
    fill(db, SERIES, 0, 600_000, STEP, _values)
    db.compact()
    sizes = sorted((b.meta.max_time, b.size_bytes) for b in db.blocks)
    total = sum(s for _, s in sizes)
    db.close()
    limit = db.wal_size() + total - sizes[0][1] - 1  # one byte short of keeping the oldest block
    db2 = open_test_db(block_range_ms=RANGE, retention_ms=0, retention_bytes=limit)
    db2.compact()
    assert len(db2.blocks) <= len(sizes) - 1
    assert db2.blocks_size() + db2.wal_size() <= limit
    assert db2.counters["size_retentions"] >= 1


def test_planner_levels():
    def meta(i, lo, hi, level=1):
        return BlockMeta(ulid=str(i), min_time=lo, max_time=hi, level=level, sources=[str(i)])

    r = [10, 30, 90]
    # Three aligned 10s blocks plus a newer one: the first three merge into a 30s block.
    ms = [meta(0, 0, 10), meta(1, 10, 20), meta(2, 20, 30), meta(3, 30, 40)]
    assert [m.ulid for m in plan(ms, r)] == ["0", "1", "2"]
    # The newest block is never picked: two blocks where the second is the newest.
    assert plan([meta(0, 0, 10), meta(1, 10, 20)], r) == []
    # Overlapping blocks are compacted first.
    assert [m.ulid for m in plan([meta(0, 0, 10), meta(1, 5, 15), meta(2, 40, 50)], r)] == ["0", "1"]


def test_background_compaction_and_series_gc(open_test_db):
    import time

    db = open_test_db(block_range_ms=RANGE, background_compaction=True, compaction_interval_s=0.05)
    gone = lbl("churned")
    add(db, [gone], 0, [1.0])
    fill(db, SERIES, 0, 300_000, STEP, _values)
    deadline = time.monotonic() + 10
    while db.head.max_time - db.head.min_time > RANGE * 3 // 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert db.blocks
    # The series that stopped early lives only in a block now; its head entry was collected.
    assert gone not in db.head.series_by_labels
    assert db.head.series_removed == 1
    assert [s.labels for s in select_all(db, __name__="churned")] == [gone]
    _assert_same(db, 0, 300_000)


def test_compaction_in_small_series_batches(open_test_db, tmp_path):
    from narthex.tsdb.block import Block
    from narthex.tsdb.chunks import ChunkCodec
    from narthex.tsdb.compact import compacted_meta, merge_series, write_compacted
    from narthex.tsdb.head import INT64_MAX, INT64_MIN

    db = open_test_db(block_range_ms=RANGE)
    fill(db, [lbl("extra")], 0, 30_000, STEP)
    fill(db, SERIES, 0, 300_000, STEP, _values)
    db.compact()
    blocks = db.blocks[:3]
    codec = ChunkCodec()
    out_root = tmp_path / "out"
    out_root.mkdir()
    path = write_compacted(out_root, blocks, compacted_meta([b.meta for b in blocks]), codec, batch=7)
    merged = Block(path)
    got = merged.read(merged.all_postings(), INT64_MIN, INT64_MAX, codec)
    want = merge_series([b.read(b.all_postings(), INT64_MIN, INT64_MAX, codec) for b in blocks])
    assert got.labels == want.labels and len(got.labels) == 31
    np.testing.assert_array_equal(got.offsets, want.offsets)
    np.testing.assert_array_equal(got.t, want.t)
    np.testing.assert_array_equal(got.v.view(np.uint64), want.v.view(np.uint64))
    assert merged.meta.num_series == 31 and merged.meta.num_samples == len(want.t)
    merged.close()


def test_open_cleans_leftovers_and_skips_broken_blocks(open_test_db, tmp_path):
    import shutil

    db = open_test_db(block_range_ms=RANGE)
    fill(db, SERIES[:2], 0, 400_000, STEP)
    db.compact()
    ulids = [b.meta.ulid for b in db.blocks]
    assert len(ulids) >= 3
    db.close()
    root = tmp_path / "data"
    # A compaction that crashed after writing its output but before deleting its inputs.
    first, second = (root / u for u in ulids[:2])
    meta = json.loads((first / "meta.json").read_text())
    meta["ulid"] = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    meta["compaction"]["parents"] = [{"ulid": ulids[0], "minTime": 0, "maxTime": 1}]
    shutil.copytree(first, root / meta["ulid"])
    (root / meta["ulid"] / "meta.json").write_text(json.dumps(meta))
    # A half-written block and a corrupt index.
    (root / "01ARZ3NDEKTSV4RRFFQ69G5FAW.tmp-for-creation").mkdir()
    index = bytearray((second / "index").read_bytes())
    index[20] ^= 0xFF
    (second / "index").write_bytes(bytes(index))
    db2 = open_test_db(block_range_ms=RANGE)
    loaded = {b.meta.ulid for b in db2.blocks}
    assert meta["ulid"] in loaded and ulids[0] not in loaded and ulids[1] not in loaded
    assert not (root / ulids[0]).exists()
    assert not (root / "01ARZ3NDEKTSV4RRFFQ69G5FAW.tmp-for-creation").exists()
