"""PromQL printing: :func:`expr_string` is upstream's ``String()``, :func:`format_expr` its ``Prettify``.

``format_expr`` is what ``/api/v1/format_query`` returns: the one-line form when it fits in 100
characters, otherwise split over indented lines node by node.
"""

from __future__ import annotations

import math

from narthex.model.duration import format_duration
from narthex.model.labels import METRIC_NAME, is_valid_legacy_label_name
from narthex.model.matcher import Matcher, MatchType
from narthex.promql.ast import (
    AGGREGATORS_WITH_PARAM,
    AggregateExpr,
    BinaryExpr,
    Call,
    Cardinality,
    DurationExpr,
    Expr,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StepInvariantExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorSelector,
)
from narthex.promql.errors import utf8_len
from narthex.promql.lexer import go_quote
from narthex.util.gofmt import format_float as go_format_float

MAX_CHARACTERS_PER_LINE = 100
_INDENT = "  "

# ---------------------------------------------------------------------------------------------
# Go number formatting.


def format_float(value: float) -> str:
    """``strconv.FormatFloat(v, 'f', -1, 64)``: shortest digits, never an exponent."""
    return go_format_float(value, "f")


def format_float_g(value: float) -> str:
    """Go's ``%v``/``%g`` for a float64: shortest digits, exponent form below 1e-4 or from 1e6 up."""
    return go_format_float(value, "g")


def _duration_ms_from_seconds(seconds: float) -> int:
    """``model.Duration(seconds * 1e9)`` in milliseconds (float to int64 truncation)."""
    if not math.isfinite(seconds):
        return 0
    return int(int(seconds * 1e9) / 1_000_000) if abs(seconds) < 9e6 else int(seconds * 1000)


# ---------------------------------------------------------------------------------------------
# String().


def _label_list(labels: tuple[str, ...]) -> str:
    return ", ".join(name if is_valid_legacy_label_name(name) else go_quote(name) for name in labels)


def _should_quote_name(name: str) -> bool:
    if name == "":
        return True
    for i, ch in enumerate(name):
        if ch == "_" or "a" <= ch <= "z" or "A" <= ch <= "Z" or (i > 0 and "0" <= ch <= "9"):
            continue
        return True
    return False


def matcher_string(matcher: Matcher) -> str:
    """A matcher as Prometheus prints it: ``name="value"`` with Go quoting."""
    name = go_quote(matcher.name) if _should_quote_name(matcher.name) else matcher.name
    return f"{name}{matcher.type.value}{go_quote(matcher.value)}"


def _at_string(timestamp_ms: int | None, start_or_end: str | None) -> str:
    if timestamp_ms is not None:
        return f" @ {timestamp_ms / 1000.0:.3f}"
    if start_or_end is not None:
        return f" @ {start_or_end}()"
    return ""


def _offset_string(offset_ms: int, offset_expr: DurationExpr | None) -> str:
    if offset_expr is not None:
        return " offset " + expr_string(offset_expr)
    if offset_ms > 0:
        return " offset " + format_duration(offset_ms)
    if offset_ms < 0:
        return " offset -" + format_duration(-offset_ms)
    return ""


def _selector_body(node: VectorSelector) -> str:
    labels = sorted(
        matcher_string(m)
        for m in node.matchers
        if not (
            m.name == METRIC_NAME and m.type is MatchType.EQUAL and m.value == node.name and m.value != ""
        )
    )
    return node.name + ("{" + ",".join(labels) + "}" if labels else "")


def _vector_selector_string(node: VectorSelector) -> str:
    text = _selector_body(node) + _at_string(node.timestamp_ms, node.start_or_end)
    if node.anchored:
        text += " anchored"
    elif node.smoothed:
        text += " smoothed"
    return text + _offset_string(node.offset_ms, node.offset_expr)


def _range_string(range_ms: int, range_expr: DurationExpr | None) -> str:
    return expr_string(range_expr) if range_expr is not None else format_duration(range_ms)


def _matrix_string(node: MatrixSelector) -> str:
    vs = node.vector_selector
    rng = _range_string(node.range_ms, node.range_expr)
    if not isinstance(vs, VectorSelector):
        return f"{expr_string(vs)}[{rng}]"
    extended = " anchored" if vs.anchored else " smoothed" if vs.smoothed else ""
    at = _at_string(vs.timestamp_ms, vs.start_or_end)
    return f"{_selector_body(vs)}[{rng}]{extended}{at}{_offset_string(vs.offset_ms, vs.offset_expr)}"


def subquery_suffix(node: SubqueryExpr) -> str:
    """``[range:step] @ t offset o`` of a subquery."""
    step = ""
    if node.step_ms != 0:
        step = format_duration(node.step_ms)
    elif node.step_expr is not None:
        step = expr_string(node.step_expr)
    rng = _range_string(node.range_ms, node.range_expr)
    at = _at_string(node.timestamp_ms, node.start_or_end)
    return f"[{rng}:{step}]{at}{_offset_string(node.offset_ms, node.offset_expr)}"


def _aggregation_head(node: AggregateExpr) -> str:
    if node.without:
        return f"{node.op} without ({_label_list(node.grouping)}) "
    if node.grouping:
        return f"{node.op} by ({_label_list(node.grouping)}) "
    return node.op


