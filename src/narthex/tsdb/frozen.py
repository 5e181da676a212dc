"""Compressed, immutable head pieces, stored in shared zstd frames.

When a series' head piece (a fixed-width row of samples, see :mod:`head`) is full, it never
changes again. The head hands such closed rows over in batches; they are transformed column-wise
like block chunks (timestamps delta-of-delta + zigzag, value bits XOR'd with the previous sample,
both byte-shuffled) and compressed ``GROUP`` rows per zstd frame, so the per-row cost is a few
numpy element operations and about 9 bytes of index, not a Python object or a zstd call.
Reading a row decompresses its frame (~15 KiB raw) once per read, however many rows it needs;
decoded rows are kept in a bounded pool (FIFO, ``cache_bytes``) so repeated reads skip that.
"""

from __future__ import annotations

import numpy as np
import zstandard

GROUP = 32  # rows per zstd frame
CACHE_BYTES = 64 * 1024 * 1024  # default budget of decoded rows


class IdPool:
    """Int ids from a counter, with a stack of released ids that are handed out first."""

    __slots__ = ("_free", "_nfree", "next")

    def __init__(self) -> None:
        self._free = np.zeros(0, dtype=np.int64)
        self._nfree = 0
        self.next = 0

    def take(self, k: int) -> np.ndarray:
        reuse = min(k, self._nfree)
        out = np.empty(k, dtype=np.int64)
        out[:reuse] = self._free[self._nfree - reuse : self._nfree]
        self._nfree -= reuse
        out[reuse:] = np.arange(self.next, self.next + k - reuse)
        self.next += k - reuse
        return out

    def give(self, ids: np.ndarray) -> None:
        end = self._nfree + len(ids)
        if end > len(self._free):
            self._free = grow(self._free, end)
        self._free[self._nfree : end] = ids
        self._nfree = end

    def __len__(self) -> int:
        """Ids in use."""
        return self.next - self._nfree


