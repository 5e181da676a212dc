"""The pending-samples overlay later rules of a group evaluation query."""

from __future__ import annotations

from narthex.model.matcher import Matcher, MatchType
from narthex.promql.storage import MemoryStorage
from narthex.rules.overlay import PendingOverlay

A = (("__name__", "a"), ("job", "x"))
B = (("__name__", "b"), ("job", "x"))


def _select(overlay, name=None, mint=0, maxt=10_000):
    matchers = (
        [Matcher(MatchType.EQUAL, "__name__", name)] if name else [Matcher(MatchType.EQUAL, "job", "x")]
    )
    return {
        s.labels: list(zip(s.timestamps.tolist(), s.values.tolist(), strict=True))
        for s in overlay.querier(mint, maxt).select(matchers)
    }


def test_pending_samples_extend_stored_series():
    base = MemoryStorage()
    base.add(A, 1000, 1.0)
    overlay = PendingOverlay(base)
    overlay.add(A, 2000, 2.0)
    overlay.add(A, 500, 9.0)  # older than the stored sample: an append would reject it
    overlay.add(B, 2000, 3.0)
    assert _select(overlay, "a") == {A: [(1000, 1.0), (2000, 2.0)]}
    assert _select(overlay) == {A: [(1000, 1.0), (2000, 2.0)], B: [(2000, 3.0)]}
    assert _select(overlay, "b", mint=3000) == {}


def test_without_pending_samples_the_base_answers():
    base = MemoryStorage()
    base.add(A, 1000, 1.0)
    assert _select(PendingOverlay(base), "a") == {A: [(1000, 1.0)]}
