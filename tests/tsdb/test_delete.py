"""Series deletion: tombstones in head and blocks, WAL replay, compaction and clean_tombstones."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from narthex.model.matcher import Matcher, MatchType
from narthex.tsdb import TSDBOptions, open_db, records
from narthex.tsdb.tombstones import FILENAME, Tombstones, add_interval, read_file, write_file
from tests.tsdb.conftest import fill, lbl, select_all

R = 10_000  # block range of these tests (ms); samples every second
SERIES = [lbl("m", a="1"), lbl("m", a="2"), lbl("n", b="x")]
EQ = MatchType.EQUAL


def _m(**labels: str) -> list[Matcher]:
    return [Matcher(EQ, k, v) for k, v in labels.items()]


def _times(db, **match: str) -> dict[str, np.ndarray]:
    return {dict(s.labels).get("a", dict(s.labels).get("b")): s.timestamps for s in select_all(db, **match)}


def _with_blocks(open_test_db, path: Path | None = None):
    """A DB with blocks [0, 10s), [10s, 20s) and 15 s of head data, every second, three series."""
    db = open_test_db(path, block_range_ms=R)
    fill(db, SERIES, 0, 35_000, 1000)
    db.compact()
    assert [(b.meta.min_time, b.meta.max_time) for b in db.blocks] == [(0, 10_000), (10_000, 20_000)]
    return db


def test_intervals_and_file_round_trip(tmp_path: Path) -> None:
    assert add_interval([(0, 5), (10, 20)], 6, 9) == [(0, 20)]
    assert add_interval([(0, 5), (10, 20)], 30, 40) == [(0, 5), (10, 20), (30, 40)]
    assert add_interval([(10, 20)], 0, 3) == [(0, 3), (10, 20)]
    stones = Tombstones().with_added(np.array([3, 1]), 5, 7).with_added(np.array([1]), 9, 12)
    write_file(tmp_path, stones)
    assert read_file(tmp_path).items() == [(1, [(5, 7), (9, 12)]), (3, [(5, 7)])]
    assert not (tmp_path / (FILENAME + ".tmp")).exists()
    data = bytearray((tmp_path / FILENAME).read_bytes())
    data[20] ^= 1
    (tmp_path / FILENAME).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        read_file(tmp_path)
    write_file(tmp_path, Tombstones())
    assert not (tmp_path / FILENAME).exists() and not read_file(tmp_path)
    body = records.encode_tombstones(np.array([4]), np.array([-5]), np.array([2**63 - 1]))
    got = records.decode_tombstones(body)
    assert (got.refs.tolist(), got.mint.tolist(), got.maxt.tolist()) == ([4], [-5], [2**63 - 1])


def test_head_delete_whole_series_and_range_survives_reopen(open_test_db, tmp_path: Path) -> None:
    db = open_test_db()
    fill(db, SERIES, 0, 20_000, 1000)
    db.delete(-(2**63), 2**63 - 1, _m(a="1"))
    db.delete(5_000, 8_000, _m(a="2"))
    expected = np.r_[np.arange(0, 5_000, 1000), np.arange(9_000, 20_000, 1000)]
    for current in (db, None):
        if current is None:
            db.close()
            current = open_test_db()
        got = _times(current)
        assert sorted(got) == ["2", "x"]
        np.testing.assert_array_equal(got["2"], expected)
        q = current.querier(0, 20_000)
        assert q.label_values("a") == ["2"]
        assert q.label_values("a", _m(__name__="m")) == ["2"]
        assert [dict(s.labels)["a"] for s in q.select(_m(__name__="m"))] == ["2"]
    # Samples appended after the deletion are not affected (nothing beyond the head's range is deleted).
    fill(current, SERIES[:1], 20_000, 22_000, 1000)
    np.testing.assert_array_equal(_times(current, a="1")["1"], [20_000, 21_000])
    assert current.querier(0, 30_000).label_values("a") == ["1", "2"]
    assert current.querier(0, 19_000).label_values("a") == ["2"]


def test_label_names_hide_fully_deleted_series(open_test_db) -> None:
    db = _with_blocks(open_test_db)
    assert "b" in db.querier(0, 40_000).label_names()
    db.delete(-(2**63), 2**63 - 1, _m(__name__="n"))
    q = db.querier(0, 40_000)
    assert q.label_names() == ["__name__", "a"]
    assert q.label_values("__name__") == ["m"]
    assert q.label_names(_m(b="x")) == [] and q.label_values("b") == []
    assert db.querier(0, 40_000).select(_m(__name__="n")) == []


def test_block_and_head_delete_and_reopen(open_test_db, tmp_path: Path) -> None:
    db = _with_blocks(open_test_db)
    db.delete(8_000, 24_000, _m(a="1"))
    with_stones = [b for b in db.blocks if (b.path / FILENAME).exists()]
    assert len(with_stones) == 2
    expected = np.r_[np.arange(0, 8_000, 1000), np.arange(25_000, 35_000, 1000)]
    np.testing.assert_array_equal(_times(db, a="1")["1"], expected)
    np.testing.assert_array_equal(_times(db, a="2")["2"], np.arange(0, 35_000, 1000))
    # A querier opened before the deletion does not return deleted samples either.
    q = db.querier(0, 40_000)
    db.delete(0, 2_000, _m(a="2"))
    np.testing.assert_array_equal(q.select(_m(a="2"))[0].timestamps, np.arange(3_000, 35_000, 1000))
    db.close()
    db = open_test_db(block_range_ms=R)
    np.testing.assert_array_equal(_times(db, a="1")["1"], expected)
    np.testing.assert_array_equal(_times(db, a="2")["2"], np.arange(3_000, 35_000, 1000))


def test_clean_tombstones_rewrites_blocks(open_test_db, tmp_path: Path) -> None:
    db = _with_blocks(open_test_db)
    db.delete(0, 9_999, _m(__name__="m"))  # block 1: only n left
    db.delete(12_000, 13_000, _m(a="2"))  # block 2: two samples fewer
    before = {b.meta.min_time: b.meta.num_samples for b in db.blocks}
    assert before == {0: 30, 10_000: 30}
    db.clean_tombstones()
    after = {b.meta.min_time: b for b in db.blocks}
    assert {k: b.meta.num_samples for k, b in after.items()} == {0: 10, 10_000: 28}
    assert after[0].meta.num_series == 1
    for block in db.blocks:
        assert not (block.path / FILENAME).exists() and not block.tombstones
        meta = json.loads((block.path / "meta.json").read_text())
        assert meta["stats"]["numSamples"] == block.meta.num_samples
    dirs = sorted(p.name for p in (tmp_path / "data").iterdir() if p.is_dir() and p.name != "wal")
    assert dirs == sorted(b.meta.ulid for b in db.blocks)
    got = _times(db)
    np.testing.assert_array_equal(got["1"], np.arange(10_000, 35_000, 1000))
    np.testing.assert_array_equal(
        got["2"], np.r_[np.arange(10_000, 12_000, 1000), np.arange(14_000, 35_000, 1000)]
    )
    np.testing.assert_array_equal(got["x"], np.arange(0, 35_000, 1000))
    db.close()
    db = open_test_db(block_range_ms=R)
    assert len(db.blocks) == 2
    np.testing.assert_array_equal(_times(db)["2"], got["2"])


def test_clean_tombstones_drops_fully_deleted_block(open_test_db) -> None:
    db = _with_blocks(open_test_db)
    db.delete(0, 9_999, [Matcher(MatchType.REGEX, "__name__", ".+")])
    db.clean_tombstones()
    assert [b.meta.min_time for b in db.blocks] == [10_000]
    assert min(s.timestamps[0] for s in select_all(db)) == 10_000


def test_compaction_drops_deleted_samples(open_test_db) -> None:
    db = _with_blocks(open_test_db)
    db.delete(0, 4_999, _m(a="1"))
    db.delete(15_000, 16_000, _m(a="1"))
    db.delete(21_000, 21_000, _m(a="2"))  # head: not written into the next block
    fill(db, SERIES, 35_000, 70_000, 1000)
    db.compact()  # cuts more head blocks and merges the first three into one [0, 30s) block
    merged = db.blocks[0]
    assert (merged.meta.min_time, merged.meta.max_time, merged.meta.level) == (0, 30_000, 2)
    assert merged.meta.num_samples == 90 - 5 - 2 - 1
    assert not (merged.path / FILENAME).exists()
    got = _times(db, mint=0)
    assert len(got["1"]) == 70 - 7 and len(got["2"]) == 69 and 21_000 not in got["2"]


def test_head_cut_and_checkpoint_keep_deletions(open_test_db) -> None:
    db = open_test_db(block_range_ms=R, out_of_order_window_ms=60_000)
    fill(db, SERIES, 0, 12_000, 1000)
    app = db.appender()
    ref = app.series_ref(SERIES[0])
    app.append_batch(np.array([ref]), 500, np.array([7.0]))  # out of order
    app.commit()
    db.delete(0, 3_000, _m(a="1"))
    fill(db, SERIES, 12_000, 30_000, 1000)
    db.delete(14_000, 15_000, _m(a="1"))
    db.compact()  # cuts [0, 10s) (deleted samples not written) and checkpoints the head
    assert db.blocks[0].meta.num_samples == 30 - 4
    expected = np.r_[np.arange(4_000, 14_000, 1000), np.arange(16_000, 30_000, 1000)]
    np.testing.assert_array_equal(_times(db, a="1")["1"], expected)
    db.close()
    db = open_test_db(block_range_ms=R)
    np.testing.assert_array_equal(_times(db, a="1")["1"], expected)


_DELETER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from prometheus_client import CollectorRegistry
    from narthex.model.labels import labels_from_dict
    from narthex.model.matcher import Matcher, MatchType
    from narthex.tsdb import TSDBOptions, open_db

    opts = TSDBOptions(block_range_ms=10_000, background_compaction=False)
    db = open_db(sys.argv[1], opts, registry=CollectorRegistry())
    app = db.appender()
    refs = np.array([app.series_ref(labels_from_dict({"__name__": "m", "i": str(i)})) for i in range(3)])
    app.rollback()
    for k in range(35):
        app = db.appender()
        app.append_batch(refs, k * 1000, np.arange(3) + k)
        app.commit()
    db.compact()
    db.delete(5_000, 25_000, [Matcher(MatchType.EQUAL, "i", "1")])
    print("deleted", flush=True)
    time.sleep(60)
    """
)


