"""Tests of PromQL printing (String/Prettify) and of the parse_query JSON tree."""

from __future__ import annotations

import json
import math
from dataclasses import fields, is_dataclass, replace
from typing import Any

import pytest

from narthex.promql.ast import DurationExpr, Expr, VectorSelector
from narthex.promql.parser import ALL_FEATURES, parse_expr
from narthex.promql.printer import expr_string, format_expr, format_float, format_float_g
from narthex.promql.serialize import translate_ast

from .test_parser import AST_CASES
from .test_parser_shared import SHARED_QUERIES
from .test_parser_upstream import UPSTREAM_VALID

ALL = ALL_FEATURES


def normalize(node: Any) -> Any:
    """The tree with every selector's matchers in a canonical order (printing sorts them) and unary plus
    on duration expressions dropped (printing omits it)."""
    if isinstance(node, DurationExpr) and node.op == "+" and node.lhs is None and not node.wrapped:
        return normalize(node.rhs)
    if isinstance(node, VectorSelector):
        node = replace(node, matchers=tuple(sorted(node.matchers, key=str)))
    if isinstance(node, Expr) and is_dataclass(node):
        changes = {}
        for f in fields(node):
            value = getattr(node, f.name)
            if isinstance(value, Expr):
                changes[f.name] = normalize(value)
            elif isinstance(value, tuple) and value and isinstance(value[0], Expr):
                changes[f.name] = tuple(normalize(v) for v in value)
        return replace(node, **changes)
    return node


def round_trip(query: str) -> None:
    expr = parse_expr(query, features=ALL)
    text = expr_string(expr)
    again = parse_expr(text, features=ALL)
    assert normalize(again) == normalize(expr), (query, text)
    assert expr_string(again) == text
    pretty = format_expr(expr)
    assert normalize(parse_expr(pretty, features=ALL)) == normalize(expr), (query, pretty)


@pytest.mark.parametrize("query", [c[0] for c in AST_CASES])
def test_round_trip_own_cases(query: str) -> None:
    round_trip(query)


def test_round_trip_upstream_cases() -> None:
    for query in UPSTREAM_VALID:
        round_trip(query)


def test_round_trip_shared_queries() -> None:
    if not SHARED_QUERIES:
        pytest.skip("shared PromQL scripts not found (set NARTHEX_SHARED)")
    for _, query, _ in SHARED_QUERIES:
        round_trip(query)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sum by(a) (x)", "sum by (a) (x)"),
        ("sum(x) by (a)", "sum by (a) (x)"),
        ("sum without(a) (x)", "sum without (a) (x)"),
        ("x{b='2', a=\"1\"}", 'x{a="1",b="2"}'),
        ('{"my.metric", "a.b"="c"}', '{"a.b"="c",__name__="my.metric"}'),
        ('x{a="\\u00e9\\x01\\n"}', 'x{a="é\\x01\\n"}'),
        ("x @ 1609746000.5", "x @ 1609746000.500"),
        ("x[90s]", "x[1m30s]"),
        ("x[1h30m]", "x[1h30m]"),
        ("x[7d]", "x[1w]"),
        ("x[8d]", "x[8d]"),
        ("x offset -1h", "x offset -1h"),
        ("x offset 0", "x"),
        ("1e21", "1000000000000000000000"),
        ("0.000001", "0.000001"),
        ("-0", "-0"),
        ("0x10", "16"),
        ("-5m", "-5m"),
        ("- - 1", "1"),
        ("-(1)", "-(1)"),
        ("a + fill(1e6) b", "a + fill (1e+06) b"),
        ("a + fill(NaN) b", "a + fill_left (NaN) fill_right (NaN) b"),
        ("a > bool on() b", "a > bool on () b"),
        ("a and b", "a and b"),
        ("a - ignoring() group_right(x) b", "a - ignoring () group_right (x) b"),
        ('sum by ("a b", c) (x)', 'sum by ("a b", c) (x)'),
        ("x[5m:]", "x[5m:]"),
        ("x[5m:1m] @ end() offset 1m", "x[5m:1m] @ end() offset 1m"),
        ("x[1m+1m:step()*2] offset -(1m)", "x[1m + 1m:step() * 2] offset -(1m)"),
        ("foo offset +min_of(10s, 20s)", "foo offset min_of(10s, 20s)"),
        ('"a\\tb"', '"a\\tb"'),
        ('`a"b`', '"a\\"b"'),
        ("x smoothed @ 5", "x @ 5.000 smoothed"),
    ],
)
def test_string(query: str, expected: str) -> None:
    assert expr_string(parse_expr(query, features=ALL)) == expected


def test_str_of_nodes_is_promql() -> None:
    assert str(parse_expr("rate(x[5m])")) == "rate(x[5m])"


@pytest.mark.parametrize(
    ("value", "f_text", "g_text"),
    [
        (1.0, "1", "1"),
        (-23.0, "-23", "-23"),
        (0.5, "0.5", "0.5"),
        (123456.0, "123456", "123456"),
        (1e6, "1000000", "1e+06"),
        (1234567.0, "1234567", "1.234567e+06"),
        (0.0001, "0.0001", "0.0001"),
        (0.00001, "0.00001", "1e-05"),
        (1e100, "1" + "0" * 100, "1e+100"),
        (math.inf, "+Inf", "+Inf"),
        (-math.inf, "-Inf", "-Inf"),
        (math.nan, "NaN", "NaN"),
    ],
)
def test_go_float_formats(value: float, f_text: str, g_text: str) -> None:
    assert format_float(value) == f_text
    assert format_float_g(value) == g_text


