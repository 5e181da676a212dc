"""The PromQL abstract syntax tree: frozen dataclasses, each with a position range and a ``type``.

Positions are excluded from equality, so two trees compare equal when they mean the same query.
Durations are integer milliseconds. Operators are their PromQL spelling (``"+"``, ``"and"``, ``"sum"``).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from narthex.model.matcher import Matcher
from narthex.promql.errors import PositionRange
from narthex.promql.functions import AT_MODIFIER_UNSAFE_FUNCTIONS, Function, ValueType

NO_POS = PositionRange(0, 0)

COMPARISON_OPS = frozenset({"==", "!=", "<=", "<", ">=", ">"})
SET_OPS = frozenset({"and", "or", "unless"})
AGGREGATORS_WITH_PARAM = frozenset({"topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio"})


class Expr:
    """Base class of all expression nodes."""

    __slots__ = ()
    pos: PositionRange

    @property
    def type(self) -> ValueType:
        raise NotImplementedError

    def __str__(self) -> str:
        from narthex.promql.printer import expr_string

        return expr_string(self)


@dataclass(frozen=True, slots=True, eq=False)
class NumberLiteral(Expr):
    """A float literal; ``duration`` marks one written as a duration (``5m`` is 300 seconds)."""

    val: float
    duration: bool = False
    pos: PositionRange = field(default=NO_POS, compare=False, repr=False)

    @property
    def type(self) -> ValueType:
        return ValueType.SCALAR

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NumberLiteral):
            return NotImplemented
        same = self.val == other.val or (math.isnan(self.val) and math.isnan(other.val))
        return same and self.duration == other.duration

    def __hash__(self) -> int:
        return hash(("num", 0.0 if math.isnan(self.val) else self.val, self.duration))


@dataclass(frozen=True, slots=True)
class StringLiteral(Expr):
    val: str
    pos: PositionRange = field(default=NO_POS, compare=False, repr=False)

    @property
    def type(self) -> ValueType:
        return ValueType.STRING


@dataclass(frozen=True, slots=True)
class DurationExpr(Expr):
    """Arithmetic on durations (experimental): ``op`` is + - * / % ^, step, range, min_of or max_of.

    Unary minus/plus has ``lhs`` None; ``wrapped`` records parentheses for printing.
    """

    op: str
    lhs: Expr | None = None
    rhs: Expr | None = None
    wrapped: bool = False
    pos: PositionRange = field(default=NO_POS, compare=False, repr=False)

    @property
    def type(self) -> ValueType:
        return ValueType.SCALAR


@dataclass(frozen=True, slots=True)
class VectorSelector(Expr):
    """``name{matchers}``; a name given outside the braces is also the last matcher, as upstream.

    ``offset_ms`` is the offset as written (``offset_expr`` when it is a duration expression);
    ``timestamp_ms`` is the ``@`` time and ``start_or_end`` is ``"start"``/``"end"`` for ``@ start()``.
    """

    name: str
    matchers: tuple[Matcher, ...]
    offset_ms: int = 0
    offset_expr: DurationExpr | None = None
    timestamp_ms: int | None = None
    start_or_end: str | None = None
    anchored: bool = False
    smoothed: bool = False
    bypass_empty_matcher_check: bool = field(default=False, compare=False, repr=False)
    pos: PositionRange = field(default=NO_POS, compare=False, repr=False)

    @property
    def type(self) -> ValueType:
        return ValueType.VECTOR


@dataclass(frozen=True, slots=True)
class MatrixSelector(Expr):
    """``selector[range]``; ``range_expr`` is set instead of ``range_ms`` for a duration expression."""

    vector_selector: Expr
    range_ms: int
    range_expr: DurationExpr | None = None
    pos: PositionRange = field(default=NO_POS, compare=False, repr=False)

    @property
    def type(self) -> ValueType:
        return ValueType.MATRIX


@dataclass(frozen=True, slots=True)
class SubqueryExpr(Expr):
    """``expr[range:step]`` with its own offset and ``@`` modifier; ``step_ms`` 0 means the default."""

    expr: Expr
    range_ms: int
    range_expr: DurationExpr | None = None
    step_ms: int = 0
    step_expr: DurationExpr | None = None
    offset_ms: int = 0
    offset_expr: DurationExpr | None = None
    timestamp_ms: int | None = None
    start_or_end: str | None = None
    pos: PositionRange = field(default=NO_POS, compare=False, repr=False)

    @property
    def type(self) -> ValueType:
        return ValueType.MATRIX


@dataclass(frozen=True, slots=True)
class Call(Expr):
    func: Function
    args: tuple[Expr, ...]
    pos: PositionRange = field(default=NO_POS, compare=False, repr=False)

    @property
    def type(self) -> ValueType:
        return self.func.return_type


@dataclass(frozen=True, slots=True)
class AggregateExpr(Expr):
    """``op by|without (grouping) ([param,] expr)``."""

    op: str
    expr: Expr
    param: Expr | None = None
    grouping: tuple[str, ...] = ()
    without: bool = False
    pos: PositionRange = field(default=NO_POS, compare=False, repr=False)

    @property
    def type(self) -> ValueType:
        return ValueType.VECTOR


class Cardinality(enum.StrEnum):
    ONE_TO_ONE = "one-to-one"
    MANY_TO_ONE = "many-to-one"
    ONE_TO_MANY = "one-to-many"
    MANY_TO_MANY = "many-to-many"


def _same_float(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


@dataclass(frozen=True, slots=True, eq=False)
class VectorMatching:
    """How the two sides of a vector/vector binary operation are matched.

    ``on`` with ``matching_labels`` is ``on(...)``, otherwise ``ignoring(...)``; ``include`` are the
    ``group_left``/``group_right`` labels; ``fill_lhs``/``fill_rhs`` are the fill modifier values.
    """

    card: Cardinality = Cardinality.ONE_TO_ONE
    matching_labels: tuple[str, ...] = ()
    on: bool = False
    include: tuple[str, ...] = ()
    fill_lhs: float | None = None
    fill_rhs: float | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VectorMatching):
            return NotImplemented
        return (
            (self.card, self.matching_labels, self.on, self.include)
            == (other.card, other.matching_labels, other.on, other.include)
            and _same_float(self.fill_lhs, other.fill_lhs)
            and _same_float(self.fill_rhs, other.fill_rhs)
        )

    def __hash__(self) -> int:
        return hash((self.card, self.matching_labels, self.on, self.include))


@dataclass(frozen=True, slots=True)
class BinaryExpr(Expr):
    """``lhs op [bool] [matching] rhs``; ``matching`` is None unless both sides are instant vectors."""

    op: str
    lhs: Expr
    rhs: Expr
    matching: VectorMatching | None = None
    return_bool: bool = False
    pos: PositionRange = field(default=NO_POS, compare=False, repr=False)

    @property
    def type(self) -> ValueType:
        if self.lhs.type is ValueType.SCALAR and self.rhs.type is ValueType.SCALAR:
            return ValueType.SCALAR
        return ValueType.VECTOR


@dataclass(frozen=True, slots=True)
class UnaryExpr(Expr):
    op: str
    expr: Expr
    pos: PositionRange = field(default=NO_POS, compare=False, repr=False)

    @property
    def type(self) -> ValueType:
        return self.expr.type


@dataclass(frozen=True, slots=True)
class ParenExpr(Expr):
    expr: Expr
    pos: PositionRange = field(default=NO_POS, compare=False, repr=False)

    @property
    def type(self) -> ValueType:
        return self.expr.type


@dataclass(frozen=True, slots=True)
class StepInvariantExpr(Expr):
    """Marks a subtree whose value is the same at every step (added by :func:`preprocess_expr`)."""

    expr: Expr

    @property
    def pos(self) -> PositionRange:  # type: ignore[override]
        return self.expr.pos

    @property
    def type(self) -> ValueType:
        return self.expr.type


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions (duration expressions of selectors are not children, as upstream)."""
    match node:
        case AggregateExpr(expr=e, param=p):
            return (e,) if p is None else (e, p)
        case BinaryExpr(lhs=lhs, rhs=rhs):
            return (lhs, rhs)
        case Call(args=args):
            return args
        case SubqueryExpr(expr=e) | ParenExpr(expr=e) | UnaryExpr(expr=e) | StepInvariantExpr(expr=e):
            return (e,)
        case MatrixSelector(vector_selector=vs):
            return (vs,)
    return ()


