"""The in-memory head: series registry, label index and numpy sample storage.

Series are identified by their :data:`Labels` (label pairs interned: one tuple per distinct pair)
and addressed by an int ref, the index into per-series numpy arrays. Samples are stored in
**pieces** of up to :data:`PIECE_SAMPLES` samples, described by a struct-of-arrays piece table
(``c_*``: owner ref, older piece of the same series, location, count, first/last time). A series'
newest piece is open: its samples sit in a row of the shared slot pool ``sl_t[slot, :]`` (int64
ms) / ``sl_v[slot, :]`` (float64, bit-exact). Full pieces are closed and compressed later, a
bounded number per commit, into shared zstd frames (:mod:`frozen`); their slots are then reused.
Four pieces make one Prometheus-style 120-sample chunk (what the chunk metrics count). A batch of
samples for distinct series is appended with a few fancy-indexing assignments; a batch that
repeats a series is split into "rounds" in which each series occurs once. Out-of-order samples
(when a window is configured) go to a separate flat buffer and are merged in on read.
"""

from __future__ import annotations

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
from narthex.tsdb.frozen import CACHE_BYTES as FROZEN_CACHE_BYTES
from narthex.tsdb.frozen import FrozenChunks, IdPool, grow
from narthex.tsdb.postings import PostingList
from narthex.tsdb.records import SeriesColumns
from narthex.tsdb.tombstones import Tombstones

CHUNK_SAMPLES = 120
PIECE_SAMPLES = 30  # samples per head piece (slot width); divides CHUNK_SAMPLES
PIECES_PER_CHUNK = CHUNK_SAMPLES // PIECE_SAMPLES
FREEZE_BATCH = 1024  # closed pieces are compressed once this many are pending
INT64_MIN = int(np.iinfo(np.int64).min)
INT64_MAX = int(np.iinfo(np.int64).max)
EMPTY = np.zeros(0, dtype=np.int64)

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

    def without_deleted(self, ids: np.ndarray, stones: Tombstones) -> SeriesData:
        """This data with the samples covered by ``stones`` removed (series ``i`` has id ``ids[i]``)."""
        keep = stones.keep_mask(ids, self.t, self.offsets)
        if keep is None:
            return self
        owner = np.repeat(np.arange(len(self.labels)), np.diff(self.offsets))[keep]
        offsets = np.zeros(len(self.labels) + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner, minlength=len(self.labels)), out=offsets[1:])
        return SeriesData(self.labels, self.t[keep], self.v[keep], offsets)