def test_prettify_default_width() -> None:
    short = "sum by (job) (rate(http_requests_total[5m]))"
    assert format_expr(parse_expr(short)) == short
    long_query = (
        'sum by (job, instance) (rate(http_requests_total{job="api-server",code=~"5.."}[5m])) / '
        'sum by (job, instance) (rate(http_requests_total{job="api-server"}[5m])) > 0.05'
    )
    expected = (
        '    sum by (job, instance) (rate(http_requests_total{code=~"5..",job="api-server"}[5m]))\n'
        "  /\n"
        '    sum by (job, instance) (rate(http_requests_total{job="api-server"}[5m]))\n'
        ">\n"
        "  0.05"
    )
    assert format_expr(parse_expr(long_query)) == expected
    nested = (
        "histogram_quantile(0.99, sum by (le, job, instance, handler) "
        '(rate(prometheus_http_request_duration_seconds_bucket{job="prometheus"}[5m])))'
    )
    assert format_expr(parse_expr(nested)) == (
        "histogram_quantile(\n"
        "  0.99,\n"
        "  sum by (le, job, instance, handler) (\n"
        '    rate(prometheus_http_request_duration_seconds_bucket{job="prometheus"}[5m])\n'
        "  )\n"
        ")"
    )


# ---------------------------------------------------------------------------------------------
# /api/v1/parse_query.


def durations(op: str, lhs: Any, rhs: Any, wrapped: bool = False) -> dict[str, Any]:
    return {"lhs": lhs, "op": op, "rhs": rhs, "type": "durationExpr", "wrapped": wrapped}


def dnum(val: str, duration: bool) -> dict[str, Any]:
    return {"duration": duration, "type": "numberLiteral", "val": val}


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ("foo[5m]", {"range": 300_000, "rangeExpr": None, "offset": 0, "offsetExpr": None}),
        ("foo[5m+1m]", {"range": 0, "rangeExpr": durations("+", dnum("300", True), dnum("60", True))}),
        (
            "foo[5m+1m] offset (10m/2)",
            {"offset": 0, "offsetExpr": durations("/", dnum("600", True), dnum("2", False), True)},
        ),
        (
            "foo[max_of(step(),5m+3m) ]",
            {
                "rangeExpr": durations(
                    "max_of",
                    durations("step", None, None),
                    durations("+", dnum("300", True), dnum("180", True)),
                )
            },
        ),
        ("foo[5m:1m]", {"range": 300_000, "step": 60_000, "stepExpr": None, "type": "subquery"}),
        (
            "foo[4s+4s:1s*2] offset (5s-8)",
            {
                "stepExpr": durations("*", dnum("1", True), dnum("2", False)),
                "offsetExpr": durations("-", dnum("5", True), dnum("8", False), True),
            },
        ),
        ("foo offset 5m", {"offset": 300_000, "offsetExpr": None, "type": "vectorSelector"}),
        (
            "foo offset -min_of(5s,step()+8s)",
            {
                "offsetExpr": durations(
                    "-",
                    None,
                    durations(
                        "min_of",
                        dnum("5", True),
                        durations("+", durations("step", None, None), dnum("8", True)),
                    ),
                )
            },
        ),
    ],
)
def test_translate_durations(query: str, wanted: dict[str, Any]) -> None:
    got = translate_ast(parse_expr(query, features=ALL))
    for key, value in wanted.items():
        assert got[key] == value, key


def test_translate_full_tree() -> None:
    got = translate_ast(
        parse_expr('sum by (a) (x{b=~"c"} @ start()) / on (a) group_left vector(1)', features=ALL)
    )
    assert got == {
        "bool": False,
        "lhs": {
            "expr": {
                "anchored": False,
                "matchers": [
                    {"name": "b", "type": "=~", "value": "c"},
                    {"name": "__name__", "type": "=", "value": "x"},
                ],
                "name": "x",
                "offset": 0,
                "offsetExpr": None,
                "smoothed": False,
                "startOrEnd": "start",
                "timestamp": None,
                "type": "vectorSelector",
            },
            "grouping": ["a"],
            "op": "sum",
            "param": None,
            "type": "aggregation",
            "without": False,
        },
        "matching": {
            "card": "many-to-one",
            "fillValues": {"lhs": None, "rhs": None},
            "include": [],
            "labels": ["a"],
            "on": True,
        },
        "op": "/",
        "rhs": {
            "args": [{"type": "numberLiteral", "val": "1"}],
            "func": {"argTypes": ["scalar"], "name": "vector", "returnType": "vector", "variadic": 0},
            "type": "call",
        },
        "type": "binaryExpr",
    }
    assert list(got) == sorted(got)
    json.dumps(got)


def test_translate_scalar_binary_has_no_matching() -> None:
    got = translate_ast(parse_expr("1 > bool 2"))
    assert got["matching"] is None and got["bool"] is True
    assert translate_ast(parse_expr('"s"')) == {"type": "stringLiteral", "val": "s"}
    assert translate_ast(parse_expr("-x"))["type"] == "unaryExpr"
    assert translate_ast(parse_expr("(1)"))["type"] == "parenExpr"
