"""What the engine reads: the :class:`Queryable` protocol and an in-memory implementation.

The TSDB (``narthex.tsdb.open_db(path)``) satisfies the protocol; :class:`MemoryStorage` is used by
tests and the promqltest runner, where data is loaded once and queried many times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from narthex.model.labels import Labels
from narthex.model.matcher import Matcher, MatchType


class SeriesLike(Protocol):
    """A selected series; it may also carry ``start_timestamps`` (int64 ms per sample, 0 unknown)."""

    labels: Labels
    timestamps: np.ndarray
    values: np.ndarray


class Querier(Protocol):
    def select(self, matchers: list[Matcher]) -> Sequence[SeriesLike]:
        """Series matching all matchers with their samples in the querier's [mint, maxt]."""
        ...


class Queryable(Protocol):
    def querier(self, mint: int, maxt: int) -> Querier: ...


@dataclass(slots=True)
class MemSeries:
    labels: Labels
    timestamps: np.ndarray
    values: np.ndarray
    start_timestamps: np.ndarray | None = None


def series_matches(labels: Labels, matchers: Sequence[Matcher]) -> bool:
    """Whether a label set satisfies every matcher (absent labels read as ``""``)."""
    lookup = dict(labels)
    return all(m.matches(lookup.get(m.name, "")) for m in matchers)


class MemoryStorage:
    """Series kept as sorted numpy arrays; appends are buffered until the next query."""

    def __init__(self) -> None:
        self._pending: dict[Labels, list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]] = {}
        self._series: dict[Labels, MemSeries] = {}
        self._sorted: list[MemSeries] = []
        self._by_name: dict[str, list[MemSeries]] = {}
        self._dirty = False

    def add(self, labels: Labels, timestamp: int, value: float) -> None:
        """Add one sample (a later sample at the same timestamp replaces the earlier one)."""
        self.add_series(labels, [timestamp], [value])

    def add_series(
        self,
        labels: Labels,
        timestamps: Sequence[int] | np.ndarray,
        values: Sequence[float] | np.ndarray,
        start_timestamps: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        """Add samples to a series (``labels`` sorted by name, ``__name__`` included), optionally with
        each sample's start timestamp (0 when unknown)."""
        ts = np.asarray(timestamps, dtype=np.int64)
        vals = np.asarray(values, dtype=np.float64)
        sts = np.asarray(start_timestamps, dtype=np.int64) if start_timestamps is not None else None
        if ts.shape != vals.shape or (sts is not None and sts.shape != ts.shape):
            raise ValueError("timestamps, values and start timestamps differ in length")
        self._pending.setdefault(labels, []).append((ts, vals, sts))
        self._dirty = True

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def _flush(self) -> None:
        for labels, chunks in self._pending.items():
            old = self._series.get(labels)
            if old is not None:
                chunks = [(old.timestamps, old.values, old.start_timestamps), *chunks]
            ts = np.concatenate([c[0] for c in chunks])
            vals = np.concatenate([c[1] for c in chunks])
            sts = None
            if any(c[2] is not None for c in chunks):
                sts = np.concatenate(
                    [c[2] if c[2] is not None else np.zeros(len(c[0]), np.int64) for c in chunks]
                )
            # Sort by time keeping the last written sample of each timestamp.
            order = np.argsort(ts, kind="stable")
            ts, vals = ts[order], vals[order]
            keep = np.ones(len(ts), dtype=bool)
            keep[:-1] = ts[1:] != ts[:-1]
            st_kept = sts[order][keep] if sts is not None else None
            self._series[labels] = MemSeries(labels, ts[keep], vals[keep], st_kept)
        self._pending.clear()
        self._sorted = [self._series[k] for k in sorted(self._series)]
        self._by_name = {}
        for s in self._sorted:
            name = dict(s.labels).get("__name__", "")
            self._by_name.setdefault(name, []).append(s)
        self._dirty = False

    def querier(self, mint: int, maxt: int) -> _MemQuerier:
        if self._dirty:
            self._flush()
        return _MemQuerier(self, mint, maxt)


class _MemQuerier:
    def __init__(self, storage: MemoryStorage, mint: int, maxt: int) -> None:
        self._storage = storage
        self.mint = mint
        self.maxt = maxt

    def select(self, matchers: list[Matcher]) -> list[MemSeries]:
        candidates = self._storage._sorted
        for m in matchers:
            if m.name == "__name__" and m.type is MatchType.EQUAL:
                candidates = self._storage._by_name.get(m.value, [])
                break
        out = []
        for s in candidates:
            if not series_matches(s.labels, matchers):
                continue
            ts = s.timestamps
            a = int(np.searchsorted(ts, self.mint, side="left"))
            b = int(np.searchsorted(ts, self.maxt, side="right"))
            if b > a:
                sts = s.start_timestamps[a:b] if s.start_timestamps is not None else None
                out.append(MemSeries(s.labels, ts[a:b], s.values[a:b], sts))
        return out