def _matching_string(node: BinaryExpr) -> str:
    vm = node.matching
    if vm is None:
        return ""
    text = ""
    grouped = vm.card in (Cardinality.MANY_TO_ONE, Cardinality.ONE_TO_MANY)
    if vm.matching_labels or vm.on or grouped:
        text = f" {'on' if vm.on else 'ignoring'} ({_label_list(vm.matching_labels)})"
    if grouped:
        side = "left" if vm.card is Cardinality.MANY_TO_ONE else "right"
        text += f" group_{side} ({_label_list(vm.include)})"
    if vm.fill_lhs is not None and vm.fill_rhs is not None and vm.fill_lhs == vm.fill_rhs:
        text += f" fill ({format_float_g(vm.fill_lhs)})"
    else:
        if vm.fill_lhs is not None:
            text += f" fill_left ({format_float_g(vm.fill_lhs)})"
        if vm.fill_rhs is not None:
            text += f" fill_right ({format_float_g(vm.fill_rhs)})"
    return text


def _binary_head(node: BinaryExpr) -> str:
    return node.op + (" bool" if node.return_bool else "") + _matching_string(node)


def _number_string(node: NumberLiteral) -> str:
    if node.duration:
        if node.val < 0:
            return "-" + format_duration(_duration_ms_from_seconds(-node.val))
        return format_duration(_duration_ms_from_seconds(node.val))
    return format_float(node.val)


def _duration_expr_string(node: DurationExpr) -> str:
    if node.op in ("step", "range"):
        text = node.op + "()"
    elif node.op in ("min_of", "max_of"):
        assert node.lhs is not None and node.rhs is not None
        text = f"{node.op}({expr_string(node.lhs)}, {expr_string(node.rhs)})"
    elif node.lhs is None:
        assert node.rhs is not None
        text = ("-" if node.op == "-" else "") + expr_string(node.rhs)
    else:
        assert node.rhs is not None
        text = f"{expr_string(node.lhs)} {node.op} {expr_string(node.rhs)}"
    return f"({text})" if node.wrapped else text


def expr_string(node: Expr) -> str:
    """The canonical one-line PromQL text of an expression (upstream's ``String()``)."""
    match node:
        case NumberLiteral():
            return _number_string(node)
        case StringLiteral():
            return go_quote(node.val)
        case VectorSelector():
            return _vector_selector_string(node)
        case MatrixSelector():
            return _matrix_string(node)
        case SubqueryExpr():
            return expr_string(node.expr) + subquery_suffix(node)
        case Call():
            return node.func.name + "(" + ", ".join(expr_string(a) for a in node.args) + ")"
        case AggregateExpr():
            param = expr_string(node.param) + ", " if node.op in AGGREGATORS_WITH_PARAM and node.param else ""
            return f"{_aggregation_head(node)}({param}{expr_string(node.expr)})"
        case BinaryExpr():
            return f"{expr_string(node.lhs)} {_binary_head(node)} {expr_string(node.rhs)}"
        case UnaryExpr():
            return node.op + expr_string(node.expr)
        case ParenExpr():
            return "(" + expr_string(node.expr) + ")"
        case StepInvariantExpr():
            return expr_string(node.expr)
        case DurationExpr():
            return _duration_expr_string(node)
    raise TypeError(f"cannot print {type(node).__name__}")


# ---------------------------------------------------------------------------------------------
# Prettify.


def _needs_split(node: Expr, width: int) -> bool:
    return utf8_len(expr_string(node)) > width


def _pretty(node: Expr, level: int, width: int) -> str:
    pad = _INDENT * level
    match node:
        case AggregateExpr():
            if not _needs_split(node, width):
                return pad + expr_string(node)
            text = pad + _aggregation_head(node) + "(\n"
            if node.op in AGGREGATORS_WITH_PARAM and node.param is not None:
                text += _pretty(node.param, level + 1, width) + ",\n"
            return text + _pretty(node.expr, level + 1, width) + "\n" + pad + ")"
        case BinaryExpr():
            if not _needs_split(node, width):
                return pad + expr_string(node)
            lhs, rhs = _pretty(node.lhs, level + 1, width), _pretty(node.rhs, level + 1, width)
            return f"{lhs}\n{pad}{_binary_head(node)}\n{rhs}"
        case Call():
            if not _needs_split(node, width):
                return pad + expr_string(node)
            args = ",\n".join(_pretty(a, level + 1, width) for a in node.args)
            return f"{pad}{node.func.name}(\n{args}\n{pad})"
        case ParenExpr():
            if not _needs_split(node, width):
                return pad + expr_string(node)
            return f"{pad}(\n{_pretty(node.expr, level + 1, width)}\n{pad})"
        case StepInvariantExpr():
            return _pretty(node.expr, level, width)
        case SubqueryExpr():
            if not _needs_split(node, width):
                return expr_string(node)
            return _pretty(node.expr, level, width) + subquery_suffix(node)
        case UnaryExpr():
            return pad + node.op + _pretty(node.expr, level, width).strip()
        case DurationExpr():
            return expr_string(node)
    return pad + expr_string(node)


def format_expr(node: Expr, *, max_width: int = MAX_CHARACTERS_PER_LINE) -> str:
    """The prettified query (upstream's ``Prettify``), as ``/api/v1/format_query`` returns it."""
    return _pretty(node, 0, max_width)
