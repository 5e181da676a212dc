"""The in-memory head: series registry, label index and numpy sample storage.

Series are identified by their :data:`Labels` and addressed by an int ref (index into per-series
numpy arrays). Samples live in a pool of fixed 2-D buffers: ``chunk_t[slot, 0:120]`` (int64 ms)
and ``chunk_v[slot, 0:120]`` (float64, copied bit-exactly). Each series owns a list of chunks in
time order (slot ``>= 0`` or compressed chunk ``-id - 1``); its last one is open for appends.
Closed chunks are compressed in batches (:mod:`frozen`). A batch of samples for distinct series is appended
with a few fancy-indexing assignments; a batch that repeats a series is split into "rounds" in
which each series occurs once. Out-of-order samples (when a window is configured) go to a separate
flat buffer and are merged in on read.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

import numpy as np

from narthex.model.labels import Labels
from narthex.tsdb.errors import (
    ERR_DUPLICATE,
    ERR_NOT_FOUND,
    ERR_OUT_OF_BOUNDS,
    ERR_OUT_OF_ORDER,
    ERR_TOO_OLD,
)
from narthex.tsdb.frozen import FrozenChunks
from narthex.tsdb.postings import EMPTY, PostingList

CHUNK_SAMPLES = 120
FREEZE_BATCH = 1024  # closed chunks compressed together
INT64_MIN = int(np.iinfo(np.int64).min)
INT64_MAX = int(np.iinfo(np.int64).max)

# Per-sample classification codes of :meth:`Head.classify`.
OK = 0
OK_OOO = 1
NOOP = 2
CODE_ERRORS = {
    3: ERR_OUT_OF_ORDER,
    4: ERR_OUT_OF_BOUNDS,
    5: ERR_DUPLICATE,
    6: ERR_TOO_OLD,
    7: ERR_NOT_FOUND,
}
_OOO_ERR, _OOB, _DUP, _TOO_OLD, _NOT_FOUND = 3, 4, 5, 6, 7


def rounds(refs: np.ndarray) -> list[np.ndarray]:
    """Index arrays splitting ``refs`` so that each holds a ref at most once, order kept per ref."""
    n = len(refs)
    if n == 0:
        return []
    order = np.argsort(refs, kind="stable")
    srt = refs[order]
    if n == 1 or bool(np.all(srt[1:] != srt[:-1])):
        return [np.arange(n)]
    starts = np.flatnonzero(np.r_[True, srt[1:] != srt[:-1]])
    lengths = np.diff(np.r_[starts, n])
    rank_sorted = np.arange(n) - np.repeat(starts, lengths)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = rank_sorted
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[by_rank], np.arange(1, int(lengths.max())))
    return np.split(by_rank, bounds)


@dataclass(slots=True)
class SeriesData:
    """Samples of several series as flat arrays; series ``i`` is ``[offsets[i]:offsets[i+1]]``."""

    labels: list[Labels]
    t: np.ndarray
    v: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _grow(arr: np.ndarray, size: int, fill: int | float | bool) -> np.ndarray:
    if size <= len(arr):
        return arr
    new_len = max(size, 2 * len(arr))
    out = np.full((new_len, *arr.shape[1:]), fill, dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


class Head:
    """Mutable in-memory recent data. All mutation happens under :attr:`lock`."""

    def __init__(self, block_range_ms: int, ooo_window_ms: int = 0, compress: bool = True) -> None:
        self.lock = threading.RLock()
        self.block_range_ms = block_range_ms
        self.ooo_window_ms = ooo_window_ms
        self.series_by_labels: dict[Labels, int] = {}
        self._labels: list[Labels | None] = []
        self._chunks: list[list[int]] = []
        cap = 256
        self.s_maxt = np.full(cap, INT64_MIN, dtype=np.int64)
        self.s_last = np.zeros(cap, dtype=np.uint64)
        self.s_slot = np.full(cap, -1, dtype=np.int64)
        self.s_logged = np.zeros(cap, dtype=bool)
        self.s_alive = np.zeros(cap, dtype=bool)
        self.s_ooo = np.zeros(cap, dtype=np.int64)
        ccap = 256
        self.c_t = np.zeros((ccap, CHUNK_SAMPLES), dtype=np.int64)
        self.c_v = np.zeros((ccap, CHUNK_SAMPLES), dtype=np.float64)
        self.c_len = np.zeros(ccap, dtype=np.int64)
        self.c_ref = np.full(ccap, -1, dtype=np.int64)
        self._free: list[int] = []
        self._next_slot = 0
        self._closed: list[int] = []  # full slots no longer appended to, awaiting compression
        self.frozen = FrozenChunks()
        self.freeze_batch = FREEZE_BATCH
        self.compress = compress
        self.o_ref = np.zeros(64, dtype=np.int64)
        self.o_t = np.zeros(64, dtype=np.int64)
        self.o_v = np.zeros(64, dtype=np.float64)
        self.o_n = 0
        self.index: dict[str, dict[str, PostingList]] = {}
        self.min_time = INT64_MAX
        self.max_time = INT64_MIN
        self.min_valid_time = INT64_MIN
        self.num_series = 0
        self.num_chunks = 0
        self.series_created = 0
        self.series_removed = 0
        self.chunks_created = 0
        self.chunks_removed = 0
        self.protected: list[set[int]] = []

    # -- series registry -------------------------------------------------------------------------

    @property
    def num_refs(self) -> int:
        return len(self._labels)

    def get_or_create(self, labels: Labels) -> tuple[int, bool]:
        """The ref of a series, creating it if needed; a known series costs one dict lookup."""
        ref = self.series_by_labels.get(labels)
        if ref is not None:
            return ref, False
        with self.lock:
            ref = self.series_by_labels.get(labels)
            if ref is not None:
                return ref, False
            return self._create(labels, len(self._labels)), True

    def create_with_ref(self, ref: int, labels: Labels) -> int:
        """Replay: register a series under its logged ref (or return the ref it already has)."""
        with self.lock:
            existing = self.series_by_labels.get(labels)
            if existing is not None:
                return existing
            if ref < len(self._labels) and self._labels[ref] is not None:
                ref = len(self._labels)
            created = self._create(labels, ref)
            self.s_logged[created] = True
            return created

    def _create(self, labels: Labels, ref: int) -> int:
        while len(self._labels) <= ref:
            self._labels.append(None)
            self._chunks.append([])
        size = len(self._labels)
        self.s_maxt = _grow(self.s_maxt, size, INT64_MIN)
        self.s_last = _grow(self.s_last, size, 0)
        self.s_slot = _grow(self.s_slot, size, -1)
        self.s_logged = _grow(self.s_logged, size, False)
        self.s_alive = _grow(self.s_alive, size, False)
        self.s_ooo = _grow(self.s_ooo, size, 0)
        self._labels[ref] = labels
        self.series_by_labels[labels] = ref
        self.s_alive[ref] = True
        for name, value in labels:
            self.index.setdefault(name, {}).setdefault(value, PostingList()).append(ref)
        self.num_series += 1
        self.series_created += 1
        return ref

    def labels_of(self, ref: int) -> Labels:
        labels = self._labels[ref]
        assert labels is not None
        return labels

    def alive_refs(self) -> np.ndarray:
        return np.flatnonzero(self.s_alive[: len(self._labels)])

    # -- appending -------------------------------------------------------------------------------

    def appendable_min_time(self) -> int:
        if self.max_time == INT64_MIN:
            return self.min_valid_time
        return max(self.min_valid_time, self.max_time - self.block_range_ms // 2)

    def classify(self, refs: np.ndarray, t: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Per-sample codes (OK, OK_OOO, NOOP or an error code) against committed state.

        Samples of the same series within the batch are checked in batch order, each against the
        ones accepted before it, as if appended one by one.
        """
        n = len(refs)
        codes = np.zeros(n, dtype=np.int8)
        if n == 0:
            return codes
        known = (refs >= 0) & (refs < len(self._labels))
        known[known] = self.s_alive[refs[known]]
        codes[~known] = _NOT_FOUND
        idx = np.flatnonzero(known)
        if len(idx) == 0:
            return codes
        min_valid = self.appendable_min_time()
        window = self.ooo_window_ms
        ooo_min = (self.max_time - window) if (window > 0 and self.max_time != INT64_MIN) else None
        bits = v.view(np.uint64)
        r = refs[idx]
        parts = rounds(r)
        if len(parts) == 1:
            uniq, inv = r, np.arange(len(r))
        else:
            uniq, inv = np.unique(r, return_inverse=True)
        lmaxt = self.s_maxt[uniq]
        llast = self.s_last[uniq]
        for sel in parts:
            pos = idx[sel]
            ui = inv[sel]
            tt = t[pos]
            mt = lmaxt[ui]
            has = mt != INT64_MIN
            in_range = tt >= min_valid
            newer = in_range & (~has | (tt > mt))
            same = in_range & has & (tt == mt)
            noop = same & (bits[pos] == llast[ui])
            rest = ~(newer | same)
            c = np.zeros(len(pos), dtype=np.int8)
            c[noop] = NOOP
            c[same & ~noop] = _DUP
            if ooo_min is not None:
                in_window = rest & (tt >= ooo_min)
                c[in_window] = OK_OOO
                c[rest & ~in_window] = _TOO_OLD
            else:
                c[rest & ~in_range] = _OOB
                c[rest & in_range] = _OOO_ERR
            codes[pos] = c
            lmaxt[ui[newer]] = tt[newer]
            llast[ui[newer]] = bits[pos[newer]]
        return codes

    def _alloc_slot(self, ref: int) -> int:
        if self._free:
            slot = self._free.pop()
        else:
            slot = self._next_slot
            self._next_slot += 1
            if slot >= len(self.c_len):
                self.c_t = _grow(self.c_t, slot + 1, 0)
                self.c_v = _grow(self.c_v, slot + 1, 0.0)
                self.c_len = _grow(self.c_len, slot + 1, 0)
                self.c_ref = _grow(self.c_ref, slot + 1, -1)
        prev = int(self.s_slot[ref])
        if prev >= 0 and self.compress:
            self._closed.append(prev)
        self.c_len[slot] = 0
        self.c_ref[slot] = ref
        self._chunks[ref].append(slot)
        self.s_slot[ref] = slot
        self.num_chunks += 1
        self.chunks_created += 1
        return slot

    def apply_inorder(self, refs: np.ndarray, t: np.ndarray, v: np.ndarray, check: bool = False) -> int:
        """Store accepted in-order samples (each series' samples in increasing time order).

        With ``check`` (WAL replay) samples not newer than the series' last one or older than the
        head's minimum valid time are skipped. Returns the number stored.
        """
        stored = 0
        for sel in rounds(refs):
            r = refs[sel]
            tt = t[sel]
            vv = v[sel]
            if check:
                keep = (tt > self.s_maxt[r]) & (tt >= self.min_valid_time)
                if not keep.all():
                    r, tt, vv = r[keep], tt[keep], vv[keep]
                if len(r) == 0:
                    continue
            slots = self.s_slot[r]
            need = slots < 0
            have = ~need
            need[have] = self.c_len[slots[have]] >= CHUNK_SAMPLES
            for i in np.flatnonzero(need):
                slots[i] = self._alloc_slot(int(r[i]))
            pos = self.c_len[slots]
            self.c_t[slots, pos] = tt
            self.c_v[slots, pos] = vv
            self.c_len[slots] = pos + 1
            self.s_maxt[r] = tt
            self.s_last[r] = vv.view(np.uint64)
            self.min_time = min(self.min_time, int(tt.min()))
            self.max_time = max(self.max_time, int(tt.max()))
            stored += len(r)
        if len(self._closed) >= self.freeze_batch:
            self.freeze()
        return stored

    def freeze(self) -> None:
        """Compress all closed chunks and release their slots."""
        slots = np.asarray(self._closed, dtype=np.int64)
        self._closed = []
        slots = slots[(self.c_ref[slots] >= 0) & (self.c_len[slots] > 0)]
        if len(slots) == 0:
            return
        refs = self.c_ref[slots]
        ids = self.frozen.add(refs, self.c_t[slots], self.c_v[slots], self.c_len[slots])
        for slot, ref, fid in zip(slots.tolist(), refs.tolist(), ids.tolist(), strict=True):
            chunks = self._chunks[ref]
            chunks[chunks.index(slot)] = -fid - 1
        self.c_ref[slots] = -1
        self.c_len[slots] = 0
        self._free.extend(slots.tolist())

    def apply_ooo(self, refs: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
        """Store accepted out-of-order samples in the side buffer."""
        n = len(refs)
        if n == 0:
            return
        end = self.o_n + n
        self.o_ref = _grow(self.o_ref, end, 0)
        self.o_t = _grow(self.o_t, end, 0)
        self.o_v = _grow(self.o_v, end, 0.0)
        self.o_ref[self.o_n : end] = refs
        self.o_t[self.o_n : end] = t
        self.o_v[self.o_n : end] = v
        self.o_n = end
        np.add.at(self.s_ooo, refs, 1)
        self.min_time = min(self.min_time, int(t.min()))

    # -- reading ---------------------------------------------------------------------------------

    def read(self, refs: np.ndarray, mint: int, maxt: int, include_ooo: bool = True) -> SeriesData:
        """Samples in ``[mint, maxt]`` of the given series (copies), in the given order."""
        ref_list = refs.tolist()
        counts = [len(self._chunks[r]) for r in ref_list]
        entries = np.fromiter(
            itertools.chain.from_iterable(self._chunks[r] for r in ref_list),
            dtype=np.int64,
            count=sum(counts),
        )
        owner = np.repeat(np.arange(len(refs)), counts)
        is_slot = entries >= 0
        t, v, o = self._read_slots(entries[is_slot], owner[is_slot], mint, maxt)
        if not is_slot.all():
            fids = -entries[~is_slot] - 1
            f_owner = owner[~is_slot]
            keep = (self.frozen.mint[fids] <= maxt) & (self.frozen.maxt[fids] >= mint)
            fids, f_owner = fids[keep], f_owner[keep]
            ft, fv = self.frozen.decode(fids)
            fo = np.repeat(f_owner, self.frozen.count[fids])
            inside = (ft >= mint) & (ft <= maxt)
            t, v, o = _interleave(ft[inside], fv[inside], fo[inside], t, v, o, len(refs))
        offsets = np.zeros(len(refs) + 1, dtype=np.int64)
        np.cumsum(np.bincount(o, minlength=len(refs)), out=offsets[1:])
        labels = [self.labels_of(r) for r in ref_list]
        data = SeriesData(labels, t, v, offsets)
        if include_ooo and self.o_n and len(refs):
            with_ooo = refs[self.s_ooo[refs] > 0]
            if len(with_ooo):
                data = self._merge_ooo(data, refs, with_ooo, mint, maxt)
        return data

    def _read_slots(
        self, slots: np.ndarray, owner: np.ndarray, mint: int, maxt: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat (t, v, owner) of the samples in range of uncompressed chunks."""
        if len(slots):
            lens = self.c_len[slots]
            first = self.c_t[slots, 0]
            last = self.c_t[slots, np.maximum(lens - 1, 0)]
            overlap = (lens > 0) & (first <= maxt) & (last >= mint)
            slots, owner, lens = slots[overlap], owner[overlap], lens[overlap]
        else:
            lens = EMPTY
        ts = self.c_t[slots]
        vs = self.c_v[slots]
        mask = (np.arange(CHUNK_SAMPLES)[None, :] < lens[:, None]) & (ts >= mint) & (ts <= maxt)
        owners = np.broadcast_to(owner[:, None], mask.shape)
        return ts[mask], vs[mask], owners[mask]

    def _merge_ooo(
        self, data: SeriesData, refs: np.ndarray, with_ooo: np.ndarray, mint: int, maxt: int
    ) -> SeriesData:
        o_ref = self.o_ref[: self.o_n]
        o_t = self.o_t[: self.o_n]
        sel = np.isin(o_ref, with_ooo) & (o_t >= mint) & (o_t <= maxt)
        if not sel.any():
            return data
        o_ref, o_t, o_v = o_ref[sel], o_t[sel], self.o_v[: self.o_n][sel]
        position = {r: i for i, r in enumerate(refs.tolist())}
        extra_t: list[list[np.ndarray]] = [[] for _ in refs]
        extra_v: list[list[np.ndarray]] = [[] for _ in refs]
        order = np.argsort(o_ref, kind="stable")
        o_ref, o_t, o_v = o_ref[order], o_t[order], o_v[order]
        uniq, starts = np.unique(o_ref, return_index=True)
        bounds = np.r_[starts, len(o_ref)]
        for k, r in enumerate(uniq.tolist()):
            i = position[r]
            extra_t[i].append(o_t[bounds[k] : bounds[k + 1]])
            extra_v[i].append(o_v[bounds[k] : bounds[k + 1]])
        parts_t, parts_v = [], []
        for i in range(len(refs)):
            a, b = data.offsets[i], data.offsets[i + 1]
            if extra_t[i]:
                t_i, v_i = merge_samples([data.t[a:b], *extra_t[i]], [data.v[a:b], *extra_v[i]])
            else:
                t_i, v_i = data.t[a:b], data.v[a:b]
            parts_t.append(t_i)
            parts_v.append(v_i)
        offsets = np.zeros(len(refs) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in parts_t], out=offsets[1:])
        return SeriesData(data.labels, concat(parts_t, np.int64), concat(parts_v, np.float64), offsets)

    # -- truncation ------------------------------------------------------------------------------

    def truncate(self, cut: int, ooo_upto: int | None = None) -> int:
        """Drop samples older than ``cut`` and garbage-collect empty series; returns series removed.

        Only the first ``ooo_upto`` out-of-order samples (those a block was cut from) are dropped;
        later ones, possibly older than ``cut``, stay for the next cut.
        """
        with self.lock:
            self.min_valid_time = max(self.min_valid_time, cut)
            n = self._next_slot
            active = np.flatnonzero(self.c_ref[:n] >= 0)
            lens = self.c_len[active]
            first = self.c_t[active, 0]
            last = self.c_t[active, np.maximum(lens - 1, 0)]
            drop = active[(lens == 0) | (last < cut)]
            part = active[(lens > 0) & (first < cut) & (last >= cut)]
            if len(part):
                cols = np.arange(CHUNK_SAMPLES)[None, :]
                k = ((self.c_t[part] < cut) & (cols < self.c_len[part][:, None])).sum(axis=1)
                src = np.minimum(cols + k[:, None], CHUNK_SAMPLES - 1)
                self.c_t[part] = np.take_along_axis(self.c_t[part], src, axis=1)
                self.c_v[part] = np.take_along_axis(self.c_v[part], src, axis=1)
                self.c_len[part] -= k
            live = self.frozen.live_ids()
            f_drop = live[self.frozen.maxt[live] < cut]
            f_part = live[(self.frozen.mint[live] < cut) & (self.frozen.maxt[live] >= cut)]
            self.frozen.trim_before(f_part, cut)
            if len(drop) or len(f_drop):
                dropped = set(drop.tolist()) | {-i - 1 for i in f_drop.tolist()}
                affected = set(self.c_ref[drop].tolist()) | set(self.frozen.ref[f_drop].tolist())
                for ref in affected:
                    kept = [e for e in self._chunks[ref] if e not in dropped]
                    self._chunks[ref] = kept
                    if not kept:
                        self.s_slot[ref] = -1
                self._closed = [s for s in self._closed if s not in dropped]
                self.c_ref[drop] = -1
                self.c_len[drop] = 0
                self._free.extend(drop.tolist())
                self.frozen.drop(f_drop)
                self.num_chunks -= len(drop) + len(f_drop)
                self.chunks_removed += len(drop) + len(f_drop)
            if self.o_n:
                keep = self.o_t[: self.o_n] >= cut
                if ooo_upto is not None:
                    keep[ooo_upto:] = True
                m = int(keep.sum())
                self.o_ref[:m] = self.o_ref[: self.o_n][keep]
                self.o_t[:m] = self.o_t[: self.o_n][keep]
                self.o_v[:m] = self.o_v[: self.o_n][keep]
                self.o_n = m
                self.s_ooo[:] = 0
                np.add.at(self.s_ooo, self.o_ref[:m], 1)
            removed = self._gc()
            self._recompute_min_time()
            return removed

    def _recompute_min_time(self) -> None:
        active = np.flatnonzero(self.c_ref[: self._next_slot] >= 0)
        active = active[self.c_len[active] > 0]
        mins = [int(self.c_t[active, 0].min())] if len(active) else []
        live = self.frozen.live_ids()
        if len(live):
            mins.append(int(self.frozen.mint[live].min()))
        if self.o_n:
            mins.append(int(self.o_t[: self.o_n].min()))
        self.min_time = min(mins) if mins else INT64_MAX

    def _gc(self) -> int:
        alive = self.alive_refs()
        empty = alive[(self.s_slot[alive] < 0) & (self.s_ooo[alive] == 0)]
        if self.protected:
            guard = np.fromiter(set().union(*self.protected), dtype=np.int64)
            empty = np.setdiff1d(empty, guard)
        if len(empty) == 0:
            return 0
        by_pair: dict[tuple[str, str], list[int]] = {}
        for ref in empty.tolist():
            labels = self.labels_of(ref)
            del self.series_by_labels[labels]
            self._labels[ref] = None
            for pair in labels:
                by_pair.setdefault(pair, []).append(ref)
        self.s_alive[empty] = False
        self.s_logged[empty] = False
        self.s_maxt[empty] = INT64_MIN
        for (name, value), refs in by_pair.items():
            values = self.index[name]
            plist = values[value]
            plist.remove(np.asarray(refs, dtype=np.int64))
            if len(plist) == 0:
                del values[value]
                if not values:
                    del self.index[name]
        self.num_series -= len(empty)
        self.series_removed += len(empty)
        return len(empty)


def _interleave(
    t1: np.ndarray, v1: np.ndarray, o1: np.ndarray, t2: np.ndarray, v2: np.ndarray, o2: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge two owner-grouped sample runs, per owner all of run 1 (older) before run 2."""
    c1 = np.bincount(o1, minlength=n)
    c2 = np.bincount(o2, minlength=n)
    start = np.cumsum(c1 + c2) - (c1 + c2)
    first1 = np.cumsum(c1) - c1
    first2 = np.cumsum(c2) - c2
    dest1 = start[o1] + np.arange(len(o1)) - first1[o1]
    dest2 = start[o2] + c1[o2] + np.arange(len(o2)) - first2[o2]
    total = len(o1) + len(o2)
    t = np.empty(total, dtype=np.int64)
    v = np.empty(total, dtype=np.float64)
    o = np.empty(total, dtype=np.int64)
    t[dest1], t[dest2] = t1, t2
    v[dest1], v[dest2] = v1, v2
    o[dest1], o[dest2] = o1, o2
    return t, v, o


def concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=dtype)
    return np.concatenate(parts).astype(dtype, copy=False)


def merge_samples(ts: list[np.ndarray], vs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Merge sample runs by time; on equal timestamps the earliest run wins."""
    t = concat(ts, np.int64)
    v = concat(vs, np.float64)
    if len(t) < 2 or bool(np.all(t[1:] > t[:-1])):
        return t, v
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    keep = np.r_[True, t[1:] != t[:-1]]
    return t[keep], v[keep]
