"""The database: lock file, WAL replay, commits, head-to-block cuts, compaction and retention."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import fcntl
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
from prometheus_client import REGISTRY
from prometheus_client.registry import CollectorRegistry

from narthex.model.matcher import Matcher
from narthex.tsdb import records
from narthex.tsdb.appender import Appender
from narthex.tsdb.block import Block, BlockMeta, write_block
from narthex.tsdb.chunkcache import ChunkCache, LabelSetBudget
from narthex.tsdb.chunks import ChunkCodec
from narthex.tsdb.compact import compacted_meta, plan, write_compacted
from narthex.tsdb.errors import KINDS, CommitResult, LockError
from narthex.tsdb.head import CODE_ERRORS, INT64_MAX, INT64_MIN, OK, OK_OOO, Head, SeriesData
from narthex.tsdb.metrics import TSDBCollector, register
from narthex.tsdb.options import TSDBOptions
from narthex.tsdb.postings import select_postings
from narthex.tsdb.querier import HeadIndex, Querier
from narthex.tsdb.stats import head_stats, tsdb_status
from narthex.tsdb.ulid import is_ulid, new_ulid
from narthex.tsdb.wal import WAL
from narthex.util.log import get_logger

_log = get_logger("tsdb")
_SERIES_PER_RECORD = 10_000
_SAMPLES_PER_RECORD = 1_000_000


def _acquire_lock(path: Path) -> IO[str]:
    handle = open(path, "a+")  # noqa: SIM115
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        handle.close()
        raise LockError(f"lock DB directory: {(err.strerror or str(err)).lower()}") from err
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _release_free_memory() -> None:
    """Return freed heap pages to the OS (glibc only) after the allocation churn of WAL replay."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim.argtypes = [ctypes.c_size_t]
    trim(0)


def _remove_dir(path: Path) -> None:
    """Delete a block directory: rename first so a crash never leaves a half-deleted block."""
    doomed = path.with_name(path.name + ".tmp-for-deletion")
    try:
        os.replace(path, doomed)
    except OSError:
        doomed = path
    shutil.rmtree(doomed, ignore_errors=True)


def _remap(refs: np.ndarray, remap_from: list[int], remap_to: list[int]) -> np.ndarray:
    """Logged refs translated to the refs replay gave their series."""
    if not remap_from:
        return refs
    lookup = dict(zip(remap_from, remap_to, strict=True))
    return np.fromiter((lookup.get(r, r) for r in refs.tolist()), dtype=np.int64, count=len(refs))


def _sorted_by_labels(data: SeriesData) -> SeriesData:
    """The same data with series in label order and empty series dropped."""
    counts = np.diff(data.offsets)
    order = sorted((i for i in range(len(data.labels)) if counts[i] > 0), key=lambda i: data.labels[i])
    idx = np.asarray(order, dtype=np.int64)
    c = counts[idx]
    starts = data.offsets[:-1][idx]
    take = np.repeat(starts - np.cumsum(c) + c, c) + np.arange(int(c.sum()))
    offsets = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(c, out=offsets[1:])
    return SeriesData([data.labels[i] for i in order], data.t[take], data.v[take], offsets)