def test_deletion_survives_kill_minus_nine(tmp_path: Path) -> None:
    path = str(tmp_path / "data")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _DELETER, path], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "deleted\n"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    db = open_db(path, TSDBOptions(block_range_ms=10_000, background_compaction=False), CollectorRegistry())
    try:
        got = {dict(s.labels)["i"]: s.timestamps for s in select_all(db)}
        np.testing.assert_array_equal(
            got["1"], np.r_[np.arange(0, 5_000, 1000), np.arange(26_000, 35_000, 1000)]
        )
        np.testing.assert_array_equal(got["0"], np.arange(0, 35_000, 1000))
        assert any(b.tombstones for b in db.blocks)
    finally:
        db.close()


def test_compaction_rewrites_blocks_full_of_tombstones(open_test_db) -> None:
    db = _with_blocks(open_test_db)
    db.delete(0, 2**63 - 1, _m(a="1"))
    db.delete(0, 2**63 - 1, _m(a="2"))
    first, second = db.blocks
    meta = json.loads((first.path / "meta.json").read_text())
    assert meta["stats"]["numTombstones"] == 2
    db.compact()  # 2 tombstones < 3 series: nothing to do
    assert [b.meta.ulid for b in db.blocks] == [first.meta.ulid, second.meta.ulid]
    db.delete(0, 4_000, _m(b="x"))
    db.compact()  # now the first block (not the newest) is rewritten alone
    assert db.blocks[0].meta.ulid != first.meta.ulid and db.blocks[1] is second
    assert db.blocks[0].meta.num_samples == 5 and not db.blocks[0].tombstones
    assert db.blocks[0].meta.parents[0]["ulid"] == first.meta.ulid
    assert not first.path.exists()