def walk(node: Expr, path: tuple[Expr, ...] = ()) -> Iterator[tuple[Expr, tuple[Expr, ...]]]:
    """Pre-order traversal yielding ``(node, ancestors)`` (iterative, so deep trees are fine)."""
    stack: list[tuple[Expr, tuple[Expr, ...]]] = [(node, path)]
    while stack:
        current, ancestors = stack.pop()
        yield current, ancestors
        sub = (*ancestors, current)
        stack.extend((child, sub) for child in reversed(children(current)))


def extract_selectors(expr: Expr) -> list[tuple[Matcher, ...]]:
    """The matchers of every vector selector in the expression."""
    return [n.matchers for n, _ in walk(expr) if isinstance(n, VectorSelector)]


# ---------------------------------------------------------------------------------------------
# Preprocessing (upstream's PreprocessExpr), done once per query before evaluation.


class PreprocessError(ValueError):
    """A duration expression that cannot be evaluated (division by zero, non-positive range...)."""


def _eval_duration(expr: Expr, step_ms: int, range_ms: int) -> float:
    if isinstance(expr, NumberLiteral):
        return expr.val
    if isinstance(expr, ParenExpr):
        return _eval_duration(expr.expr, step_ms, range_ms)
    if not isinstance(expr, DurationExpr):
        raise PreprocessError(f"unexpected duration expression type {type(expr).__name__}")
    lhs = _eval_duration(expr.lhs, step_ms, range_ms) if expr.lhs is not None else 0.0
    rhs = _eval_duration(expr.rhs, step_ms, range_ms) if expr.rhs is not None else 0.0
    where = f"{expr.pos.start}:{expr.pos.end}"
    match expr.op:
        case "step":
            return step_ms / 1000.0
        case "range":
            return range_ms / 1000.0
        case "min_of":
            return min(lhs, rhs)
        case "max_of":
            return max(lhs, rhs)
        case "+":
            return rhs if expr.lhs is None else lhs + rhs
        case "-":
            return -rhs if expr.lhs is None else lhs - rhs
        case "*":
            return lhs * rhs
        case "/":
            if rhs == 0:
                raise PreprocessError(f"{where}: division by zero")
            return lhs / rhs
        case "%":
            if rhs == 0:
                raise PreprocessError(f"{where}: modulo by zero")
            return math.fmod(lhs, rhs)
        case "^":
            try:
                return math.pow(lhs, rhs)
            except (OverflowError, ValueError):
                return math.inf if lhs > 0 else math.nan
    raise PreprocessError(f"unexpected duration expression operator {expr.op!r}")


