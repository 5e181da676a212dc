"""Self-metrics registration and the TSDB status statistics."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from narthex.tsdb import TSDBOptions, open_db

from .conftest import add, fill, lbl


def test_metrics_exported_per_registry(tmp_path):
    r1, r2 = CollectorRegistry(), CollectorRegistry()
    opts = TSDBOptions(background_compaction=False, block_range_ms=60_000)
    db1 = open_db(str(tmp_path / "a"), opts, registry=r1)
    db2 = open_db(str(tmp_path / "b"), opts, registry=r2)
    try:
        fill(db1, [lbl("m", i=str(i)) for i in range(5)], 0, 200_000, 10_000)
        add(db1, [lbl("m", i="0")], 0, [1.0])
        db1.compact()
        assert r1.get_sample_value("prometheus_tsdb_head_samples_appended_total", {"type": "float"}) == 100
        assert r1.get_sample_value("prometheus_tsdb_out_of_bound_samples_total", {"type": "float"}) == 1
        assert r1.get_sample_value("prometheus_tsdb_head_series") == 5
        assert r1.get_sample_value("prometheus_tsdb_blocks_loaded") >= 1
        assert r1.get_sample_value("prometheus_tsdb_storage_blocks_bytes") > 0
        assert r1.get_sample_value("prometheus_tsdb_compactions_total") >= 1
        assert r1.get_sample_value("prometheus_tsdb_checkpoint_creations_total") >= 1
        assert r1.get_sample_value("prometheus_tsdb_wal_storage_size_bytes") > 0
        assert r2.get_sample_value("prometheus_tsdb_head_series") == 0
        text = generate_latest(r1).decode()
        for name in (
            "prometheus_tsdb_head_chunks ",
            "prometheus_tsdb_wal_corruptions_total ",
            "prometheus_tsdb_head_max_time ",
        ):
            assert name in text
    finally:
        db1.close()
        db2.close()
    assert r1.get_sample_value("prometheus_tsdb_head_series") is None  # unregistered on close


def test_default_registry_twice_does_not_crash(tmp_path):
    opts = TSDBOptions(background_compaction=False)
    db1 = open_db(str(tmp_path / "a"), opts)
    db2 = open_db(str(tmp_path / "b"), opts)
    try:
        assert REGISTRY.get_sample_value("prometheus_tsdb_head_series") == 0
    finally:
        db2.close()
        db1.close()


def test_tsdb_status(open_test_db):
    db = open_test_db()
    series = [lbl("a", job="x", i=str(i)) for i in range(5)] + [lbl("b", job="y")]
    fill(db, series, 1000, 3000, 1000)
    status = db.tsdb_status(limit=2)
    head = status["headStats"]
    assert head == {"numSeries": 6, "chunkCount": 6, "minTime": 1000, "maxTime": 2000, "numLabelPairs": 9}
    assert status["seriesCountByMetricName"] == [{"name": "a", "value": 5}, {"name": "b", "value": 1}]
    assert status["labelValueCountByLabelName"][0] == {"name": "i", "value": 5}
    assert status["seriesCountByLabelValuePair"][0] == {"name": "__name__=a", "value": 5}
    # Label "job" (3 bytes) with a 1-byte value, each length-prefixed, in 6 series.
    assert {"name": "job", "value": 6 * (3 + 1 + 2)} in status["memoryInBytesByLabelName"]
    assert db.head_stats() == head
