"""Self-metrics under Prometheus's names, exported by a collector reading one DB's counters.

Each DB registers its own collector on the registry it is given, so several DBs can live in one
process as long as they use different registries; a second registration of the same names on one
registry is skipped with a warning instead of raising.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from narthex.util.log import get_logger

if TYPE_CHECKING:
    from narthex.tsdb.chunkcache import ChunkCache
    from narthex.tsdb.db import DB

_log = get_logger("tsdb")


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float, sample_type: bool = False) -> CounterMetricFamily:
    if sample_type:
        fam = CounterMetricFamily(name, doc, labels=["type"])
        fam.add_metric(["float"], value)
        return fam
    return CounterMetricFamily(name, doc, value=value)


class TSDBCollector(Collector):
    """Reads the DB's plain counters at scrape time."""

    def __init__(self, db: DB) -> None:
        self._db = db

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        db = self._db
        head = db.head
        wal = db.wal
        c = db.counters
        yield _gauge(
            "prometheus_tsdb_head_series", "Total number of series in the head block.", head.num_series
        )
        yield _counter(
            "prometheus_tsdb_head_series_created",
            "Total number of series created in the head",
            head.series_created,
        )
        yield _counter(
            "prometheus_tsdb_head_series_removed",
            "Total number of series removed in the head",
            head.series_removed,
        )
        yield _counter(
            "prometheus_tsdb_head_samples_appended",
            "Total number of appended samples.",
            c["samples_appended"],
            sample_type=True,
        )
        yield _counter(
            "prometheus_tsdb_head_out_of_order_samples_appended",
            "Total number of appended out of order samples.",
            c["ooo_appended"],
            sample_type=True,
        )
        yield _counter(
            "prometheus_tsdb_out_of_order_samples",
            "Total number of out of order samples ingestion failed attempts due to out of order being "
            "disabled.",
            c["out of order sample"],
            sample_type=True,
        )
        yield _counter(
            "prometheus_tsdb_out_of_bound_samples",
            "Total number of out of bound samples ingestion failed attempts with out of order support "
            "disabled.",
            c["out of bounds"],
            sample_type=True,
        )
        yield _counter(
            "prometheus_tsdb_too_old_samples",
            "Total number of out of order samples ingestion failed attempts with out of support enabled, "
            "but sample outside of time window.",
            c["too old sample"],
            sample_type=True,
        )
        yield _gauge(
            "prometheus_tsdb_head_chunks", "Total number of chunks in the head block.", head.num_chunks
        )
        yield _counter(
            "prometheus_tsdb_head_chunks_created",
            "Total number of chunks created in the head",
            head.chunks_created,
        )
        yield _counter(
            "prometheus_tsdb_head_chunks_removed",
            "Total number of chunks removed in the head",
            head.chunks_removed,
        )
        empty = head.num_series == 0 and head.min_time > head.max_time
        yield _gauge(
            "prometheus_tsdb_head_min_time",
            "Minimum time bound of the head block.",
            0 if empty else head.min_time,
        )
        yield _gauge(
            "prometheus_tsdb_head_max_time",
            "Maximum timestamp of the head block.",
            0 if empty else head.max_time,
        )
        yield _counter(
            "prometheus_tsdb_head_truncations",
            "Total number of head truncations attempted.",
            c["head_truncations"],
        )
        yield _counter("prometheus_tsdb_wal_corruptions", "Total number of WAL corruptions.", wal.corruptions)
        yield _counter(
            "prometheus_tsdb_wal_truncations",
            "Total number of write log truncations attempted.",
            wal.truncations,
        )
        yield _counter(
            "prometheus_tsdb_wal_writes_failed",
            "Total number of write log writes that failed.",
            wal.writes_failed,
        )
        yield _gauge(
            "prometheus_tsdb_wal_segment_current",
            "Write log segment index that TSDB is currently writing to.",
            wal.current_segment,
        )
        yield _gauge(
            "prometheus_tsdb_wal_storage_size_bytes", "Size of the write log directory.", db.wal_size()
        )
        yield _counter(
            "prometheus_tsdb_checkpoint_creations",
            "Total number of checkpoint creations attempted.",
            wal.checkpoints,
        )
        yield _counter(
            "prometheus_tsdb_compactions",
            "Total number of compactions that were executed for the partition.",
            c["compactions"],
        )
        yield _counter(
            "prometheus_tsdb_compactions_failed",
            "Total number of compactions that failed for the partition.",
            c["compactions_failed"],
        )
        yield _counter(
            "prometheus_tsdb_compactions_triggered",
            "Total number of triggered compactions for the partition.",
            c["compactions_triggered"],
        )
        yield _counter(
            "prometheus_tsdb_reloads",
            "Number of times the database reloaded block data from disk.",
            c["reloads"],
        )
        yield _gauge(
            "prometheus_tsdb_blocks_loaded", "Number of currently loaded data blocks", len(db.blocks)
        )
        yield _gauge(
            "prometheus_tsdb_storage_blocks_bytes",
            "The number of bytes that are currently used for local storage by all blocks.",
            sum(b.size_bytes for b in db.blocks),
        )
        yield _gauge(
            "prometheus_tsdb_lowest_timestamp",
            "Lowest timestamp value stored in the database. The unit is decided by the library consumer.",
            db.lowest_timestamp(),
        )
        yield _gauge(
            "prometheus_tsdb_retention_limit_bytes",
            "Max number of bytes to be retained in the tsdb blocks, configure 0 means disabled",
            db.options.retention_bytes,
        )
        yield _gauge(
            "prometheus_tsdb_retention_limit_seconds",
            "How long to retain samples in storage.",
            db.options.retention_ms / 1000,
        )
        yield _counter(
            "prometheus_tsdb_time_retentions",
            "The number of times that blocks were deleted because the maximum time limit was exceeded.",
            c["time_retentions"],
        )
        yield _counter(
            "prometheus_tsdb_size_retentions",
            "The number of times that blocks were deleted because the maximum number of bytes was exceeded.",
            c["size_retentions"],
        )
        yield _gauge(
            "prometheus_tsdb_out_of_order_time_window",
            "Configured out of order time window in milliseconds.",
            db.options.out_of_order_window_ms,
        )
        cache = db.chunk_cache
        if cache is not None:
            yield from _chunk_cache_metrics(cache)


def _chunk_cache_metrics(cache: ChunkCache) -> Iterator[Metric]:
    """Narthex's decoded block chunk cache (``--storage.tsdb.decoded-chunks-cache-size``)."""
    yield _counter("narthex_tsdb_decoded_chunks_cache_hits", "Block chunk reads served decoded.", cache.hits)
    yield _counter("narthex_tsdb_decoded_chunks_cache_misses", "Block chunk reads decoded.", cache.misses)
    yield _counter(
        "narthex_tsdb_decoded_chunks_cache_evictions", "Decoded chunks dropped for space.", cache.evictions
    )
    yield _gauge("narthex_tsdb_decoded_chunks_cache_bytes", "Memory of decoded chunks.", cache.size_bytes)
    yield _gauge("narthex_tsdb_decoded_chunks_cache_max_bytes", "The cache's budget.", cache.max_bytes)


def register(db: DB, registry: CollectorRegistry) -> TSDBCollector | None:
    """Register the DB's collector; returns ``None`` if the names are already taken."""
    collector = TSDBCollector(db)
    try:
        registry.register(collector)
    except ValueError as err:
        _log.warn("TSDB metrics not registered", err=err)
        return None
    return collector