def evaluate_duration(expr: Expr, *, step_ms: int, range_ms: int, allow_negative: bool) -> int:
    """A duration expression's value in milliseconds, checked as upstream's calculateDuration."""
    seconds = _eval_duration(expr, step_ms, range_ms)
    where = f"{expr.pos.start}:{expr.pos.end}"
    if math.isnan(seconds) or math.isinf(seconds):
        raise PreprocessError(f"{where}: duration is NaN or infinite")
    if seconds <= 0 and not allow_negative:
        raise PreprocessError(f"{where}: duration must be greater than 0")
    if seconds > (1 << 63) / 1e9 or seconds < -(1 << 63) / 1e9:
        raise PreprocessError(f"{where}: duration is out of range")
    return int(seconds * 1000)


def _fold_context_functions(expr: Expr, start_ms: int, end_ms: int, step_ms: int) -> Expr:
    """Replace start(), end(), range() and step() calls by their values."""
    if isinstance(expr, Call):
        value: float | None = None
        match expr.func.name:
            case "start":
                value = start_ms / 1000.0
            case "end":
                value = end_ms / 1000.0
            case "range":
                value = (end_ms - start_ms) / 1000.0
            case "step":
                value = step_ms / 1000.0 if start_ms != end_ms else 0.0
        if value is not None:
            return NumberLiteral(value, pos=expr.pos)
        args = tuple(_fold_context_functions(a, start_ms, end_ms, step_ms) for a in expr.args)
        return replace(expr, args=args)
    match expr:
        case BinaryExpr():
            return replace(
                expr,
                lhs=_fold_context_functions(expr.lhs, start_ms, end_ms, step_ms),
                rhs=_fold_context_functions(expr.rhs, start_ms, end_ms, step_ms),
            )
        case AggregateExpr():
            param = expr.param
            if param is not None:
                param = _fold_context_functions(param, start_ms, end_ms, step_ms)
            return replace(
                expr, expr=_fold_context_functions(expr.expr, start_ms, end_ms, step_ms), param=param
            )
        case UnaryExpr() | ParenExpr() | SubqueryExpr():
            return replace(expr, expr=_fold_context_functions(expr.expr, start_ms, end_ms, step_ms))
    return expr


def _resolve_durations(expr: Expr, step_ms: int, range_ms: int) -> Expr:
    """Evaluate every offset/range/step duration expression into milliseconds."""

    def dur(e: Expr, negative: bool) -> int:
        return evaluate_duration(e, step_ms=step_ms, range_ms=range_ms, allow_negative=negative)

    match expr:
        case VectorSelector(offset_expr=oe) if oe is not None:
            return replace(expr, offset_ms=dur(oe, True))
        case MatrixSelector():
            vs = _resolve_durations(expr.vector_selector, step_ms, range_ms)
            rng = dur(expr.range_expr, False) if expr.range_expr is not None else expr.range_ms
            return replace(expr, vector_selector=vs, range_ms=rng)
        case SubqueryExpr():
            return replace(
                expr,
                expr=_resolve_durations(expr.expr, step_ms, range_ms),
                offset_ms=dur(expr.offset_expr, True) if expr.offset_expr is not None else expr.offset_ms,
                step_ms=dur(expr.step_expr, False) if expr.step_expr is not None else expr.step_ms,
                range_ms=dur(expr.range_expr, False) if expr.range_expr is not None else expr.range_ms,
            )
        case BinaryExpr():
            return replace(
                expr,
                lhs=_resolve_durations(expr.lhs, step_ms, range_ms),
                rhs=_resolve_durations(expr.rhs, step_ms, range_ms),
            )
        case Call():
            return replace(expr, args=tuple(_resolve_durations(a, step_ms, range_ms) for a in expr.args))
        case AggregateExpr():
            param = expr.param
            if param is not None:
                param = _resolve_durations(param, step_ms, range_ms)
            return replace(expr, expr=_resolve_durations(expr.expr, step_ms, range_ms), param=param)
        case UnaryExpr() | ParenExpr() | StepInvariantExpr():
            return replace(expr, expr=_resolve_durations(expr.expr, step_ms, range_ms))
    return expr