def grow(arr: np.ndarray, size: int) -> np.ndarray:
    """``arr`` with at least ``size`` rows; new rows are zero (and not resident until written)."""
    if size <= len(arr):
        return arr
    out = np.zeros((max(size, len(arr) * 3 // 2, 64), *arr.shape[1:]), dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


def encode_rows(t: np.ndarray, v: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``[16, rows, width]`` bytes: zigzag delta-of-delta timestamps and XOR'd value bits, shuffled.

    Columns at or after ``n[i]`` are zeroed (their content is undefined in the head's slots).
    """
    rows, width = t.shape
    valid = np.arange(width)[None, :] < n[:, None]
    dod = np.empty_like(t)
    dod[:, 0] = t[:, 0]
    dod[:, 1:] = t[:, 1:] - t[:, :-1]
    dod[:, 2:] -= t[:, 1:-1] - t[:, :-2]
    dod[~valid] = 0
    zig = (dod << 1) ^ (dod >> 63)
    bits = v.view(np.uint64)
    xor = bits.copy()
    xor[:, 1:] ^= bits[:, :-1]
    xor[~valid] = 0
    out = np.empty((16, rows, width), dtype=np.uint8)
    out[:8] = zig.astype("<i8").view(np.uint8).reshape(rows, width, 8).transpose(2, 0, 1)
    out[8:] = xor.astype("<u8").view(np.uint8).reshape(rows, width, 8).transpose(2, 0, 1)
    return out


def decode_rows(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_rows` (columns past each row's count hold garbage)."""
    zig = np.ascontiguousarray(raw[:8].transpose(1, 2, 0)).view("<u8")[..., 0].astype(np.uint64)
    xor = np.ascontiguousarray(raw[8:].transpose(1, 2, 0)).view("<u8")[..., 0].astype(np.uint64)
    dod = ((zig >> np.uint64(1)) ^ (np.uint64(0) - (zig & np.uint64(1)))).view(np.int64)
    t = np.cumsum(dod, axis=1)
    t[:, 1:] = dod[:, :1] + np.cumsum(t[:, 1:] - dod[:, :1], axis=1)
    bits = np.bitwise_xor.accumulate(xor, axis=1)
    return t, bits.view(np.float64)


class FrozenChunks:
    """A table of compressed rows addressed by int id (ids of dropped rows are reused).

    Decoded rows are cached in a pool of ``cache_bytes // (16 * width)`` rows (0: no cache),
    replaced first in, first out; a row id's entry is invalidated when it is dropped or reused.
    Like the rest of the head, not thread-safe: use under the head lock.
    """

    def __init__(self, width: int, level: int = 1, cache_bytes: int = CACHE_BYTES) -> None:
        self.width = width
        self.cache_rows = max(0, cache_bytes // (16 * width))
        self._cslot = np.zeros(0, dtype=np.int64)  # per row id: pool slot + 1 (0: not cached)
        self._pool_t = np.zeros((0, width), dtype=np.int64)
        self._pool_v = np.zeros((0, width), dtype=np.float64)
        self._pool_owner = np.zeros(0, dtype=np.int64)  # per slot: row id + 1 (0: free)
        self._next_slot = 0
        self.cache_hits = 0
        self.cache_misses = 0
        self._cctx = zstandard.ZstdCompressor(level=level, write_content_size=False, write_checksum=False)
        self._dctx = zstandard.ZstdDecompressor()
        self._ids = IdPool()
        self.blob = np.zeros(0, dtype=np.int32)  # per row: frame number
        self.row = np.zeros(0, dtype=np.int16)  # per row: position in its frame
        self.live = np.zeros(0, dtype=bool)
        self._frames: list[bytes | None] = []
        self._frame_rows: list[int] = []
        self._frame_live = np.zeros(0, dtype=np.int64)
        self._frame_ids = IdPool()
        self.bytes = 0

    def add(self, t: np.ndarray, v: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Compress rows ``t[i, :n[i]]``, ``v[i, :n[i]]`` (``[rows, width]``); returns their ids."""
        rows = len(n)
        ids = self._ids.take(rows)
        self._uncache(ids)
        size = self._ids.next
        self.blob, self.row, self.live = grow(self.blob, size), grow(self.row, size), grow(self.live, size)
        raw = encode_rows(t, v, n)
        nframes = (rows + GROUP - 1) // GROUP
        frames = self._frame_ids.take(nframes)
        self._frame_live = grow(self._frame_live, self._frame_ids.next)
        while len(self._frames) < self._frame_ids.next:
            self._frames.append(None)
            self._frame_rows.append(0)
        compress = self._cctx.compress
        for k, f in enumerate(frames.tolist()):
            a, b = k * GROUP, min(rows, (k + 1) * GROUP)
            # Copied: the compressor's result keeps its worst-case sized allocation.
            payload = memoryview(compress(np.ascontiguousarray(raw[:, a:b]).data)).tobytes()
            self._frames[f] = payload
            self._frame_rows[f] = b - a
            self._frame_live[f] = b - a
            self.bytes += len(payload)
        pos = np.arange(rows)
        self.blob[ids] = frames[pos // GROUP]
        self.row[ids] = pos % GROUP
        self.live[ids] = True
        return ids

    def decode(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``[len(ids), width]`` of timestamps and values (copies), in the given order."""
        if self.cache_rows == 0 or len(ids) == 0:
            return self._decode(ids)
        self._cslot = grow(self._cslot, self._ids.next)
        slot = self._cslot[ids] - 1
        hit = slot >= 0
        nhit = int(np.count_nonzero(hit))
        self.cache_hits += nhit
        self.cache_misses += len(ids) - nhit
        if nhit == len(ids):
            return self._pool_t[slot], self._pool_v[slot]
        miss = ~hit
        mt, mv = self._decode(ids[miss])
        if nhit == 0:
            self._store(ids, mt, mv)
            return mt, mv
        t = np.empty((len(ids), self.width), dtype=np.int64)
        v = np.empty((len(ids), self.width), dtype=np.float64)
        # Hits are copied out before storing the misses may replace their slots.
        t[hit], v[hit] = self._pool_t[slot[hit]], self._pool_v[slot[hit]]
        t[miss], v[miss] = mt, mv
        self._store(ids[miss], mt, mv)
        return t, v

    def _store(self, ids: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
        """Put decoded rows (distinct ids) into the pool, replacing the oldest entries."""
        cap = self.cache_rows
        if len(ids) > cap:
            ids, t, v = ids[-cap:], t[-cap:], v[-cap:]
        if len(self._pool_owner) < cap:
            # Zero pages: memory is only used as slots get written.
            self._pool_t = np.zeros((cap, self.width), dtype=np.int64)
            self._pool_v = np.zeros((cap, self.width), dtype=np.float64)
            self._pool_owner = np.zeros(cap, dtype=np.int64)
        slots = (self._next_slot + np.arange(len(ids))) % cap
        self._next_slot = int(slots[-1] + 1) % cap
        old = self._pool_owner[slots] - 1
        had = old >= 0
        old, old_slots = old[had], slots[had]
        still = self._cslot[old] == old_slots + 1
        self._cslot[old[still]] = 0
        self._pool_owner[slots] = ids + 1
        self._pool_t[slots] = t
        self._pool_v[slots] = v
        self._cslot[ids] = slots + 1

    def _uncache(self, ids: np.ndarray) -> None:
        """Forget the cached rows of ``ids`` (dropped, or about to be reused)."""
        ids = ids[ids < len(self._cslot)]
        slot = self._cslot[ids]
        cached = slot > 0
        self._pool_owner[slot[cached] - 1] = 0
        self._cslot[ids[cached]] = 0

    def _decode(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`decode` without the cache: decompresses each needed frame once."""
        m = len(ids)
        t = np.empty((m, self.width), dtype=np.int64)
        v = np.empty((m, self.width), dtype=np.float64)
        if m == 0:
            return t, v
        blobs = self.blob[ids]
        order = np.argsort(blobs, kind="stable")
        sb = blobs[order]
        starts = np.flatnonzero(np.r_[True, sb[1:] != sb[:-1]])
        bounds = np.r_[starts, m]
        rows = self.row[ids][order]
        decompress = self._dctx.decompress
        raw = np.empty((16, m, self.width), dtype=np.uint8)
        for k, f in enumerate(sb[starts].tolist()):
            nrows = self._frame_rows[f]
            payload = self._frames[f]
            assert payload is not None
            data = decompress(payload, max_output_size=16 * nrows * self.width)
            frame = np.frombuffer(data, dtype=np.uint8).reshape(16, nrows, self.width)
            a, b = bounds[k], bounds[k + 1]
            raw[:, a:b] = frame[:, rows[a:b]]
        st, sv = decode_rows(raw)
        t[order] = st
        v[order] = sv
        return t, v

    def drop(self, ids: np.ndarray) -> None:
        """Release rows; a frame is freed when its last row is."""
        if len(ids) == 0:
            return
        self.live[ids] = False
        self._uncache(ids)
        self._ids.give(ids)
        frames, counts = np.unique(self.blob[ids], return_counts=True)
        self._frame_live[frames] -= counts
        empty = frames[self._frame_live[frames] == 0]
        for f in empty.tolist():
            payload = self._frames[f]
            if payload is not None:
                self.bytes -= len(payload)
            self._frames[f] = None
        self._frame_ids.give(empty)

    def live_ids(self) -> np.ndarray:
        return np.flatnonzero(self.live[: self._ids.next])
