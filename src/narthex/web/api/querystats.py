"""Query statistics (``stats=true|all``): timings measured around the engine, samples counted at storage.

The engine does not report per-step or peak sample counts; ``totalQueryableSamples`` and ``samplesRead``
are the samples loaded from storage and ``peakSamples`` is the size of the result.
"""

from __future__ import annotations

from typing import Any

from narthex.promql.value import Matrix, Vector


class CountingStorage:
    """Wraps the TSDB to count the samples a query loads (for ``stats``)."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.samples = 0

    def querier(self, mint: int, maxt: int) -> CountingQuerier:
        return CountingQuerier(self, self._db.querier(mint, maxt))


class CountingQuerier:
    def __init__(self, owner: CountingStorage, inner: Any) -> None:
        self._owner = owner
        self._inner = inner

    def select(self, matchers: list[Any]) -> list[Any]:
        series = self._inner.select(matchers)
        self._owner.samples += sum(len(s.timestamps) for s in series)
        return series


def render_stats(timings: dict[str, float], loaded: int, peak: int) -> dict[str, Any]:
    """The ``stats`` object of a query response (Prometheus's ``BuiltinStats`` layout)."""
    return {
        "timings": {
            "evalTotalTime": timings["eval"],
            "resultSortTime": 0.0,
            "queryPreparationTime": timings["prepare"],
            "innerEvalTime": timings["eval"],
            "execQueueTime": timings["queue"],
            "execTotalTime": timings["total"],
        },
        "samples": {"totalQueryableSamples": loaded, "samplesRead": loaded, "peakSamples": peak},
    }


def result_samples(value: Any) -> int:
    """Samples in a result (the peak the engine does not report is approximated by this)."""
    if isinstance(value, Matrix):
        return sum(len(s.timestamps) for s in value.series)
    if isinstance(value, Vector):
        return len(value.samples)
    return 1
