"""Head appends: batches, atomicity, per-sample rejection and staleness markers."""

from __future__ import annotations

import itertools

import numpy as np

from narthex.model.matcher import Matcher, MatchType
from narthex.tsdb import ERR_DUPLICATE, ERR_NOT_FOUND, ERR_OUT_OF_BOUNDS, ERR_OUT_OF_ORDER, ERR_TOO_OLD
from narthex.tsdb.head import rounds

from .conftest import STALE_NAN, add, lbl, select_all


def test_batch_append_and_read_back(open_test_db):
    db = open_test_db()
    series = [lbl("up", job="a", instance=str(i)) for i in range(50)]
    for k in range(300):
        res = add(db, series, 1000 * k, np.arange(50) + k)
        assert res.appended == 50 and res.rejected == {}
    out = select_all(db)
    assert [s.labels for s in out] == sorted(series)
    by_labels = {s.labels: s for s in out}
    for i, lb in enumerate(series):
        s = by_labels[lb]
        assert s.timestamps.dtype == np.int64 and s.values.dtype == np.float64
        np.testing.assert_array_equal(s.timestamps, np.arange(300) * 1000)
        np.testing.assert_array_equal(s.values, np.arange(300) + i)
    assert db.head_stats()["numSeries"] == 50
    assert db.head_stats()["chunkCount"] == 50 * 3
    assert len(db.head.frozen.live_ids()) >= 50  # closed chunks were compressed
    part = select_all(db, 10_000, 20_000)
    np.testing.assert_array_equal(part[0].timestamps, np.arange(10, 21) * 1000)


def test_known_series_keeps_its_ref(open_test_db):
    db = open_test_db()
    app = db.appender()
    a = app.series_ref(lbl("m", x="1"))
    assert app.series_ref(lbl("m", x="1")) == a
    assert app.series_ref(lbl("m", x="2")) != a


def test_staleness_marker_bits_preserved(open_test_db):
    db = open_test_db()
    weird_nan = np.array([0x7FF8000000000001], dtype=np.uint64).view(np.float64)[0]
    add(db, [lbl("m")], 1000, [1.5])
    add(db, [lbl("m")], 2000, [STALE_NAN])
    add(db, [lbl("m")], 3000, [weird_nan])
    # The same stale marker again is an identical duplicate (bits compared), not an error.
    assert add(db, [lbl("m")], 3000, [weird_nan]).rejected == {}
    assert add(db, [lbl("m")], 3000, [STALE_NAN]).rejected == {ERR_DUPLICATE: 1}
    bits = select_all(db)[0].values.view(np.uint64)
    assert bits.tolist() == [np.float64(1.5).view(np.uint64), 0x7FF0000000000002, 0x7FF8000000000001]


def test_per_sample_rejection_kinds(open_test_db):
    db = open_test_db(block_range_ms=10_000)
    a, b, c, d = (lbl("m", s=x) for x in "abcd")
    add(db, [a, b, c], 100_000, [1, 2, 3])
    app = db.appender()
    refs = np.array([app.series_ref(x) for x in (a, b, c, d, a)], dtype=np.int64)
    # a: older -> out of order; b: same ts same value -> no-op; c: same ts new value -> duplicate;
    # d: new series far in the past -> out of bounds; a again: newer -> ok.
    app.append_batch(refs, np.array([99_000, 100_000, 100_000, 1_000, 101_000]), np.array([9, 2, 4, 5, 6.0]))
    res = app.commit()
    assert res.appended == 1
    assert res.rejected == {ERR_OUT_OF_ORDER: 1, ERR_DUPLICATE: 1, ERR_OUT_OF_BOUNDS: 1}
    got = {s.labels: s for s in select_all(db)}
    assert got[a].values.tolist() == [1, 6]
    assert got[c].values.tolist() == [3]
    assert d not in got
    assert db.counters[ERR_OUT_OF_ORDER] == 1 and db.counters[ERR_OUT_OF_BOUNDS] == 1


def test_same_series_twice_in_one_batch(open_test_db):
    db = open_test_db()
    app = db.appender()
    r = app.series_ref(lbl("m"))
    refs = np.array([r, r, r, r, r])
    res = app.append_batch(refs, np.array([1, 2, 2, 1, 5]), np.array([1.0, 2, 3, 4, 5]))
    res = app.commit()
    assert res.appended == 3
    assert res.rejected == {ERR_DUPLICATE: 1, ERR_OUT_OF_ORDER: 1}
    s = select_all(db)[0]
    assert s.timestamps.tolist() == [1, 2, 5] and s.values.tolist() == [1, 2, 5]


def test_unknown_ref_is_rejected_alone(open_test_db):
    db = open_test_db()
    app = db.appender()
    r = app.series_ref(lbl("m"))
    app.append_batch(np.array([r, 12345]), 10, np.array([1.0, 2.0]))
    res = app.commit()
    assert res.appended == 1 and res.rejected == {ERR_NOT_FOUND: 1}


def test_commit_is_atomic_and_rollback_discards(open_test_db):
    db = open_test_db()
    app = db.appender()
    r = app.series_ref(lbl("m"))
    app.append_batch(np.array([r]), 1000, np.array([1.0]))
    app.append_batch(np.array([r]), 2000, np.array([2.0]))
    assert select_all(db) == []
    app.commit()
    assert select_all(db)[0].timestamps.tolist() == [1000, 2000]
    app = db.appender()
    app.append_batch(np.array([r]), 3000, np.array([3.0]))
    app.rollback()
    assert select_all(db)[0].timestamps.tolist() == [1000, 2000]
    # A rolled-back sample left no trace: the same timestamp with another value is fine.
    assert add(db, [lbl("m")], 3000, [4.0]).rejected == {}