class Head:
    """Mutable in-memory recent data. All mutation happens under :attr:`lock`."""

    def __init__(
        self,
        block_range_ms: int,
        ooo_window_ms: int = 0,
        compress: bool = True,
        frozen_cache_bytes: int = FROZEN_CACHE_BYTES,
    ) -> None:
        self.lock = threading.RLock()
        self.block_range_ms = block_range_ms
        self.ooo_window_ms = ooo_window_ms
        self.width = PIECE_SAMPLES
        self.series_by_labels: dict[Labels, int] = {}
        self._labels: list[Labels | None] = []
        self.label_pairs: dict[tuple[str, str], tuple[str, str]] = {}  # interned label pairs
        # Per series (index = ref). Arrays grow with zeros; a new series sets its own fields.
        cap = 256
        self.s_maxt = np.zeros(cap, dtype=np.int64)  # last in-order timestamp (INT64_MIN: none)
        self.s_last = np.zeros(cap, dtype=np.uint64)  # its value bits
        self.s_head = np.zeros(cap, dtype=np.int64)  # newest (open) piece, -1: none
        self.s_logged = np.zeros(cap, dtype=bool)
        self.s_alive = np.zeros(cap, dtype=bool)
        self.s_ooo = np.zeros(cap, dtype=np.int64)
        # Per piece (index = piece id, reused after truncation).
        self._piece_ids = IdPool()
        self.c_live = np.zeros(cap, dtype=bool)
        self.c_ref = np.zeros(cap, dtype=np.int32)
        self.c_prev = np.zeros(cap, dtype=np.int32)  # older piece of the same series, -1: none
        self.c_loc = np.zeros(cap, dtype=np.int32)  # slot >= 0, or -frozen id - 1
        self.c_n = np.zeros(cap, dtype=np.int16)  # samples written to the row
        self.c_lo = np.zeros(cap, dtype=np.int16)  # leading samples dropped by truncation
        self.c_k = np.zeros(cap, dtype=np.int8)  # position within its 120-sample chunk
        self.c_mint = np.zeros(cap, dtype=np.int64)  # first sample kept
        self.c_maxt = np.zeros(cap, dtype=np.int64)  # last sample, set when closed
        # Slot pool: one row per uncompressed piece.
        self._slot_ids = IdPool()
        self.sl_t = np.zeros((cap, self.width), dtype=np.int64)
        self.sl_v = np.zeros((cap, self.width), dtype=np.float64)
        self._pending: list[np.ndarray] = []  # closed pieces awaiting compression
        self._npending = 0
        self.frozen = FrozenChunks(self.width, cache_bytes=frozen_cache_bytes)
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
        self.tombstones = Tombstones()  # deleted intervals by ref; replaced, never mutated
        self._mark = np.zeros(cap, dtype=np.int64)  # scratch of _rounds

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

    def create_logged(self, cols: SeriesColumns) -> list[tuple[int, int]]:
        """Replay: register a record's series in bulk; returns ``(logged ref, ref)`` where they differ.

        A series already known keeps its ref; a logged ref already taken gets a fresh one. Labels
        share memory with other series when the record was decoded with
        ``intern=head.label_pairs``.
        """
        remap: list[tuple[int, int]] = []
        with self.lock:
            for pair in cols.pairs:
                self.label_pairs.setdefault(pair, pair)
            by_label = self.series_by_labels
            all_labels = self._labels
            created_pos: list[int] = []
            created: list[int] = []
            for i, (ref, labels) in enumerate(zip(cols.refs, cols.labels, strict=True)):
                existing = by_label.get(labels)
                if existing is not None:
                    if existing != ref:
                        remap.append((ref, existing))
                    continue
                if ref < len(all_labels) and all_labels[ref] is not None:
                    remap.append((ref, len(all_labels)))
                    ref = len(all_labels)
                if len(all_labels) <= ref:
                    all_labels.extend([None] * (ref + 1 - len(all_labels)))
                all_labels[ref] = labels
                by_label[labels] = ref
                created_pos.append(i)
                created.append(ref)
            if not created:
                return remap
            self._grow_series(len(all_labels))
            new = np.asarray(created, dtype=np.int64)
            self.s_maxt[new] = INT64_MIN
            self.s_last[new] = 0
            self.s_head[new] = -1
            self.s_ooo[new] = 0
            self.s_alive[new] = True
            self.s_logged[new] = True
            counts = np.diff(cols.offsets)
            if len(created) == len(cols.refs):
                pair_idx, owner = cols.pair_idx, np.repeat(new, counts)
            else:
                pos = np.asarray(created_pos, dtype=np.int64)
                c = counts[pos]
                occ = np.repeat(cols.offsets[pos] - np.cumsum(c) + c, c) + np.arange(int(c.sum()))
                pair_idx, owner = cols.pair_idx[occ], np.repeat(new, c)
            order = np.argsort(pair_idx, kind="stable")
            pair_idx, owner = pair_idx[order], owner[order]
            starts = np.flatnonzero(np.r_[True, pair_idx[1:] != pair_idx[:-1]]) if len(order) else EMPTY
            bounds = np.r_[starts, len(order)].tolist()
            index = self.index
            for k, p in enumerate(pair_idx[starts].tolist()):
                name, value = cols.pairs[p]
                values = index.get(name)
                if values is None:
                    values = index[name] = {}
                plist = values.get(value)
                if plist is None:
                    plist = values[value] = PostingList()
                plist.extend(owner[bounds[k] : bounds[k + 1]])
            self.num_series += len(created)
            self.series_created += len(created)
        return remap

    def _grow_series(self, size: int) -> None:
        if size > len(self.s_maxt):
            self.s_maxt, self.s_last = grow(self.s_maxt, size), grow(self.s_last, size)
            self.s_head, self.s_logged = grow(self.s_head, size), grow(self.s_logged, size)
            self.s_alive, self.s_ooo = grow(self.s_alive, size), grow(self.s_ooo, size)

    def _create(self, labels: Labels, ref: int) -> int:
        if len(self._labels) <= ref:
            self._labels.extend([None] * (ref + 1 - len(self._labels)))
        self._grow_series(len(self._labels))
        pairs = self.label_pairs
        labels = tuple([pairs.setdefault(p, p) for p in labels])
        self._labels[ref] = labels
        self.series_by_labels[labels] = ref
        self.s_maxt[ref] = INT64_MIN
        self.s_last[ref] = 0
        self.s_head[ref] = -1
        self.s_logged[ref] = False
        self.s_ooo[ref] = 0
        self.s_alive[ref] = True
        index = self.index
        for name, value in labels:
            values = index.get(name)
            if values is None:
                values = index[name] = {}
            plist = values.get(value)
            if plist is None:
                plist = values[value] = PostingList()
            plist.append(ref)
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
        all_known = bool(known.all())
        if all_known:
            known = self.s_alive[refs]
            all_known = bool(known.all())
        else:
            known[known] = self.s_alive[refs[known]]
        min_valid = self.appendable_min_time()
        if all_known and len(self._rounds(refs)) == 1:
            # The usual scrape: each series once, all newer than their last sample.
            mt = self.s_maxt[refs]
            if bool((((t > mt) | (mt == INT64_MIN)) & (t >= min_valid)).all()):
                return codes
        codes[~known] = _NOT_FOUND
        idx = np.flatnonzero(known)
        if len(idx) == 0:
            return codes
        window = self.ooo_window_ms
        ooo_min = (self.max_time - window) if (window > 0 and self.max_time != INT64_MIN) else None
        bits = v.view(np.uint64)
        r = refs[idx]
        parts = self._rounds(r)
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

    def _rounds(self, refs: np.ndarray) -> list[np.ndarray]:
        """:func:`rounds` of valid refs, with an O(n) check for the usual all-distinct batch."""
        n = len(refs)
        if n == 0:
            return []
        if len(self._mark) < len(self._labels):
            self._mark = grow(self._mark, len(self._labels))
        pos = np.arange(n)
        self._mark[refs] = pos
        if bool((self._mark[refs] == pos).all()):
            return [pos]
        return rounds(refs)

    def _open_pieces(self, r: np.ndarray, old: np.ndarray, first_t: np.ndarray) -> np.ndarray:
        """Start new open pieces for series ``r`` (distinct) whose open piece ``old`` is full or -1."""
        k = len(r)
        ids = self._piece_ids.take(k)
        size = self._piece_ids.next
        if size > len(self.c_live):
            self.c_live, self.c_ref = grow(self.c_live, size), grow(self.c_ref, size)
            self.c_prev, self.c_loc = grow(self.c_prev, size), grow(self.c_loc, size)
            self.c_n, self.c_lo, self.c_k = grow(self.c_n, size), grow(self.c_lo, size), grow(self.c_k, size)
            self.c_mint, self.c_maxt = grow(self.c_mint, size), grow(self.c_maxt, size)
        slots = self._slot_ids.take(k)
        if self._slot_ids.next > len(self.sl_t):
            self.sl_t = grow(self.sl_t, self._slot_ids.next)
            self.sl_v = grow(self.sl_v, self._slot_ids.next)
        had = old >= 0
        pos = np.zeros(k, dtype=np.int8)
        if had.any():
            closed = old[had]
            self.c_maxt[closed] = self.s_maxt[r[had]]
            pos[had] = (self.c_k[closed] + 1) % PIECES_PER_CHUNK
            if self.compress:
                self._pending.append(closed)
                self._npending += len(closed)
        self.c_live[ids] = True
        self.c_ref[ids] = r
        self.c_prev[ids] = old
        self.c_loc[ids] = slots
        # A series' first piece starts at column ref % width (the columns before it count as
        # trimmed), so series created together close their pieces in different commits and
        # compression work is spread evenly instead of hitting every series at once.
        skip = np.where(had, 0, r % self.width)
        fresh = ~had
        if fresh.any():
            cols = np.arange(self.width)[None, :]
            self.sl_t[slots[fresh]] = np.where(cols < skip[fresh][:, None], first_t[fresh][:, None], 0)
            self.sl_v[slots[fresh]] = 0.0
        self.c_n[ids] = skip
        self.c_lo[ids] = skip
        self.c_k[ids] = pos
        self.c_mint[ids] = first_t
        self.s_head[r] = ids
        started = int(np.count_nonzero(pos == 0))
        self.num_chunks += started
        self.chunks_created += started
        return ids

    def apply_inorder(self, refs: np.ndarray, t: np.ndarray, v: np.ndarray, check: bool = False) -> int:
        """Store accepted in-order samples (each series' samples in increasing time order).

        With ``check`` (WAL replay) samples not newer than the series' last one or older than the
        head's minimum valid time are skipped. Returns the number stored. Closed pieces are
        compressed a bounded number at a time (about twice the rate at which they are closed),
        so no commit pays for compressing every series at once.
        """
        stored = 0
        width = self.width
        parts = self._rounds(refs)
        for sel in parts:
            r, tt, vv = (refs, t, v) if len(parts) == 1 else (refs[sel], t[sel], v[sel])
            if check:
                keep = (tt > self.s_maxt[r]) & (tt >= self.min_valid_time)
                if not keep.all():
                    r, tt, vv = r[keep], tt[keep], vv[keep]
                if len(r) == 0:
                    continue
            head = self.s_head[r]
            pos = self.c_n[head]  # garbage where head < 0
            need = (head < 0) | (pos >= width)
            if need.any():
                head[need] = self._open_pieces(r[need], head[need], tt[need])
                pos[need] = self.c_n[head[need]]
            flat = self.c_loc[head] * np.int64(width) + pos
            self.sl_t.reshape(-1)[flat] = tt
            self.sl_v.reshape(-1)[flat] = vv
            self.c_n[head] = pos + 1
            self.s_maxt[r] = tt
            self.s_last[r] = vv.view(np.uint64)
            self.min_time = min(self.min_time, int(tt.min()))
            self.max_time = max(self.max_time, int(tt.max()))
            stored += len(r)
        if self._npending >= self.freeze_batch:
            self.freeze(None if check else max(self.freeze_batch, 2 * stored // width + 1))
        return stored

    def freeze(self, limit: int | None = None) -> None:
        """Compress closed pieces (at most ``limit``, oldest first) and release their slots."""
        if not self._pending:
            return
        ids = np.concatenate(self._pending)
        rest = EMPTY
        if limit is not None and len(ids) > limit:
            ids, rest = ids[:limit], ids[limit:]
        self._pending = [rest] if len(rest) else []
        self._npending = len(rest)
        ids = ids[self.c_live[ids] & (self.c_loc[ids] >= 0)]
        if len(ids) == 0:
            return
        slots = self.c_loc[ids].astype(np.int64)
        fids = self.frozen.add(self.sl_t[slots], self.sl_v[slots], self.c_n[ids])
        self.c_loc[ids] = -fids - 1
        self._slot_ids.give(slots)

    def apply_ooo(self, refs: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
        """Store accepted out-of-order samples in the side buffer."""
        n = len(refs)
        if n == 0:
            return
        end = self.o_n + n
        self.o_ref = grow(self.o_ref, end)
        self.o_t = grow(self.o_t, end)
        self.o_v = grow(self.o_v, end)
        self.o_ref[self.o_n : end] = refs
        self.o_t[self.o_n : end] = t
        self.o_v[self.o_n : end] = v
        self.o_n = end
        np.add.at(self.s_ooo, refs, 1)
        self.min_time = min(self.min_time, int(t.min()))

    # -- reading ---------------------------------------------------------------------------------

    def _piece_bounds(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First and last kept timestamp of pieces (an open piece ends at its series' maxt)."""
        refs = self.c_ref[ids]
        is_open = self.s_head[refs] == ids
        return self.c_mint[ids], np.where(is_open, self.s_maxt[refs], self.c_maxt[ids])

    def _rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Full rows ``[len(ids), width]`` of pieces, uncompressed or decoded."""
        loc = self.c_loc[ids].astype(np.int64)
        in_slot = loc >= 0
        if in_slot.all():
            return self.sl_t[loc], self.sl_v[loc]
        t = np.empty((len(ids), self.width), dtype=np.int64)
        v = np.empty((len(ids), self.width), dtype=np.float64)
        t[in_slot] = self.sl_t[loc[in_slot]]
        v[in_slot] = self.sl_v[loc[in_slot]]
        t[~in_slot], v[~in_slot] = self.frozen.decode(-loc[~in_slot] - 1)
        return t, v

    def _pieces_of(self, refs: np.ndarray, mint: int, maxt: int) -> tuple[np.ndarray, np.ndarray]:
        """Pieces overlapping ``[mint, maxt]`` and their owner index, by owner then time."""
        cur = self.s_head[refs]
        own = np.arange(len(refs))
        found_p: list[np.ndarray] = []
        found_o: list[np.ndarray] = []
        found_d: list[np.ndarray] = []
        depth = 0
        while len(cur):
            ok = cur >= 0
            cur, own = cur[ok], own[ok]
            if len(cur) == 0:
                break
            lo, hi = self._piece_bounds(cur)
            hit = (lo <= maxt) & (hi >= mint)
            found_p.append(cur[hit])
            found_o.append(own[hit])
            found_d.append(np.full(int(hit.sum()), -depth, dtype=np.int64))
            older = lo > mint  # an older piece ends before this one starts
            cur, own = self.c_prev[cur[older]].astype(np.int64), own[older]
            depth += 1
        if not found_p:
            return EMPTY, EMPTY
        pieces, owner, d = np.concatenate(found_p), np.concatenate(found_o), np.concatenate(found_d)
        order = np.lexsort((d, owner))
        return pieces[order], owner[order]

    def overlapping(self, refs: np.ndarray, mint: int, maxt: int) -> np.ndarray:
        """Which of the given series have a piece (or an out-of-order sample) in ``[mint, maxt]``,
        from metadata only: no piece is decoded."""
        refs = np.asarray(refs, dtype=np.int64)
        _pieces, owner = self._pieces_of(refs, mint, maxt)
        found = np.bincount(owner, minlength=len(refs)) > 0
        if self.o_n:
            ot = self.o_t[: self.o_n]
            in_range = self.o_ref[: self.o_n][(ot >= mint) & (ot <= maxt)]
            found |= np.isin(refs, in_range)
        return found

    def read(
        self, refs: np.ndarray, mint: int, maxt: int, include_ooo: bool = True, deleted: bool = False
    ) -> SeriesData:
        """Samples in ``[mint, maxt]`` of the given series (copies), in the given order.

        Samples covered by tombstones are left out unless ``deleted`` is true.
        """
        refs = np.asarray(refs, dtype=np.int64)
        pieces, owner = self._pieces_of(refs, mint, maxt)
        rt, rv = self._rows(pieces)
        cols = np.arange(self.width)[None, :]
        mask = (cols >= self.c_lo[pieces][:, None]) & (cols < self.c_n[pieces][:, None])
        mask &= (rt >= mint) & (rt <= maxt)
        t, v = rt[mask], rv[mask]
        o = np.broadcast_to(owner[:, None], mask.shape)[mask]
        offsets = np.zeros(len(refs) + 1, dtype=np.int64)
        np.cumsum(np.bincount(o, minlength=len(refs)), out=offsets[1:])
        labels = [self.labels_of(r) for r in refs.tolist()]
        data = SeriesData(labels, t, v, offsets)
        if include_ooo and self.o_n and len(refs):
            with_ooo = refs[self.s_ooo[refs] > 0]
            if len(with_ooo):
                data = self._merge_ooo(data, refs, with_ooo, mint, maxt)
        if not deleted and self.tombstones:
            data = data.without_deleted(refs, self.tombstones)
        return data

    # -- deletion --------------------------------------------------------------------------------

    def deletion_stones(self, refs: np.ndarray, mint: int, maxt: int) -> tuple[np.ndarray, ...]:
        """Tombstones deleting ``[mint, maxt]`` of ``refs``, clamped to the data each series has.

        As Prometheus, nothing beyond the head's current range is deleted (samples appended later
        stay visible). Returns ``(refs, mint, maxt)`` arrays of logged series only.
        """
        if self.min_time == INT64_MAX or len(refs) == 0:
            return EMPTY, EMPTY, EMPTY
        refs = np.asarray(refs, dtype=np.int64)
        refs = refs[self.s_logged[refs] & (self.s_maxt[refs] != INT64_MIN)]
        lo = np.full(len(refs), max(mint, self.min_time), dtype=np.int64)
        hi = np.minimum(np.int64(min(maxt, self.max_time)), self.s_maxt[refs])
        ok = lo <= hi
        return refs[ok], lo[ok], hi[ok]

    def add_tombstones(self, refs: np.ndarray, mint: np.ndarray, maxt: np.ndarray) -> None:
        """Mark ``[mint[i], maxt[i]]`` of series ``refs[i]`` deleted (applied on every read)."""
        with self.lock:
            self.tombstones = self.tombstones.with_added(refs, mint, maxt)

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
            ids = np.flatnonzero(self.c_live[: self._piece_ids.next])
            lo, hi = self._piece_bounds(ids)
            drop = hi < cut
            part = ids[~drop & (lo < cut)]
            if len(part):
                rt, _rv = self._rows(part)
                cols = np.arange(self.width)[None, :]
                first = self.c_lo[part].astype(np.int64)
                valid = (cols >= first[:, None]) & (cols < self.c_n[part][:, None])
                first += ((rt < cut) & valid).sum(axis=1)
                self.c_lo[part] = first
                self.c_mint[part] = rt[np.arange(len(part)), first]
            if drop.any():
                self._drop_pieces(ids[drop])
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
            if self.tombstones:
                self.tombstones = self.tombstones.filtered(self.alive_refs(), self.min_time)
            return removed

    def _drop_pieces(self, dead: np.ndarray) -> None:
        """Release pieces that are the oldest of their series (whole chain suffixes)."""
        refs = self.c_ref[dead].astype(np.int64)
        was_open = self.s_head[refs] == dead
        chunks = int(np.count_nonzero(was_open | (self.c_k[dead] == PIECES_PER_CHUNK - 1)))
        self.c_live[dead] = False
        survivors = np.flatnonzero(self.c_live[: self._piece_ids.next])
        prev = self.c_prev[survivors].astype(np.int64)
        linked = prev >= 0
        broken = np.zeros(len(survivors), dtype=bool)
        broken[linked] = ~self.c_live[prev[linked]]
        self.c_prev[survivors[broken]] = -1
        self.s_head[refs[was_open]] = -1
        loc = self.c_loc[dead].astype(np.int64)
        self._slot_ids.give(loc[loc >= 0])
        self.frozen.drop(-loc[loc < 0] - 1)
        if self._pending:
            pending = np.concatenate(self._pending)
            pending = pending[self.c_live[pending]]
            self._pending = [pending] if len(pending) else []
            self._npending = len(pending)
        self._piece_ids.give(dead)
        self.num_chunks -= chunks
        self.chunks_removed += chunks

    def _recompute_min_time(self) -> None:
        live = np.flatnonzero(self.c_live[: self._piece_ids.next])
        mins = [int(self.c_mint[live].min())] if len(live) else []
        if self.o_n:
            mins.append(int(self.o_t[: self.o_n].min()))
        self.min_time = min(mins) if mins else INT64_MAX

    def _gc(self) -> int:
        alive = self.alive_refs()
        empty = alive[(self.s_head[alive] < 0) & (self.s_ooo[alive] == 0)]
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
        for pair, refs in by_pair.items():
            name, value = pair
            values = self.index[name]
            plist = values[value]
            plist.remove(np.asarray(refs, dtype=np.int64))
            if len(plist) == 0:
                del values[value]
                self.label_pairs.pop(pair, None)
                if not values:
                    del self.index[name]
        self.num_series -= len(empty)
        self.series_removed += len(empty)
        return len(empty)


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
