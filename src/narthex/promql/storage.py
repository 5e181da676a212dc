"""What the engine reads: the :class:`Queryable` protocol and an in-memory implementation.

The TSDB (``narthex.tsdb.open_db(path)``) satisfies the protocol; :class:`MemoryStorage` is used by
tests and the promqltest runner, where data is loaded once and queried many times.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

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


class FlatSelection(NamedTuple):
    """Selected series flattened: series ``i`` owns samples ``offsets[i]:offsets[i+1]``; ``st``
    holds start timestamps (0 unknown) or is None. A querier may offer ``select_flat(matchers)``
    returning this (or None when it cannot), which the engine then prefers to ``select``."""

    labels: list[Labels]
    t: np.ndarray
    v: np.ndarray
    offsets: np.ndarray
    st: np.ndarray | None


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
    """Series kept as sorted numpy arrays; appends are buffered until the next query (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[Labels, list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]] = {}
        self._series: dict[Labels, MemSeries] = {}
        self._view = _View([], {}, None)
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
        with self._lock:
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
        ordered = [self._series[k] for k in sorted(self._series)]
        by_name: dict[str, list[MemSeries]] = {}
        for s in ordered:
            name = dict(s.labels).get("__name__", "")
            by_name.setdefault(name, []).append(s)
        # One assignment, so that queriers in other threads see a consistent view.
        self._view = _View(ordered, by_name, _FlatIndex.build(ordered))
        self._dirty = False

    def querier(self, mint: int, maxt: int) -> _MemQuerier:
        if self._dirty:
            with self._lock:
                if self._dirty:
                    self._flush()
        return _MemQuerier(self._view, mint, maxt)


@dataclass(slots=True)
class _FlatIndex:
    """All series' samples concatenated in series order, with search keys ``series * width + t``
    so that the sample range of any set of series is found by one ``np.searchsorted``."""

    position: dict[int, int]
    labels: list[Labels]
    t: np.ndarray
    v: np.ndarray
    st: np.ndarray | None
    has_st: np.ndarray
    starts: np.ndarray
    keys: np.ndarray
    tmin: int
    tmax: int
    width: int

    @staticmethod
    def build(series: list[MemSeries]) -> _FlatIndex | None:
        lengths = np.array([len(s.timestamps) for s in series], dtype=np.int64)
        total = int(lengths.sum())
        if not total:
            return None
        t = np.concatenate([s.timestamps for s in series])
        tmin, tmax = int(t.min()), int(t.max())
        width = tmax - tmin + 3
        if width * len(series) >= 1 << 62:
            return None
        has_st = np.array([s.start_timestamps is not None for s in series], dtype=bool)
        st = None
        if has_st.any():
            zeros = np.zeros(int(lengths.max()), dtype=np.int64)
            st = np.concatenate(
                [
                    s.start_timestamps if s.start_timestamps is not None else zeros[: len(s.timestamps)]
                    for s in series
                ]
            )
        sid = np.repeat(np.arange(len(series), dtype=np.int64), lengths)
        return _FlatIndex(
            {id(s): i for i, s in enumerate(series)},
            [s.labels for s in series],
            t,
            np.concatenate([s.values for s in series]),
            st,
            has_st,
            np.concatenate(([0], np.cumsum(lengths))),
            (t - tmin + 1) + sid * width,
            tmin,
            tmax,
            width,
        )

    def select(self, members: list[MemSeries], mint: int, maxt: int) -> FlatSelection:
        """The samples of ``members`` in [mint, maxt]; series without any are left out."""
        idx = np.fromiter((self.position[id(s)] for s in members), dtype=np.int64, count=len(members))
        base = idx * self.width - self.tmin + 1
        a = np.searchsorted(self.keys, min(max(mint, self.tmin - 1), self.tmax + 1) + base, side="left")
        b = np.searchsorted(self.keys, min(max(maxt, self.tmin - 1), self.tmax + 1) + base, side="right")
        live = np.nonzero(b > a)[0]
        a, b = a[live], b[live]
        lengths = b - a
        offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        gather = np.repeat(a - offsets[:-1], lengths) + np.arange(int(offsets[-1]), dtype=np.int64)
        chosen = idx[live]
        with_st = self.st is not None and bool(self.has_st[chosen].any())
        return FlatSelection(
            [self.labels[i] for i in chosen.tolist()],
            self.t[gather],
            self.v[gather],
            offsets,
            self.st[gather] if with_st and self.st is not None else None,
        )


class _View(NamedTuple):
    """The flushed series: sorted by labels, by metric name and flattened."""

    ordered: list[MemSeries]
    by_name: dict[str, list[MemSeries]]
    flat: _FlatIndex | None


class _MemQuerier:
    def __init__(self, view: _View, mint: int, maxt: int) -> None:
        self._view = view
        self.mint = mint
        self.maxt = maxt

    def _matching(self, matchers: list[Matcher]) -> list[MemSeries]:
        candidates = self._view.ordered
        rest = matchers
        for i, m in enumerate(matchers):
            if m.name == "__name__" and m.type is MatchType.EQUAL:
                candidates = self._view.by_name.get(m.value, [])
                rest = matchers[:i] + matchers[i + 1 :]
                break
        if not rest:
            return list(candidates)
        return [s for s in candidates if series_matches(s.labels, rest)]

    def select_flat(self, matchers: list[Matcher]) -> FlatSelection | None:
        """:meth:`select` as one flattened selection (None when the index cannot be used)."""
        flat = self._view.flat
        if flat is None:
            return None
        return flat.select(self._matching(matchers), self.mint, self.maxt)

    def select(self, matchers: list[Matcher]) -> list[MemSeries]:
        out = []
        for s in self._matching(matchers):
            ts = s.timestamps
            a = int(np.searchsorted(ts, self.mint, side="left"))
            b = int(np.searchsorted(ts, self.maxt, side="right"))
            if b > a:
                sts = s.start_timestamps[a:b] if s.start_timestamps is not None else None
                out.append(MemSeries(s.labels, ts[a:b], s.values[a:b], sts))
        return out
