"""Recording rules: the expression's result stored under a new metric name plus the rule's labels."""

from __future__ import annotations

from narthex.model.labels import METRIC_NAME
from narthex.rules.rule import QueryFunc, RuleBase, RuleSample, contains_duplicate_labelsets


class DuplicateRecordingLabelSetError(Exception):
    def __init__(self) -> None:
        super().__init__("vector contains metrics with the same labelset after applying rule labels")


class RecordingRule(RuleBase):
    kind = "recording"

    def eval(self, ts_ms: int, query_offset_ms: int, query: QueryFunc, limit: int) -> list[RuleSample]:
        """Evaluate at ``ts_ms - query_offset_ms``; raises on query errors, duplicates and the limit."""
        t = ts_ms - query_offset_ms
        out = []
        for labels, value in query(self.expr, t):
            merged = dict(labels)
            merged[METRIC_NAME] = self.name
            merged.update(self.labels)
            out.append(RuleSample(tuple(sorted((k, v) for k, v in merged.items() if v != "")), t, value))
        if contains_duplicate_labelsets(out):
            raise DuplicateRecordingLabelSetError()
        if limit > 0 and len(out) > limit:
            raise RuntimeError(f"exceeded limit of {limit} with {len(out)} series")
        return out
