"""Tunables of the embedded TSDB (names follow Prometheus's flags)."""

from __future__ import annotations

from dataclasses import dataclass

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(slots=True)
class TSDBOptions:
    """Options of :func:`narthex.tsdb.open_db`.

    ``retention_ms`` / ``retention_bytes``: delete whole blocks, oldest first, beyond these (0 = off
    for bytes; time defaults to Prometheus's 15d). ``block_range_ms``: the smallest block span (2h).
    ``out_of_order_window_ms``: accept samples this much older than the head's newest (0 = off).
    ``wal_segment_size``: bytes per WAL segment before a new one is started.
    ``background_compaction``: cut blocks, compact and apply retention in a thread; when off, call
    :meth:`DB.compact` yourself. ``compress_head_chunks``: keep closed head chunks compressed
    (about 2-10x less head memory; full-range reads of the head about 4x slower).
    ``chunk_cache_bytes``: budget of the LRU of decoded block chunks shared by all blocks (0 = no
    cache: every read decodes). ``head_chunk_cache_bytes``: budget of decoded compressed head
    chunks kept for repeated reads (0 = off). ``label_cache_sets``: how many block series' label
    sets are kept built, across all blocks (beyond that, they are rebuilt on every read).
    """

    retention_ms: int = 15 * DAY_MS
    retention_bytes: int = 0
    block_range_ms: int = 2 * HOUR_MS
    out_of_order_window_ms: int = 0
    no_lockfile: bool = False
    wal_segment_size: int = 128 * 1024 * 1024
    background_compaction: bool = True
    compaction_interval_s: float = 60.0
    compress_head_chunks: bool = True
    chunk_cache_bytes: int = 256 * 1024 * 1024
    head_chunk_cache_bytes: int = 64 * 1024 * 1024
    label_cache_sets: int = 1_000_000

    def block_ranges(self) -> list[int]:
        """Leveled compaction ranges: 2h, 6h, 18h, ... capped at 10% of retention (and 31 days)."""
        limit = 31 * DAY_MS
        if self.retention_ms > 0:
            limit = min(limit, self.retention_ms // 10)
        ranges = [self.block_range_ms]
        while ranges[-1] * 3 <= limit:
            ranges.append(ranges[-1] * 3)
        return ranges
