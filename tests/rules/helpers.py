"""Shared helpers of the rule tests: a scripted query function and groups over memory storage."""

from __future__ import annotations

from narthex.model.labels import Labels
from narthex.promql.parser import parse_expr
from narthex.rules.alerting import AlertingRule
from narthex.rules.appendable import MemoryRuleStorage
from narthex.rules.group import Group, GroupOptions
from narthex.rules.metrics import RuleMetrics
from narthex.rules.recording import RecordingRule


class ScriptedQuery:
    """Answers every query with what ``results`` holds for the queried time (default: nothing)."""

    def __init__(self) -> None:
        self.results: dict[int, list[tuple[Labels, float]]] = {}
        self.calls: list[tuple[str, int]] = []

    def set(self, t: int, *samples: tuple[dict[str, str], float]) -> None:
        self.results[t] = [(tuple(sorted(lbls.items())), v) for lbls, v in samples]

    def __call__(self, expr, t: int):
        self.calls.append((str(expr), t))
        return list(self.results.get(t, []))


def alerting_rule(
    name: str = "A",
    hold_ms: int = 0,
    keep_ms: int = 0,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    expr: str = "up == 0",
    restored: bool = True,
) -> AlertingRule:
    return AlertingRule(
        name, parse_expr(expr), hold_ms, keep_ms, labels or {}, annotations or {}, {}, "http://ext", restored
    )


def recording_rule(name: str, expr: str, labels: dict[str, str] | None = None) -> RecordingRule:
    return RecordingRule(name, parse_expr(expr), labels or {})


def make_group(rules, query, storage=None, notify=None, interval_ms=60_000, **kw) -> Group:
    storage = storage or MemoryRuleStorage()
    opts = GroupOptions(storage=storage, query_func=query, metrics=RuleMetrics(), notify=notify, **kw)
    return Group("g", "rules.yml", interval_ms, rules, opts)


def series(storage: MemoryRuleStorage, name: str) -> dict[Labels, list[tuple[int, float]]]:
    """Samples of every stored series with that metric name."""
    from narthex.model.matcher import Matcher, MatchType

    out = {}
    for s in storage.querier(-(2**62), 2**62).select([Matcher(MatchType.EQUAL, "__name__", name)]):
        out[s.labels] = list(zip(s.timestamps.tolist(), s.values.tolist(), strict=True))
    return out