class DB:
    """An open TSDB directory. Use :func:`open_db`."""

    def __init__(self, path: str | os.PathLike, options: TSDBOptions, registry: CollectorRegistry | None):
        self.dir = Path(path)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.options = dataclasses.replace(options)
        self._lock_handle = None if options.no_lockfile else _acquire_lock(self.dir / "lock")
        self.counters: dict[str, int] = dict.fromkeys(
            (
                *KINDS,
                "samples_appended",
                "ooo_appended",
                "compactions",
                "compactions_failed",
                "compactions_triggered",
                "head_truncations",
                "reloads",
                "time_retentions",
                "size_retentions",
            ),
            0,
        )
        self._compact_mutex = threading.Lock()
        self._codec = ChunkCodec()
        self.chunk_cache = ChunkCache(options.chunk_cache_bytes) if options.chunk_cache_bytes > 0 else None
        self.label_budget = LabelSetBudget(options.label_cache_sets)
        self.blocks: list[Block] = []
        try:
            self.blocks = self._load_blocks()
            self.head = Head(
                options.block_range_ms,
                options.out_of_order_window_ms,
                options.compress_head_chunks,
                options.head_chunk_cache_bytes,
            )
            if self.blocks:
                self.head.min_valid_time = max(b.meta.max_time for b in self.blocks)
            self.wal = WAL(self.dir / "wal", options.wal_segment_size)
            self._replay()
            self.wal.open_for_append()
        except BaseException:
            for block in self.blocks:
                block.close()
            self._release_lock()
            raise
        self._collector: TSDBCollector | None = None
        self._registry = REGISTRY if registry is None else registry
        self._collector = register(self, self._registry)
        self._closed = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        if options.background_compaction:
            self._thread = threading.Thread(target=self._background, name="tsdb-compactor", daemon=True)
            self._thread.start()

    # -- opening ---------------------------------------------------------------------------------

    def _load_blocks(self) -> list[Block]:
        metas: dict[str, Path] = {}
        for entry in self.dir.iterdir():
            if not entry.is_dir():
                continue
            if entry.name.endswith((".tmp-for-creation", ".tmp-for-deletion")):
                shutil.rmtree(entry, ignore_errors=True)
            elif is_ulid(entry.name) and (entry / "meta.json").exists():
                metas[entry.name] = entry
        blocks = []
        for path in metas.values():
            try:
                blocks.append(Block(path, self.chunk_cache, self.label_budget))
            except (OSError, ValueError) as err:
                _log.error("Failed to load block, skipping it", block=path.name, err=err)
        replaced = {p["ulid"] for b in blocks for p in b.meta.parents}
        kept = []
        for block in blocks:
            if block.meta.ulid in replaced:
                _log.info("Deleting block replaced by compaction", block=block.meta.ulid)
                block.close()
                _remove_dir(block.path)
            else:
                kept.append(block)
        self.counters["reloads"] += 1
        return sorted(kept, key=lambda b: b.meta.min_time)

    def _replay(self) -> None:
        head = self.head
        remap_from: list[int] = []
        remap_to: list[int] = []
        n_records = 0
        for body in self.wal.replay():
            n_records += 1
            kind = records.record_type(body)
            if kind == records.REC_SERIES:
                for ref, got in head.create_logged(records.decode_series_columns(body, head.label_pairs)):
                    remap_from.append(ref)
                    remap_to.append(got)
                continue
            if kind == records.REC_TOMBSTONES:
                stones = records.decode_tombstones(body)
                refs = _remap(stones.refs, remap_from, remap_to)
                known = (refs >= 0) & (refs < head.num_refs)
                known[known] = head.s_alive[refs[known]]
                head.add_tombstones(refs[known], stones.mint[known], stones.maxt[known])
                continue
            batch = records.decode_samples(body)
            refs = batch.refs
            if remap_from:
                src = np.asarray(remap_from, dtype=np.int64)
                dst = np.asarray(remap_to, dtype=np.int64)
                hit = np.isin(refs, src)
                if hit.any():
                    refs = refs.copy()
                    order = np.argsort(src)
                    refs[hit] = dst[order][np.searchsorted(src[order], refs[hit])]
            known = (refs >= 0) & (refs < head.num_refs)
            known[known] = head.s_alive[refs[known]]
            t, v = batch.t, batch.v
            if not known.all():
                refs, t, v = refs[known], t[known], v[known]
            if kind == records.REC_SAMPLES:
                head.apply_inorder(refs, t, v, check=True)
            else:
                head.apply_ooo(refs, t, v)
        head.freeze()
        _release_free_memory()
        if n_records:
            _log.info("WAL replay completed", records=n_records, series=head.num_series)

    # -- writing ---------------------------------------------------------------------------------

    def appender(self) -> Appender:
        """A new transaction for appending sample batches."""
        return Appender(self)

    def _commit(self, refs: np.ndarray, t: np.ndarray, v: np.ndarray) -> CommitResult:
        head = self.head
        with head.lock:
            codes = head.classify(refs, t, v)
            counts = np.bincount(codes, minlength=8).tolist()
            n_ok, n_ooo = counts[OK], counts[OK_OOO]
            all_ok = n_ok == len(refs)
            ok = None if all_ok else codes == OK
            ooo = codes == OK_OOO if n_ooo else None
            ok_refs, ok_t, ok_v = (refs, t, v) if ok is None else (refs[ok], t[ok], v[ok])
            accepted = ok_refs if ooo is None else np.concatenate([ok_refs, refs[ooo]])
            new_series = np.zeros(0, dtype=np.int64)
            bodies = []
            if len(accepted):
                unlogged = accepted[~head.s_logged[accepted]]
                if len(unlogged):
                    new_series = np.sort(unlogged)
                    new_series = new_series[np.r_[True, new_series[1:] != new_series[:-1]]]
                for i in range(0, len(new_series), _SERIES_PER_RECORD):
                    part = new_series[i : i + _SERIES_PER_RECORD].tolist()
                    bodies.append(records.encode_series([(r, head.labels_of(r)) for r in part]))
            if n_ok:
                bodies.append(records.encode_samples(ok_refs, ok_t, ok_v))
            if ooo is not None:
                bodies.append(records.encode_samples(refs[ooo], t[ooo], v[ooo], records.REC_OOO_SAMPLES))
            self.wal.log(bodies)
            head.s_logged[new_series] = True
            if n_ok:
                head.apply_inorder(ok_refs, ok_t, ok_v)
            if ooo is not None:
                head.apply_ooo(refs[ooo], t[ooo], v[ooo])
            result = CommitResult(appended=n_ok + n_ooo, out_of_order_appended=n_ooo)
            for code, kind in CODE_ERRORS.items():
                if counts[code]:
                    result.rejected[kind] = counts[code]
                    self.counters[kind] += counts[code]
            self.counters["samples_appended"] += n_ok + n_ooo
            self.counters["ooo_appended"] += n_ooo
        if self._thread is not None and self._head_compactable():
            self._wake.set()
        return result

    def set_out_of_order_window(self, window_ms: int) -> None:
        """Change the out-of-order window at runtime (config reload), as Prometheus allows."""
        if window_ms < 0:
            raise ValueError("out-of-order window must not be negative")
        with self.head.lock:
            self.options.out_of_order_window_ms = window_ms
            self.head.ooo_window_ms = window_ms

    # -- reading ---------------------------------------------------------------------------------

    def querier(self, mint: int, maxt: int) -> Querier:
        """A querier over ``[mint, maxt]`` (ms, inclusive) across blocks and head."""
        return Querier(self.head, lambda: self.blocks, mint, maxt)

    def head_stats(self) -> dict:
        """``headStats`` of ``/api/v1/status/tsdb``: numSeries, chunkCount, minTime, maxTime, ..."""
        return head_stats(self.head)

    def tsdb_status(self, limit: int = 10) -> dict:
        """The whole ``/api/v1/status/tsdb`` payload."""
        return tsdb_status(self.head, limit)

    def lowest_timestamp(self) -> int:
        candidates = [b.meta.min_time for b in self.blocks]
        if self.head.min_time != INT64_MAX:
            candidates.append(self.head.min_time)
        return min(candidates) if candidates else 0

    def wal_size(self) -> int:
        return self.wal.size()

    def blocks_size(self) -> int:
        return sum(b.size_bytes for b in self.blocks)

    # -- deletion --------------------------------------------------------------------------------

    def delete(self, mint: int, maxt: int, matchers: list[Matcher]) -> None:
        """Mark the samples in ``[mint, maxt]`` of the series matching ``matchers`` deleted.

        Blocks overlapping the range get tombstones (their ``tombstones`` file is rewritten
        atomically); the head's are logged to the WAL before they take effect. Queries never
        return deleted samples; compaction and :meth:`clean_tombstones` drop them from disk.
        """
        with self._compact_mutex:
            for block in self.blocks:
                if block.meta.min_time > maxt or block.meta.max_time <= mint:
                    continue
                ids = select_postings(block, matchers)
                if len(ids):
                    lo = max(mint, block.meta.min_time)
                    block.add_tombstones(ids, lo, min(maxt, block.meta.max_time - 1))
            head = self.head
            with head.lock:
                ids = select_postings(HeadIndex(head), matchers)
                refs, lo_arr, hi_arr = head.deletion_stones(ids, mint, maxt)
                if len(refs):
                    self.wal.log([records.encode_tombstones(refs, lo_arr, hi_arr)])
                    head.add_tombstones(refs, lo_arr, hi_arr)

    def clean_tombstones(self) -> None:
        """Rewrite every block that has tombstones without the deleted samples (as upstream).

        The new block keeps the time range, level and sources and names the old block as parent,
        so a crash between publishing it and removing the old one is resolved on open.
        """
        with self._compact_mutex:
            for block in list(self.blocks):
                if not block.tombstones:
                    continue
                m = block.meta
                meta = BlockMeta(
                    ulid=new_ulid(),
                    min_time=m.min_time,
                    max_time=m.max_time,
                    level=m.level,
                    sources=list(m.sources),
                    parents=[{"ulid": m.ulid, "minTime": m.min_time, "maxTime": m.max_time}],
                )
                self._replace_blocks([block], meta)
                _log.info("clean tombstones", block=m.ulid, replacement=meta.ulid)

    # -- compaction ------------------------------------------------------------------------------

    def _head_compactable(self) -> bool:
        h = self.head
        if h.min_time == INT64_MAX or h.max_time == INT64_MIN:
            return False
        return h.max_time - h.min_time > self.options.block_range_ms // 2 * 3

    def compact(self) -> None:
        """Cut head blocks while the head spans >1.5 block ranges, compact blocks, apply retention."""
        with self._compact_mutex:
            self.counters["compactions_triggered"] += 1
            try:
                if self._head_compactable():
                    while self._head_compactable():
                        self._compact_head()
                    self._checkpoint()
                while True:
                    group = plan([b.meta for b in self.blocks], self.options.block_ranges())
                    if not group:
                        break
                    self._compact_blocks(group)
            except Exception:
                self.counters["compactions_failed"] += 1
                _log.exception("Compaction failed")
                raise
            finally:
                self._apply_retention()

    def _compact_head(self) -> None:
        head = self.head
        rng = self.options.block_range_ms
        # The oldest range in the head; with out-of-order samples it may lie behind existing
        # blocks, and the overlapping block written here is merged by the next compaction.
        cut = (head.min_time // rng) * rng + rng
        with head.lock:
            head.min_valid_time = max(head.min_valid_time, cut)
            data = head.read(head.alive_refs(), INT64_MIN, cut - 1)
            ooo_upto = head.o_n
        data = _sorted_by_labels(data)
        if len(data.t):
            meta = BlockMeta(ulid=new_ulid(), min_time=int(data.t.min()), max_time=cut)
            meta.sources = [meta.ulid]
            path = write_block(self.dir, meta, data, self._codec)
            block = Block(path, self.chunk_cache, self.label_budget)
            self.blocks = sorted([*self.blocks, block], key=lambda b: b.meta.min_time)
            self.counters["compactions"] += 1
            _log.info(
                "write block",
                ulid=meta.ulid,
                mint=meta.min_time,
                maxt=meta.max_time,
                series=meta.num_series,
                samples=meta.num_samples,
            )
        removed = head.truncate(cut, ooo_upto)
        self.counters["head_truncations"] += 1
        _log.info("Head GC completed", cut=cut, series_removed=removed)

    def _checkpoint(self) -> None:
        """Snapshot the head into ``checkpoint.N`` and drop segments up to N.

        The segment roll and the copy of the head happen under the head lock (so the snapshot
        covers exactly the closed segments); encoding and writing happen outside it.
        """
        head = self.head
        with head.lock:
            closed = self.wal.roll()
            refs = head.alive_refs()
            series = [(r, head.labels_of(r)) for r in refs.tolist()]
            data = head.read(refs, INT64_MIN, INT64_MAX, include_ooo=False, deleted=True)
            n = head.o_n
            ooo = (head.o_ref[:n].copy(), head.o_t[:n].copy(), head.o_v[:n].copy())
            stones = head.tombstones.filtered(refs).arrays()

        def bodies() -> Iterator[bytes]:
            for i in range(0, len(series), _SERIES_PER_RECORD):
                yield records.encode_series(series[i : i + _SERIES_PER_RECORD])
            owners = np.repeat(refs, np.diff(data.offsets))
            for i in range(0, len(data.t), _SAMPLES_PER_RECORD):
                j = i + _SAMPLES_PER_RECORD
                yield records.encode_samples(owners[i:j], data.t[i:j], data.v[i:j])
            if n:
                yield records.encode_samples(*ooo, records.REC_OOO_SAMPLES)
            if len(stones[0]):
                yield records.encode_tombstones(*stones)

        self.wal.checkpoint(closed, bodies())

    def _compact_blocks(self, group: list[BlockMeta]) -> None:
        by_id = {b.meta.ulid: b for b in self.blocks}
        sources = [by_id[m.ulid] for m in group]
        meta = compacted_meta(group)
        self._replace_blocks(sources, meta)
        self.counters["compactions"] += 1
        _log.info("compact blocks", ulid=meta.ulid, level=meta.level, sources=[m.ulid for m in group])

    def _replace_blocks(self, sources: list[Block], meta: BlockMeta) -> None:
        """Write ``sources`` (without deleted samples) as one block, publish it, remove the sources.

        A result without samples is not kept (the sources are just removed), as upstream.
        """
        path = write_compacted(self.dir, sources, meta, self._codec)
        new = [Block(path, self.chunk_cache, self.label_budget)]
        if new[0].meta.num_samples == 0:
            new[0].close()
            _remove_dir(path)
            new = []
        gone = {b.meta.ulid for b in sources}
        self.blocks = sorted(
            [b for b in self.blocks if b.meta.ulid not in gone] + new, key=lambda b: b.meta.min_time
        )
        for old in sources:
            old.drop_cached()
            _remove_dir(old.path)

    def _apply_retention(self) -> None:
        newest_first = sorted(self.blocks, key=lambda b: b.meta.max_time, reverse=True)
        doomed: list[Block] = []
        if self.options.retention_ms > 0 and newest_first:
            top = newest_first[0].meta.max_time
            for i, block in enumerate(newest_first):
                if i > 0 and top - block.meta.max_time >= self.options.retention_ms:
                    doomed = newest_first[i:]
                    self.counters["time_retentions"] += 1
                    break
        if self.options.retention_bytes > 0:
            total = self.wal_size()
            for i, block in enumerate(newest_first):
                total += block.size_bytes
                if total > self.options.retention_bytes:
                    if len(newest_first) - i > len(doomed):
                        doomed = newest_first[i:]
                    self.counters["size_retentions"] += 1
                    break
        if not doomed:
            return
        gone = {b.meta.ulid for b in doomed}
        self.blocks = [b for b in self.blocks if b.meta.ulid not in gone]
        for block in doomed:
            _log.info("Deleting obsolete block", block=block.meta.ulid)
            block.drop_cached()
            _remove_dir(block.path)

    def _background(self) -> None:
        while not self._closed:
            self._wake.wait(self.options.compaction_interval_s)
            self._wake.clear()
            if self._closed:
                break
            with contextlib.suppress(Exception):
                self.compact()

    # -- closing ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop background work, flush the WAL and release the directory lock."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        with self._compact_mutex:
            self.wal.close()
            for block in self.blocks:
                block.close()
        if self._collector is not None:
            self._registry.unregister(self._collector)
            self._collector = None
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> DB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_db(path: str | os.PathLike, options: TSDBOptions | None = None, registry=None) -> DB:
    """Open (or create) a TSDB directory: loads blocks and replays the WAL into the head."""
    return DB(path, options or TSDBOptions(), registry)