def _unwrap_parens(expr: Expr) -> Expr:
    while isinstance(expr, ParenExpr):
        expr = expr.expr
    return expr


def _step_invariant(expr: Expr, start_ms: int, end_ms: int) -> tuple[Expr, bool, bool]:
    """Returns (new expr, is step invariant, should be wrapped) as upstream's preprocessExprHelper."""
    match expr:
        case VectorSelector():
            if expr.start_or_end is not None:
                expr = replace(expr, timestamp_ms=start_ms if expr.start_or_end == "start" else end_ms)
            return expr, expr.timestamp_ms is not None, expr.timestamp_ms is not None
        case AggregateExpr():
            param = _unwrap_parens(expr.param) if expr.param is not None else None
            inner, inv, wrap = _step_invariant(_unwrap_parens(expr.expr), start_ms, end_ms)
            return replace(expr, expr=inner, param=param), inv, wrap
        case BinaryExpr():
            lhs, inv_l, wrap_l = _step_invariant(expr.lhs, start_ms, end_ms)
            rhs, inv_r, wrap_r = _step_invariant(expr.rhs, start_ms, end_ms)
            if inv_l and inv_r:
                return replace(expr, lhs=lhs, rhs=rhs), True, True
            lhs = StepInvariantExpr(lhs) if wrap_l else lhs
            rhs = StepInvariantExpr(rhs) if wrap_r else rhs
            return replace(expr, lhs=lhs, rhs=rhs), False, False
        case Call():
            invariant = expr.func.name not in AT_MODIFIER_UNSAFE_FUNCTIONS
            timestamp_safe = expr.func.name == "timestamp"
            args: list[Expr] = []
            wraps: list[bool] = []
            for arg in expr.args:
                new_arg, arg_inv, arg_wrap = _step_invariant(_unwrap_parens(arg), start_ms, end_ms)
                args.append(new_arg)
                wraps.append(arg_wrap)
                invariant = invariant and arg_inv
                if not arg_inv or not isinstance(new_arg, VectorSelector):
                    timestamp_safe = False
            if invariant or timestamp_safe:
                return replace(expr, args=tuple(args)), True, True
            wrapped = tuple(StepInvariantExpr(a) if w else a for a, w in zip(args, wraps, strict=True))
            return replace(expr, args=wrapped), False, False
        case MatrixSelector():
            vs, inv, _ = _step_invariant(expr.vector_selector, start_ms, end_ms)
            return replace(expr, vector_selector=vs), inv, False
        case SubqueryExpr():
            inner, inv, _ = _step_invariant(expr.expr, start_ms, end_ms)
            if inv:
                inner = StepInvariantExpr(inner)
            ts = expr.timestamp_ms
            if expr.start_or_end is not None:
                ts = start_ms if expr.start_or_end == "start" else end_ms
            return replace(expr, expr=inner, timestamp_ms=ts), ts is not None, False
        case ParenExpr() | UnaryExpr():
            inner, inv, wrap = _step_invariant(expr.expr, start_ms, end_ms)
            return replace(expr, expr=inner), inv, wrap
        case StringLiteral() | NumberLiteral():
            return expr, True, False
    return expr, False, False


def preprocess_expr(expr: Expr, start_ms: int, end_ms: int, step_ms: int) -> Expr:
    """Prepare a parsed query for evaluation over ``[start, end]`` with ``step``, as upstream does.

    Folds start()/end()/range()/step() calls, evaluates duration expressions (raising
    :class:`PreprocessError`), resolves ``@ start()``/``@ end()`` into timestamps, drops redundant
    parentheses around function and aggregation arguments and wraps step-invariant subtrees in
    :class:`StepInvariantExpr`.
    """
    expr = _fold_context_functions(expr, start_ms, end_ms, step_ms)
    expr = _resolve_durations(expr, step_ms, end_ms - start_ms)
    expr, _, wrap = _step_invariant(expr, start_ms, end_ms)
    return StepInvariantExpr(expr) if wrap else expr
