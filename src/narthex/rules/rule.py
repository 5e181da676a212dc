"""What recording and alerting rules share: the query function, health and evaluation bookkeeping."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from narthex.model.labels import Labels
from narthex.promql.ast import Expr
from narthex.promql.engine import Engine
from narthex.promql.printer import expr_string
from narthex.promql.storage import Queryable
from narthex.promql.value import Scalar, Vector

HEALTH_UNKNOWN = "unknown"
HEALTH_GOOD = "ok"
HEALTH_BAD = "err"


@dataclass(slots=True)
class RuleSample:
    """One output sample of a rule evaluation."""

    labels: Labels
    t: int
    v: float


QueryResult = list[tuple[Labels, float]]
QueryFunc = Callable[[Expr | str, int], QueryResult]


class RuleResultTypeError(Exception):
    def __init__(self) -> None:
        super().__init__("rule result is not a vector or scalar")


def engine_query_func(engine: Engine, storage: Queryable) -> QueryFunc:
    """An instant query at ``t`` (ms) returning (labels, value) pairs; a scalar becomes one sample."""

    def query(expr: Expr | str, t: int) -> QueryResult:
        value = engine.instant_query(storage, expr, t).value
        if isinstance(value, Vector):
            return [(s.labels, s.value) for s in value.samples]
        if isinstance(value, Scalar):
            return [((), value.value)]
        raise RuleResultTypeError()

    return query


def merge_labels(*maps: dict[str, str]) -> dict[str, str]:
    """Later maps override earlier ones (group labels, then rule labels)."""
    out: dict[str, str] = {}
    for m in maps:
        out.update(m)
    return out


def contains_duplicate_labelsets(samples: list[RuleSample]) -> bool:
    seen: set[Labels] = set()
    for s in samples:
        if s.labels in seen:
            return True
        seen.add(s.labels)
    return False


class RuleBase:
    """Health and timing of a rule's last evaluation."""

    kind = ""

    def __init__(self, name: str, expr: Expr, labels: dict[str, str]) -> None:
        self.name = name
        self.expr = expr
        self.query = expr_string(expr)
        self.labels = dict(labels)
        self.health = HEALTH_UNKNOWN
        self.last_error: str = ""
        self.evaluation_duration_s = 0.0
        self.evaluation_timestamp_s = 0.0

    def set_error(self, error: str) -> None:
        self.health = HEALTH_BAD if error else HEALTH_GOOD
        self.last_error = error

    def labels_key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Name and labels: how a reloaded rule finds its previous incarnation."""
        return self.name, tuple(sorted(self.labels.items()))


def is_nan(value: float) -> bool:
    return math.isnan(value)
