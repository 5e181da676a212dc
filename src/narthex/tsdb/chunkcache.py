"""A byte-bounded LRU of decoded block chunks, shared by all blocks of a DB (and the budget of
built label sets the blocks keep, :class:`LabelSetBudget`).

Entries are keyed by an int: each :class:`~narthex.tsdb.block.Block` instance takes a unique key
base from :meth:`ChunkCache.new_base` and adds its chunk number, so a closed or replaced block's
entries can never be served for another block (they just age out, or are dropped by
:meth:`ChunkCache.drop`). An entry is one ``[2, n]`` int64 array: timestamps, then the values'
float64 bits. The cache holds raw chunk data; tombstones are applied by the reader afterwards.

Thread-safe: dictionary operations happen under a lock, decoding is done by callers outside it.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict

import numpy as np

# Approximate per-entry overhead beyond the array data (ndarray object, dict and LRU links).
ENTRY_OVERHEAD = 200
_KEY_BITS = 40  # chunk numbers of one block stay below 2**40


class ChunkCache:
    """LRU of decoded chunks bounded by ``max_bytes`` (array bytes plus a fixed overhead each)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size_bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bases = itertools.count(1)

    def __len__(self) -> int:
        return len(self._entries)

    def new_base(self) -> int:
        """A key base unique to the caller (one per block instance); keys are ``base + chunk``."""
        with self._lock:
            return next(self._bases) << _KEY_BITS

    def get_many(self, keys: list[int]) -> list[np.ndarray | None]:
        """The cached entries of ``keys`` (None for a miss); hits become most recently used."""
        entries = self._entries
        with self._lock:
            out = [entries.get(k) for k in keys]
            touch = entries.move_to_end
            hits = 0
            for k, e in zip(keys, out, strict=True):
                if e is not None:
                    touch(k)
                    hits += 1
            self.hits += hits
            self.misses += len(keys) - hits
        return out

    def put_many(self, keys: list[int], values: list[np.ndarray]) -> None:
        """Insert entries (keys already present are left alone), then evict down to the budget."""
        entries = self._entries
        with self._lock:
            for k, e in zip(keys, values, strict=True):
                if k in entries:
                    continue
                entries[k] = e
                self.size_bytes += e.nbytes + ENTRY_OVERHEAD
            while self.size_bytes > self.max_bytes and entries:
                _k, e = entries.popitem(last=False)
                self.size_bytes -= e.nbytes + ENTRY_OVERHEAD
                self.evictions += 1

    def drop(self, base: int, nchunks: int) -> None:
        """Forget the entries ``base .. base + nchunks - 1`` (a block going away)."""
        entries = self._entries
        with self._lock:
            if nchunks < len(entries):
                doomed = [k for k in range(base, base + nchunks) if k in entries]
            else:
                doomed = [k for k in entries if base <= k < base + nchunks]
            for k in doomed:
                self.size_bytes -= entries.pop(k).nbytes + ENTRY_OVERHEAD

    def clear(self) -> None:
        """Drop every entry (counters are kept)."""
        with self._lock:
            self._entries.clear()
            self.size_bytes = 0


class LabelSetBudget:
    """How many built label sets the blocks of a DB may keep between them (thread-safe).

    A block takes from the budget as it caches label sets and gives its share back when it goes
    away; once the budget is spent, further label sets are built for each read and not kept.
    """

    def __init__(self, max_sets: int) -> None:
        self.max_sets = max_sets
        self.used = 0
        self._lock = threading.Lock()

    def take(self, wanted: int) -> int:
        """Reserve up to ``wanted`` sets; returns how many were granted."""
        with self._lock:
            granted = max(0, min(wanted, self.max_sets - self.used))
            self.used += granted
            return granted

    def give(self, count: int) -> None:
        with self._lock:
            self.used -= count
