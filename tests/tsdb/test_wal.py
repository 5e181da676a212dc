"""WAL durability: replay, torn/corrupt tails, checkpoints, the lock file and kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from narthex.tsdb import LockError, TSDBOptions, open_db

from .conftest import STALE_NAN, add, fill, lbl, select_all


def test_replay_after_reopen(open_test_db, tmp_path):
    db = open_test_db()
    series = [lbl("m", i=str(i)) for i in range(20)]
    fill(db, series, 0, 600_000, 15_000)
    add(db, series[:1], 600_000, [STALE_NAN])
    before = select_all(db)
    db.close()
    db2 = open_test_db()
    after = select_all(db2)
    assert [s.labels for s in after] == [s.labels for s in before]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a.timestamps, b.timestamps)
        np.testing.assert_array_equal(a.values.view(np.uint64), b.values.view(np.uint64))
    # Per-series state survives too: an older sample is still out of order.
    assert add(db2, series[1:2], 0, [5.0]).rejected == {"out of order sample": 1}
    assert add(db2, series[1:2], 700_000, [5.0]).appended == 1


def _segments(path: Path) -> list[Path]:
    return sorted(p for p in (path / "wal").iterdir() if p.name.isdigit())


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_torn_or_corrupt_tail_is_cut(open_test_db, tmp_path, damage):
    db = open_test_db()
    for k in range(10):
        add(db, [lbl("m")], 1000 * k, [float(k)])
    db.close()
    seg = max((p for p in _segments(tmp_path / "data") if p.stat().st_size), key=lambda p: p.name)
    data = bytearray(seg.read_bytes())
    if damage == "truncate":
        data = data[:-5]
    else:
        data[-3] ^= 0xFF
    seg.write_bytes(bytes(data))
    db2 = open_test_db()
    s = select_all(db2)[0]
    assert s.timestamps.tolist() == [1000 * k for k in range(9)]
    assert db2.wal.corruptions == 1
    add(db2, [lbl("m")], 20_000, [20.0])
    db2.close()
    db3 = open_test_db()
    assert select_all(db3)[0].timestamps.tolist()[-2:] == [8000, 20_000]
    assert db3.wal.corruptions == 0


def test_segments_roll_and_checkpoint_bounds_replay(open_test_db, tmp_path):
    db = open_test_db(wal_segment_size=1024, block_range_ms=60_000)
    series = [lbl("m", i=str(i)) for i in range(10)]
    fill(db, series, 0, 100_000, 1000)
    assert len(_segments(tmp_path / "data")) > 3
    db.compact()  # head spans > 90s: cut [0, 60s) into a block and checkpoint the rest
    wal_dir = tmp_path / "data" / "wal"
    assert [p.name for p in wal_dir.iterdir() if p.name.startswith("checkpoint.")]
    assert len(_segments(tmp_path / "data")) == 1
    fill(db, series, 100_000, 110_000, 1000)
    before = select_all(db)
    db.close()
    db2 = open_test_db(wal_segment_size=1024, block_range_ms=60_000)
    after = select_all(db2)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a.timestamps, b.timestamps)
        np.testing.assert_array_equal(a.values, b.values)
    assert after[0].timestamps[0] == 0 and after[0].timestamps[-1] == 109_000


def test_lock_file(tmp_path):
    path = str(tmp_path / "data")
    db = open_db(path, TSDBOptions(background_compaction=False), registry=CollectorRegistry())
    with pytest.raises(LockError, match="lock DB directory"):
        open_db(path, TSDBOptions(background_compaction=False), registry=CollectorRegistry())
    db.close()
    db2 = open_db(path, TSDBOptions(background_compaction=False), registry=CollectorRegistry())
    db2.close()
    assert (tmp_path / "data" / "lock").exists()


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from prometheus_client import CollectorRegistry
    from narthex.model.labels import labels_from_dict
    from narthex.tsdb import TSDBOptions, open_db

    block_range = int(sys.argv[3])
    opts = TSDBOptions(wal_segment_size=64 * 1024, block_range_ms=block_range or 7_200_000,
                       background_compaction=bool(block_range), compaction_interval_s=0.01)
    db = open_db(sys.argv[1], opts, registry=CollectorRegistry())
    app = db.appender()
    refs = np.array([app.series_ref(labels_from_dict({"__name__": "m", "i": str(i)})) for i in range(100)])
    app.rollback()
    start = int(sys.argv[2])
    k = start
    while True:
        app = db.appender()
        app.append_batch(refs, k * 1000, np.arange(100) + k * 0.5)
        app.commit()
        print(k, flush=True)
        k += 1
    """
)


