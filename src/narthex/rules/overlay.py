"""Committed storage plus the samples a group evaluation has produced but not committed yet.

A group evaluation commits once, at its end; while it runs, later rules query this overlay so that they
see the results of earlier rules exactly as if those had been committed already.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from narthex.model.labels import METRIC_NAME, Labels, metric_name
from narthex.model.matcher import Matcher, MatchType
from narthex.promql.storage import MemSeries, Querier, Queryable, SeriesLike, series_matches


class PendingOverlay:
    """A :class:`Queryable` over ``base`` and the pending samples added with :meth:`add`."""

    def __init__(self, base: Queryable) -> None:
        self.base = base
        self.pending: dict[Labels, list[tuple[int, float]]] = {}
        self.by_name: dict[str, list[Labels]] = {}

    def add(self, labels: Labels, t: int, v: float) -> None:
        samples = self.pending.get(labels)
        if samples is None:
            samples = self.pending[labels] = []
            self.by_name.setdefault(metric_name(labels), []).append(labels)
        samples.append((t, v))

    def candidates(self, matchers: list[Matcher]) -> list[Labels]:
        """Pending series that may match: those of the metric name when the matchers fix it."""
        for m in matchers:
            if m.name == METRIC_NAME and m.type is MatchType.EQUAL:
                return self.by_name.get(m.value, [])
        return list(self.pending)

    def querier(self, mint: int, maxt: int) -> Querier:
        return _OverlayQuerier(self, mint, maxt)


class _OverlayQuerier:
    def __init__(self, overlay: PendingOverlay, mint: int, maxt: int) -> None:
        self.overlay = overlay
        self.mint = mint
        self.maxt = maxt

    def select(self, matchers: list[Matcher]) -> Sequence[SeriesLike]:
        base = self.overlay.base.querier(self.mint, self.maxt).select(matchers)
        if not self.overlay.pending:
            return base
        merged: dict[Labels, SeriesLike] = {tuple(s.labels): s for s in base}
        for labels in self.overlay.candidates(matchers):
            samples = self.overlay.pending[labels]
            in_range = [(t, v) for t, v in samples if self.mint <= t <= self.maxt]
            if not in_range or not series_matches(labels, matchers):
                continue
            existing = merged.get(labels)
            merged[labels] = _append(labels, existing, in_range)
        return [merged[k] for k in sorted(merged)]


def _append(labels: Labels, existing: SeriesLike | None, samples: list[tuple[int, float]]) -> MemSeries:
    """The series with the pending samples after its last stored one (as an append would accept)."""
    if existing is None:
        ts = np.empty(0, dtype=np.int64)
        vs = np.empty(0, dtype=np.float64)
    else:
        ts = np.asarray(existing.timestamps, dtype=np.int64)
        vs = np.asarray(existing.values, dtype=np.float64)
    last = int(ts[-1]) if len(ts) else None
    new_t: list[int] = []
    new_v: list[float] = []
    for t, v in sorted(samples, key=lambda s: s[0]):
        if (last is None or t > last) and (not new_t or t > new_t[-1]):
            new_t.append(t)
            new_v.append(v)
    return MemSeries(
        labels,
        np.concatenate([ts, np.array(new_t, dtype=np.int64)]),
        np.concatenate([vs, np.array(new_v, dtype=np.float64)]),
    )