def test_out_of_order_window(open_test_db):
    db = open_test_db(out_of_order_window_ms=60_000)
    m = lbl("m")
    add(db, [m], 100_000, [1.0])
    add(db, [m], 200_000, [2.0])
    res = add(db, [m], 150_000, [1.5])
    assert res.appended == 1 and res.out_of_order_appended == 1
    assert add(db, [m], 10_000, [0.1]).rejected == {ERR_TOO_OLD: 1}
    s = select_all(db)[0]
    assert s.timestamps.tolist() == [100_000, 150_000, 200_000]
    assert s.values.tolist() == [1.0, 1.5, 2.0]
    q = db.querier(140_000, 160_000)
    assert q.select([Matcher(MatchType.EQUAL, "__name__", "m")])[0].values.tolist() == [1.5]
    db.set_out_of_order_window(0)
    assert add(db, [m], 160_000, [1.6]).rejected == {ERR_OUT_OF_ORDER: 1}
    db.set_out_of_order_window(60_000)
    assert add(db, [m], 160_000, [1.6]).out_of_order_appended == 1


def test_rounds_split_repeated_refs():
    refs = np.array([3, 1, 3, 3, 2, 1])
    parts = rounds(refs)
    assert [refs[p].tolist() for p in parts] == [[3, 1, 2], [3, 1], [3]]
    assert [p.tolist() for p in parts] == [[0, 1, 4], [2, 5], [3]]


def test_out_of_order_sample_behind_a_block(open_test_db):
    db = open_test_db(out_of_order_window_ms=600_000, block_range_ms=60_000)
    m = lbl("m")
    for k in range(20):
        add(db, [m], k * 10_000, [float(k)])
    db.compact()
    assert db.blocks and db.blocks[-1].meta.max_time == 120_000
    # Behind the newest block but inside the window: accepted, like Prometheus's OOO head.
    assert add(db, [m], 115_000, [11.5]).out_of_order_appended == 1
    assert add(db, [m], 125_000, [12.5]).out_of_order_appended == 1
    assert add(db, [m], 0, [0.0]).rejected == {}  # identical to the sample in the block
    expected_t = sorted([k * 10_000 for k in range(20)] + [115_000, 125_000])
    assert select_all(db)[0].timestamps.tolist() == expected_t
    for k in range(20, 30):
        add(db, [m], k * 10_000, [float(k)])
    db.compact()
    metas = sorted((b.meta for b in db.blocks), key=lambda x: x.min_time)
    for a, b in itertools.pairwise(metas):
        assert a.max_time <= b.min_time  # the out-of-order block was merged away
    expected_t = sorted([k * 10_000 for k in range(30)] + [115_000, 125_000])
    s = select_all(db)[0]
    assert s.timestamps.tolist() == expected_t
    assert s.values[expected_t.index(115_000)] == 11.5
    db.close()
    db2 = open_test_db(out_of_order_window_ms=600_000, block_range_ms=60_000)
    assert select_all(db2)[0].timestamps.tolist() == expected_t


def test_concurrent_appenders_and_readers(open_test_db):
    import threading

    db = open_test_db()
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            series = [lbl("m", w=str(w), i=str(i)) for i in range(20)]
            for k in range(200):
                res = add(db, series, k * 1000, np.full(20, float(k)))
                assert res.appended == 20
        except BaseException as err:
            errors.append(err)

    def reader() -> None:
        try:
            for _ in range(50):
                for s in select_all(db):
                    assert np.all(np.diff(s.timestamps) > 0)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    threads.append(threading.Thread(target=reader))
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    out = select_all(db)
    assert len(out) == 80 and all(len(s.timestamps) == 200 for s in out)


def test_uncompressed_head_option(open_test_db):
    db = open_test_db(compress_head_chunks=False)
    series = [lbl("m", i=str(i)) for i in range(5)]
    for k in range(500):
        add(db, series, k * 1000, np.full(5, float(k)))
    assert len(db.head.frozen.live_ids()) == 0
    assert db.head_stats()["chunkCount"] == 5 * 5
    out = select_all(db)
    assert all(s.values.tolist() == [float(k) for k in range(500)] for s in out)


def test_truncation_inside_pieces_keeps_exact_samples(open_test_db):
    db = open_test_db(block_range_ms=100_000)
    series = [lbl("m", i=str(i)) for i in range(40)]
    for k in range(400):
        add(db, series, k * 1000, np.arange(40) * 0.25 + k)
    chunks_before = db.head_stats()["chunkCount"]
    db.head.truncate(123_456)
    out = select_all(db)
    assert len(out) == 40
    k = np.arange(124, 400)
    for s in out:
        np.testing.assert_array_equal(s.timestamps, k * 1000)
        np.testing.assert_array_equal(s.values, int(dict(s.labels)["i"]) * 0.25 + k)
    assert 0 < db.head_stats()["chunkCount"] < chunks_before
    assert db.head.min_time == 124_000
    assert select_all(db, 200_500, 201_000)[0].timestamps.tolist() == [201_000]
    db.head.truncate(1_000_000)
    assert db.head_stats()["numSeries"] == 0 and db.head_stats()["chunkCount"] == 0


def test_closed_pieces_are_compressed_a_bounded_number_per_commit(open_test_db):
    db = open_test_db()
    db.head.freeze_batch = 64
    series = [lbl("m", i=str(i)) for i in range(3000)]
    pending = []
    for k in range(100):
        add(db, series, k * 1000, np.full(3000, float(k)))
        pending.append(db.head._npending)
    # Series created together close their pieces in different commits: no commit has to
    # compress every series at once, and closed pieces do not pile up.
    assert max(pending) < 3000 // 4
    assert len(db.head.frozen.live_ids()) >= 3000 * 2