def _has_block(path: str) -> bool:
    return os.path.isdir(path) and any(
        os.path.exists(os.path.join(path, entry, "meta.json")) for entry in os.listdir(path)
    )


@pytest.mark.parametrize("block_range", [0, 20_000], ids=["wal-only", "with-compaction"])
def test_kill_minus_nine_keeps_acknowledged_commits(tmp_path, block_range):
    path = str(tmp_path / "data")
    acked = -1
    start = 0
    rng = np.random.default_rng()
    for _round in range(2):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, path, str(start), str(block_range)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        deadline = time.monotonic() + float(rng.uniform(0.8, 1.5))
        hard_deadline = time.monotonic() + 60
        lines = 0
        # Kill at a random moment, but (with compaction) only once a block exists, so that a slow,
        # loaded machine cannot turn "no block cut yet" into a failure.
        while time.monotonic() < hard_deadline and (
            time.monotonic() < deadline or lines < 20 or (block_range and not _has_block(path))
        ):
            line = proc.stdout.readline()
            if not line:
                break
            acked = int(line)
            lines += 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        opts = TSDBOptions(background_compaction=False, block_range_ms=block_range or 7_200_000)
        db = open_db(path, opts, registry=CollectorRegistry())
        got = select_all(db)
        assert len(got) == 100
        for s in got:
            i = int(dict(s.labels)["i"])
            ts = s.timestamps
            assert ts[0] == 0
            # Every acknowledged commit is back, in order and complete.
            assert ts[-1] >= acked * 1000
            np.testing.assert_array_equal(ts, np.arange(len(ts)) * 1000)
            np.testing.assert_array_equal(s.values, np.arange(len(ts)) * 0.5 + i)
        if block_range:
            assert db.blocks
        start = int(got[0].timestamps[-1] // 1000) + 1
        db.close()


def test_series_records_round_trip_and_legacy_layout():
    import struct

    from narthex.tsdb import records

    entries = [(3, (("__name__", "up"), ("job", "a"))), (7, (("__name__", "up"), ("job", "ü\x00b"))), (9, ())]
    body = records.encode_series(entries)
    assert body[0] == records.REC_SERIES | records.COMPRESSED
    assert records.decode_series(body) == entries
    assert records.decode_series(records.encode_series([])) == []
    # The uncompressed per-pair layout of earlier versions is still read.
    parts = [bytes([records.REC_SERIES]), struct.pack("<I", len(entries))]
    for ref, labels in entries:
        parts.append(struct.pack("<qH", ref, len(labels)))
        for pair in labels:
            for text in pair:
                raw = text.encode("utf-8")
                parts += [struct.pack("<I", len(raw)), raw]
    legacy = b"".join(parts)
    assert records.decode_series(legacy) == entries
    intern: dict[tuple[str, str], tuple[str, str]] = {}
    for record in (legacy, body):
        cols = records.decode_series_columns(record, intern)
        assert list(zip(cols.refs, cols.labels, strict=True)) == entries
        assert cols.labels[0][0] is intern[("__name__", "up")] is cols.labels[1][0]


def test_replayed_series_refs_are_remapped_on_conflict():
    from narthex.tsdb import records
    from narthex.tsdb.head import Head

    head = Head(7_200_000)
    a, b, c = lbl("m", i="a"), lbl("m", i="b"), lbl("m", i="c")
    assert head.create_logged(records.decode_series_columns(records.encode_series([(0, a), (1, b)]))) == []
    # A known label set keeps its ref; a logged ref already taken by other labels gets a new one.
    body = records.encode_series([(5, a), (1, c)])
    assert head.create_logged(records.decode_series_columns(body, head.label_pairs)) == [(5, 0), (1, 2)]
    assert [head.labels_of(r) for r in range(3)] == [a, b, c]
    assert head.index["i"]["c"].array().tolist() == [2]
    assert head.index["__name__"]["m"].array().tolist() == [0, 1, 2]
