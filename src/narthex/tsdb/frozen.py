"""Compressed, immutable head chunks.

Once a series' 120-sample head chunk is full and a new one is opened, the old one never changes.
The head compresses such closed chunks in batches with the block chunk codec, so the head holds
only each series' open chunk uncompressed (Prometheus memory-maps closed head chunks instead).
"""

from __future__ import annotations

import numpy as np

from narthex.tsdb.chunks import ChunkCodec


def _grow(arr: np.ndarray, size: int) -> np.ndarray:
    if size <= len(arr):
        return arr
    out = np.zeros(max(size, 2 * len(arr), 64), dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


class FrozenChunks:
    """A table of compressed chunks addressed by int id (ids of dropped chunks are reused)."""

    def __init__(self) -> None:
        self._codec = ChunkCodec()
        self.payload: list[bytes | None] = []
        self.mint = np.zeros(0, dtype=np.int64)
        self.maxt = np.zeros(0, dtype=np.int64)
        self.count = np.zeros(0, dtype=np.int64)
        self.ref = np.zeros(0, dtype=np.int64)
        self.live = np.zeros(0, dtype=bool)
        self._free: list[int] = []
        self.bytes = 0

    def _alloc(self, n: int) -> np.ndarray:
        reuse = [self._free.pop() for _ in range(min(n, len(self._free)))]
        start = len(self.payload)
        fresh = list(range(start, start + n - len(reuse)))
        self.payload.extend([None] * len(fresh))
        size = len(self.payload)
        self.mint, self.maxt = _grow(self.mint, size), _grow(self.maxt, size)
        self.count, self.live = _grow(self.count, size), _grow(self.live, size)
        self.ref = _grow(self.ref, size)
        return np.asarray(reuse + fresh, dtype=np.int64)

    def add(self, refs: np.ndarray, t: np.ndarray, v: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Compress chunks of series ``refs`` given as rows of ``[n, 120]`` arrays; returns ids."""
        n = len(counts)
        width = t.shape[1]
        starts = np.arange(n, dtype=np.int64) * width
        payloads = self._codec.encode(t.ravel(), v.ravel(), starts, counts)
        ids = self._alloc(n)
        for i, p in zip(ids.tolist(), payloads, strict=True):
            self.payload[i] = p
            self.bytes += len(p)
        self.mint[ids] = t[:, 0]
        self.maxt[ids] = t[np.arange(n), counts - 1]
        self.count[ids] = counts
        self.ref[ids] = refs
        self.live[ids] = True
        return ids

    def decode(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat samples of the chunks, in the given order."""
        payloads = [self.payload[i] for i in ids.tolist()]
        return self._codec.decode(payloads, self.count[ids])  # type: ignore[arg-type]

    def drop(self, ids: np.ndarray) -> None:
        for i in ids.tolist():
            payload = self.payload[i]
            if payload is not None:
                self.bytes -= len(payload)
            self.payload[i] = None
        self.live[ids] = False
        self._free.extend(ids.tolist())

    def trim_before(self, ids: np.ndarray, cut: int) -> None:
        """Re-encode chunks keeping only their samples at or after ``cut``."""
        for i in ids.tolist():
            one = np.asarray([i], dtype=np.int64)
            t, v = self.decode(one)
            keep = t >= cut
            t, v = t[keep], v[keep]
            payload = self._codec.encode(t, v, np.zeros(1, dtype=np.int64), np.asarray([len(t)]))[0]
            old = self.payload[i]
            self.bytes += len(payload) - (len(old) if old is not None else 0)
            self.payload[i] = payload
            self.mint[i], self.maxt[i], self.count[i] = t[0], t[-1], len(t)

    def live_ids(self) -> np.ndarray:
        return np.flatnonzero(self.live[: len(self.payload)])
