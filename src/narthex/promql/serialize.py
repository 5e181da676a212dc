"""The JSON tree ``/api/v1/parse_query`` returns (upstream's ``translateAST`` in web/api/v1).

Maps are built with sorted keys, matching Go's encoding/json output order.
"""

from __future__ import annotations

from typing import Any

from narthex.model.matcher import Matcher
from narthex.promql.ast import (
    AggregateExpr,
    BinaryExpr,
    Call,
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
from narthex.promql.printer import format_float


def _sorted(mapping: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(mapping.items()))


def _matchers(matchers: tuple[Matcher, ...]) -> list[dict[str, str]]:
    return [_sorted({"name": m.name, "value": m.value, "type": m.type.value}) for m in matchers]


def translate_duration(node: Expr | None) -> Any:
    """A range, step or offset duration expression (None when absent)."""
    if node is None:
        return None
    if isinstance(node, DurationExpr):
        return _sorted(
            {
                "type": "durationExpr",
                "op": node.op,
                "lhs": translate_duration(node.lhs),
                "rhs": translate_duration(node.rhs),
                "wrapped": node.wrapped,
            }
        )
    if isinstance(node, NumberLiteral):
        return _sorted({"type": "numberLiteral", "val": format_float(node.val), "duration": node.duration})
    return translate_ast(node)


def translate_ast(node: Expr | None) -> Any:
    """The JSON-ready tree of an expression."""
    match node:
        case None:
            return None
        case AggregateExpr():
            out: dict[str, Any] = {
                "type": "aggregation",
                "op": node.op,
                "expr": translate_ast(node.expr),
                "param": translate_ast(node.param),
                "grouping": list(node.grouping),
                "without": node.without,
            }
        case BinaryExpr():
            matching = None
            if (vm := node.matching) is not None:
                matching = _sorted(
                    {
                        "card": vm.card.value,
                        "labels": list(vm.matching_labels),
                        "on": vm.on,
                        "include": list(vm.include),
                        "fillValues": {"lhs": vm.fill_lhs, "rhs": vm.fill_rhs},
                    }
                )
            out = {
                "type": "binaryExpr",
                "op": node.op,
                "lhs": translate_ast(node.lhs),
                "rhs": translate_ast(node.rhs),
                "matching": matching,
                "bool": node.return_bool,
            }
        case Call():
            func = node.func
            out = {
                "type": "call",
                "func": _sorted(
                    {
                        "name": func.name,
                        "argTypes": [t.value for t in func.arg_types],
                        "variadic": func.variadic,
                        "returnType": func.return_type.value,
                    }
                ),
                "args": [translate_ast(a) for a in node.args],
            }
        case MatrixSelector():
            vs = node.vector_selector
            assert isinstance(vs, VectorSelector)
            out = {
                "type": "matrixSelector",
                "name": vs.name,
                "range": node.range_ms,
                "rangeExpr": translate_duration(node.range_expr),
                "offset": vs.offset_ms,
                "offsetExpr": translate_duration(vs.offset_expr),
                "matchers": _matchers(vs.matchers),
                "timestamp": vs.timestamp_ms,
                "startOrEnd": vs.start_or_end,
                "anchored": vs.anchored,
                "smoothed": vs.smoothed,
            }
        case SubqueryExpr():
            out = {
                "type": "subquery",
                "expr": translate_ast(node.expr),
                "range": node.range_ms,
                "rangeExpr": translate_duration(node.range_expr),
                "offset": node.offset_ms,
                "offsetExpr": translate_duration(node.offset_expr),
                "step": node.step_ms,
                "stepExpr": translate_duration(node.step_expr),
                "timestamp": node.timestamp_ms,
                "startOrEnd": node.start_or_end,
            }
        case DurationExpr():
            return translate_duration(node)
        case NumberLiteral():
            out = {"type": "numberLiteral", "val": format_float(node.val)}
        case ParenExpr():
            out = {"type": "parenExpr", "expr": translate_ast(node.expr)}
        case StringLiteral():
            out = {"type": "stringLiteral", "val": node.val}
        case UnaryExpr():
            out = {"type": "unaryExpr", "op": node.op, "expr": translate_ast(node.expr)}
        case VectorSelector():
            out = {
                "type": "vectorSelector",
                "name": node.name,
                "offset": node.offset_ms,
                "offsetExpr": translate_duration(node.offset_expr),
                "matchers": _matchers(node.matchers),
                "timestamp": node.timestamp_ms,
                "startOrEnd": node.start_or_end,
                "anchored": node.anchored,
                "smoothed": node.smoothed,
            }
        case StepInvariantExpr():
            return translate_ast(node.expr)
        case _:
            raise TypeError(f"unsupported node type {type(node).__name__}")
    return _sorted(out)
