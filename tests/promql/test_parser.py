"""Tests of the PromQL lexer, parser and type checker."""

from __future__ import annotations

import contextlib
import math
import random
import time

import pytest

from narthex.model.matcher import Matcher, MatchType
from narthex.promql import parser as parser_module
from narthex.promql.ast import (
    AggregateExpr,
    BinaryExpr,
    Call,
    Cardinality,
    DurationExpr,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    PreprocessError,
    StepInvariantExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorMatching,
    VectorSelector,
    extract_selectors,
    preprocess_expr,
    walk,
)
from narthex.promql.errors import ParseError, PositionRange
from narthex.promql.functions import FUNCTIONS, ValueType
from narthex.promql.lexer import T, lex
from narthex.promql.parser import (
    ALL_FEATURES,
    DEFAULT_FEATURES,
    FEATURE_BINOP_FILL_MODIFIERS,
    FEATURE_DURATION_EXPR,
    FEATURE_EXPERIMENTAL_FUNCTIONS,
    FEATURE_EXTENDED_RANGE_SELECTORS,
    is_stale_nan,
    parse_duration_expr,
    parse_duration_ms,
    parse_expr,
    parse_metric_selector,
    parse_number,
    parse_series_desc,
)

from .test_parser_shared import SHARED_QUERIES

ALL = ALL_FEATURES


def vs(name: str, *matchers: Matcher, **kw: object) -> VectorSelector:
    """A selector as the parser builds it: the name matcher comes last."""
    ms = [*matchers]
    if name:
        ms.append(Matcher(MatchType.EQUAL, "__name__", name))
    return VectorSelector(name, tuple(ms), **kw)  # type: ignore[arg-type]


def eq(name: str, value: str) -> Matcher:
    return Matcher(MatchType.EQUAL, name, value)


def num(val: float, duration: bool = False) -> NumberLiteral:
    return NumberLiteral(val, duration)


def err(query: str, features: frozenset[str] = ALL) -> str:
    with pytest.raises(ParseError) as info:
        parse_expr(query, features=features)
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# Lexer.


def test_lexer_items() -> None:
    items = lex('sum by (a) (rate(x{y=~"z"}[5m])) > bool 1e3 # note')
    assert [i.typ for i in items] == [
        T.SUM, T.BY, T.LEFT_PAREN, T.IDENTIFIER, T.RIGHT_PAREN, T.LEFT_PAREN, T.IDENTIFIER,
        T.LEFT_PAREN, T.IDENTIFIER, T.LEFT_BRACE, T.IDENTIFIER, T.EQL_REGEX, T.STRING, T.RIGHT_BRACE,
        T.LEFT_BRACKET, T.DURATION, T.RIGHT_BRACKET, T.RIGHT_PAREN, T.RIGHT_PAREN, T.GTR, T.BOOL,
        T.NUMBER, T.COMMENT, T.EOF,
    ]  # fmt: skip
    assert items[0].pos == 0 and items[-2].val == "# note"


def test_lexer_keywords_inside_braces_are_identifiers() -> None:
    assert [i.typ for i in lex("{by='x', offset!='y'}")][:4] == [T.LEFT_BRACE, T.IDENTIFIER, T.EQL, T.STRING]


def test_fill_is_keyword_only_before_paren() -> None:
    assert [i.typ for i in lex("fill + fill (1)")][:3] == [T.IDENTIFIER, T.ADD, T.FILL]


def test_item_descriptions() -> None:
    items = lex('foo "a-very-long-string" + by sum')
    assert [i.desc() for i in items] == [
        'identifier "foo"',
        'string "\\"a-very-lo"...',
        "<op:+>",
        "<by>",
        "<aggr:sum>",
        "end of input",
    ]


# ---------------------------------------------------------------------------------------------
# Literals.


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("5e-3", 0.005),
        ("0x3d", 61.0),
        ("0X_1F", 31.0),
        ("017", 15.0),
        ("08", 8.0),
        ("1_000", 1000.0),
        ("1_000.5", 1000.5),
        ("Inf", math.inf),
        ("inF", math.inf),
        ("9223372036854775808", 9223372036854775808.0),
    ],
)
def test_numbers(text: str, value: float) -> None:
    assert parse_number(text) == value
    expr = parse_expr(text)
    assert isinstance(expr, NumberLiteral) and expr.val == value


def test_nan_and_signs() -> None:
    nan = parse_expr("NaN")
    assert isinstance(nan, NumberLiteral) and math.isnan(nan.val)
    assert parse_expr("-Inf") == num(-math.inf)
    assert parse_expr("+-+1") == num(-1)
    assert parse_expr("- - 1").pos == PositionRange(0, 5)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("1m0s", 60_000), ("1h0m0s", 3_600_000), ("1y2w3d", (365 + 17) * 86_400_000), ("90ms", 90), ("0", 0)],
)
def test_go_compound_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5m1h", 'not a valid duration string: "5m1h"'),
        ("5y1hs", 'unknown unit "hs" in duration "5y1hs"'),
        ("", "empty duration string"),
        ("300000000y", "duration out of range"),
    ],
)
def test_bad_durations(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration_ms(text)


def test_duration_literals() -> None:
    assert parse_expr("5m") == num(300, True)
    assert parse_expr("x[1h30m15s100ms]") == MatrixSelector(vs("x"), 5_415_100)
    assert parse_expr("x[90]") == MatrixSelector(vs("x"), 90_000)
    assert parse_expr("x[1.5]") == MatrixSelector(vs("x"), 1_500)
    assert parse_expr("time() - 1h") == BinaryExpr("-", Call(FUNCTIONS["time"], ()), num(3600, True), None)


@pytest.mark.parametrize(
    ("query", "value"),
    [
        ('"double \\"q\\" \\n \\t \\u00e9 \\x41 \\101"', 'double "q" \n \t é A A'),
        ("'single \\' \"'", "single ' \""),
        ("`raw \\d \\n`", "raw \\d \\n"),
        ('"\\U0001F600"', "\U0001f600"),
        ('"é€"', "é€"),
    ],
)
def test_strings(query: str, value: str) -> None:
    assert parse_expr(query) == StringLiteral(value)


def test_invalid_utf8_escape_is_kept_as_surrogate() -> None:
    expr = parse_expr('"a\\xc5z"')
    assert isinstance(expr, StringLiteral)
    assert expr.val.encode("utf-8", "surrogateescape") == b"a\xc5z"


# ---------------------------------------------------------------------------------------------
# Expressions.

AST_CASES = [
    ("foo", vs("foo")),
    ('foo{a="b", c!~"d"}', vs("foo", eq("a", "b"), Matcher(MatchType.NOT_REGEX, "c", "d"))),
    ('{"my.metric", "a.b"="c"}', VectorSelector("", (eq("__name__", "my.metric"), eq("a.b", "c")))),
    ('{__name__=~"a|b"}', VectorSelector("", (Matcher(MatchType.REGEX, "__name__", "a|b"),))),
    ("sum", vs("sum")),
    ("by{a='b'}", vs("by", eq("a", "b"))),
    ("x offset -5m", vs("x", offset_ms=-300_000)),
    ("x offset 1h30m", vs("x", offset_ms=5_400_000)),
    ("x @ 1609746000.5", vs("x", timestamp_ms=1_609_746_000_500)),
    ("x @ -100", vs("x", timestamp_ms=-100_000)),
    ("x @ end() offset 1m", vs("x", start_or_end="end", offset_ms=60_000)),
    ("x offset 1m @ start()", vs("x", start_or_end="start", offset_ms=60_000)),
    ("x[5m] @ 10 offset 1m", MatrixSelector(vs("x", timestamp_ms=10_000, offset_ms=60_000), 300_000)),
    ("x anchored", vs("x", anchored=True)),
    ("x[5m] smoothed", MatrixSelector(vs("x", smoothed=True), 300_000)),
    (
        "rate(x[5m])[30m:]",
        SubqueryExpr(Call(FUNCTIONS["rate"], (MatrixSelector(vs("x"), 300_000),)), 1_800_000),
    ),
    (
        "x[1h:5m] offset 1m @ end()",
        SubqueryExpr(vs("x"), 3_600_000, step_ms=300_000, offset_ms=60_000, start_or_end="end"),
    ),
    ("-x", UnaryExpr("-", vs("x"))),
    ("-x ^ 2", UnaryExpr("-", BinaryExpr("^", vs("x"), num(2), None))),
    ("-x * 2", BinaryExpr("*", UnaryExpr("-", vs("x")), num(2), None)),
    ("-1 ^ 2", UnaryExpr("-", BinaryExpr("^", num(1), num(2)))),
    ("2 ^ 3 ^ 2", BinaryExpr("^", num(2), BinaryExpr("^", num(3), num(2)))),
    ("1 - 2 - 3", BinaryExpr("-", BinaryExpr("-", num(1), num(2)), num(3))),
    (
        "1 + 2 * 3 > bool 4",
        BinaryExpr(">", BinaryExpr("+", num(1), BinaryExpr("*", num(2), num(3))), num(4), None, True),
    ),
    (
        "a or b and c unless d",
        BinaryExpr(
            "or",
            vs("a"),
            BinaryExpr(
                "unless",
                BinaryExpr("and", vs("b"), vs("c"), VectorMatching(Cardinality.MANY_TO_MANY)),
                vs("d"),
                VectorMatching(Cardinality.MANY_TO_MANY),
            ),
            VectorMatching(Cardinality.MANY_TO_MANY),
        ),
    ),
    ("a atan2 b", BinaryExpr("atan2", vs("a"), vs("b"), VectorMatching())),
    ("a </ b", BinaryExpr("</", vs("a"), vs("b"), VectorMatching())),
    (
        "a / on(x, y) group_left(z) b",
        BinaryExpr("/", vs("a"), vs("b"), VectorMatching(Cardinality.MANY_TO_ONE, ("x", "y"), True, ("z",))),
    ),
    (
        "a == bool ignoring(x) group_right b",
        BinaryExpr("==", vs("a"), vs("b"), VectorMatching(Cardinality.ONE_TO_MANY, ("x",), False, ()), True),
    ),
    ("a + on() b", BinaryExpr("+", vs("a"), vs("b"), VectorMatching(on=True))),
    (
        "a + fill_right(1) fill_left(-2) b",
        BinaryExpr("+", vs("a"), vs("b"), VectorMatching(fill_lhs=-2.0, fill_rhs=1.0)),
    ),
    ("fill + fill", BinaryExpr("+", vs("fill"), vs("fill"), VectorMatching())),
    ("a ^ b offset 5m", BinaryExpr("^", vs("a"), vs("b", offset_ms=300_000), VectorMatching())),
    ("x offset 5m + 1", BinaryExpr("+", vs("x", offset_ms=300_000), num(1))),
    ("x offset -2 ^ 2", BinaryExpr("^", vs("x", offset_ms=-2_000), num(2))),
    ("sum by (a, b,) (x)", AggregateExpr("sum", vs("x"), None, ("a", "b"))),
    ("sum(x) without ()", AggregateExpr("sum", vs("x"), None, (), True)),
    ('SUM by (SUM, on, offset, "é") (x)', AggregateExpr("sum", vs("x"), None, ("SUM", "on", "offset", "é"))),
    ("topk(5, x)", AggregateExpr("topk", vs("x"), num(5))),
    (
        'count_values without (a) ("v", x)',
        AggregateExpr("count_values", vs("x"), StringLiteral("v"), ("a",), True),
    ),
    ("limit_ratio(0.5, x)", AggregateExpr("limit_ratio", vs("x"), num(0.5))),
    ("start()", Call(FUNCTIONS["start"], ())),
    (
        "label_join(x, 'a', ',', 'b', 'c')",
        Call(FUNCTIONS["label_join"], (vs("x"), *map(StringLiteral, "a,bc"))),
    ),
    ("(((x)))", ParenExpr(ParenExpr(ParenExpr(vs("x"))))),
    ("x # a comment", vs("x")),
    ("# leading\nx", vs("x")),
    (
        "foo[11s+10s-5*2^2]",
        MatrixSelector(
            vs("foo"),
            0,
            DurationExpr(
                "-",
                DurationExpr("+", num(11, True), num(10, True)),
                DurationExpr("*", num(5), DurationExpr("^", num(2), num(2))),
            ),
        ),
    ),
    (
        "foo[-(10s-5s)+20s]",
        MatrixSelector(
            vs("foo"),
            0,
            DurationExpr(
                "+",
                DurationExpr("-", None, DurationExpr("-", num(10, True), num(5, True), True)),
                num(20, True),
            ),
        ),
    ),
    ("foo[-10s+15s]", MatrixSelector(vs("foo"), 0, DurationExpr("+", num(-10, True), num(15, True)))),
    ("foo[(5m)]", MatrixSelector(vs("foo"), 0, DurationExpr("+", None, num(300, True), True))),
    ("foo offset step()", vs("foo", offset_expr=DurationExpr("step"))),
    ("foo offset -step()", vs("foo", offset_expr=DurationExpr("-", None, DurationExpr("step")))),
    ("foo offset (1m*2)", vs("foo", offset_expr=DurationExpr("*", num(60, True), num(2), True))),
    (
        "foo[max_of(range(), 5s):step()]",
        SubqueryExpr(
            vs("foo"), 0, DurationExpr("max_of", DurationExpr("range"), num(5, True)), 0, DurationExpr("step")
        ),
    ),
]


@pytest.mark.parametrize(("query", "expected"), AST_CASES, ids=[c[0] for c in AST_CASES])
def test_ast(query: str, expected: object) -> None:
    assert parse_expr(query, features=ALL) == expected


def test_types() -> None:
    types = {
        "1": ValueType.SCALAR,
        '"a"': ValueType.STRING,
        "x": ValueType.VECTOR,
        "x[5m]": ValueType.MATRIX,
        "x[5m:]": ValueType.MATRIX,
        "1 + 1": ValueType.SCALAR,
        "x + 1": ValueType.VECTOR,
        "scalar(x)": ValueType.SCALAR,
        "-(1)": ValueType.SCALAR,
        "sum(x)": ValueType.VECTOR,
    }
    for query, typ in types.items():
        assert parse_expr(query).type is typ, query


def test_positions() -> None:
    expr = parse_expr('min_over_time(rate(foo{bar="baz"}[2s])[5m:] @ 1603775091)[4m:3s]')
    assert isinstance(expr, SubqueryExpr) and expr.pos == PositionRange(0, 64)
    call = expr.expr
    assert isinstance(call, Call) and call.pos == PositionRange(0, 57)
    inner = call.args[0]
    assert isinstance(inner, SubqueryExpr) and inner.pos == PositionRange(14, 56)
    assert inner.timestamp_ms == 1_603_775_091_000
    rate = inner.expr
    assert isinstance(rate, Call) and rate.pos == PositionRange(14, 38)
    matrix = rate.args[0]
    assert isinstance(matrix, MatrixSelector) and matrix.pos == PositionRange(19, 37)
    assert matrix.vector_selector.pos == PositionRange(19, 33)
    offset = parse_expr("foo offset 5m")
    assert offset.pos == PositionRange(0, 13)


def test_walk_and_selectors() -> None:
    expr = parse_expr('sum(rate(a[5m])) / on() b{c="d"}')
    kinds = [type(n).__name__ for n, _ in walk(expr)]
    assert kinds == [
        "BinaryExpr",
        "AggregateExpr",
        "Call",
        "MatrixSelector",
        "VectorSelector",
        "VectorSelector",
    ]
    assert [len(m) for m in extract_selectors(expr)] == [1, 2]


# ---------------------------------------------------------------------------------------------
# Errors (positions are 1-based line:column over UTF-8 bytes).

ERROR_CASES = [
    ("sum(foo bar)", '1:9: parse error: unexpected identifier "bar" in aggregation'),
    (
        "sum by (a b) (x)",
        '1:11: parse error: unexpected identifier "b" in grouping opts, expected "," or ")"',
    ),
    ("sum by (a) foo", '1:12: parse error: unexpected identifier "foo" in aggregation'),
    ("foo[5m 1m]", '1:8: parse error: unexpected duration "1m" in subquery or range, expected ":" or "]"'),
    (
        "foo[5m+]",
        '1:8: parse error: unexpected "]" in subquery or range selector, '
        "expected number, duration, step(), or range()",
    ),
    (
        "foo[5m:+]",
        '1:9: parse error: unexpected "]" in subquery selector, '
        'expected number, duration, step(), range(), or "]"',
    ),
    ("foo @ bar", '1:7: parse error: unexpected identifier "bar" in @, expected timestamp'),
    ("foo @ start", "1:12: parse error: unexpected end of input in @, expected timestamp"),
    (
        "foo offset bar",
        '1:12: parse error: unexpected identifier "bar" in offset, '
        "expected number, duration, step(), or range()",
    ),
    ("foo bar", '1:5: parse error: unexpected identifier "bar"'),
    ("rate(x y)", '1:8: parse error: unexpected identifier "y"'),
    ("(1 2)", '1:4: parse error: unexpected number "2"'),
    ("foo[1m:5m", "1:10: parse error: unclosed left bracket"),
    ("foo]", "1:4: parse error: unexpected right bracket ']'"),
    ("foo[1m][1m]", "1:8: parse error: ranges only allowed for vector selectors"),
    ("foo{a='b'}{c='d'}", '1:11: parse error: unexpected "{"'),
    (
        'x{a="1" or b="2"}',
        '1:9: parse error: unexpected identifier "or" in label matching, expected "," or "}"',
    ),
    ('x{a=~"a++"}', "1:3: parse error: error parsing regexp: invalid nested repetition operator: `++`"),
    ('x{a=~"(.*"}', "1:3: parse error: error parsing regexp: missing closing ): `^(?s:(.*)$`"),
    ("RATE(x[5m])", '1:1: parse error: unknown function with name "RATE"'),
    ("holt_winters(x[5m], 0.5, 0.5)", '1:1: parse error: unknown function with name "holt_winters"'),
    ("x[0s]", "1:3: parse error: duration must be greater than 0"),
    ("x @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"),
    ("x anchored smoothed", "1:1: parse error: anchored and smoothed modifiers cannot be used together"),
    ("x[5m:1m] anchored", "1:1: parse error: anchored modifier is not supported for subqueries"),
    ("sum(x) anchored", "1:1: parse error: anchored modifier not implemented"),
    ("a and on(b) group_left(c) d", '1:1: parse error: no grouping allowed for "and" operation'),
    ("a and fill(1) b", "1:1: parse error: filling in missing series not allowed for set operators"),
    ("1 + fill(1) 2", "1:1: parse error: filling in missing series only allowed between instant vectors"),
    ("a + fill(1)", "1:12: parse error: unexpected end of input"),
    ("a + fill() b", '1:10: parse error: unexpected ")"'),
    ("1 < 2", "1:3: parse error: comparisons between scalars must use BOOL modifier"),
    ("x[5m] + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types"),
    ('"a" + 1', "1:1: parse error: binary expression must contain only scalar and instant vector types"),
    (
        "sum(x[5m])",
        "1:5: parse error: expected type instant vector in aggregation expression, got range vector",
    ),
    ('quantile("a", x)', "1:10: parse error: expected type scalar in aggregation parameter, got string"),
    ("label_join(x)", '1:1: parse error: expected at least 3 argument(s) in call to "label_join", got 1'),
    ("round(x, 1, 2)", '1:1: parse error: expected at most 2 argument(s) in call to "round", got 3'),
    (
        "label_replace(x, 1, 'a', 'b', 'c')",
        '1:18: parse error: expected type string in call to function "label_replace", got scalar',
    ),
    ('{a=~".*"}', "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ('foo{__name__="bar"}', '1:1: parse error: metric name must not be set twice: "foo" or "bar"'),
    ("sum by ('') (x)", '1:9: parse error: invalid label name for grouping: ""'),
    ("foo offset 1s offset 2s", "1:1: parse error: offset may not be set multiple times"),
    ("é + foo", "1:1: parse error: unexpected character: 'é'"),
    ('"é" + bar{', "1:12: parse error: unexpected end of input inside braces"),
    ("a\n  + )", "2:6: parse error: unexpected right parenthesis ')'"),
    ('"\\q"', "1:1: parse error: unknown escape sequence U+0071 'q'"),
    ('"\\ud800"', "1:1: parse error: escape sequence is an invalid Unicode code point"),
    ('"abc\n"', "1:1: parse error: unterminated quoted string"),
    (
        "1e400",
        '1:1: parse error: error parsing number: strconv.ParseFloat: parsing "1e400": value out of range',
    ),
    ("1__0", '1:1: parse error: bad number or duration syntax: "1__"'),
    ("foo[1m::]", "1:8: parse error: unexpected colon ':'"),
    ("foo[:1m]", "1:6: parse error: unexpected colon before duration in duration expression"),
]


@pytest.mark.parametrize(("query", "message"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors(query: str, message: str) -> None:
    assert err(query) == message


def test_parse_error_attributes() -> None:
    with pytest.raises(ParseError) as info:
        parse_expr("foo{a=b}")
    exc = info.value
    assert exc.message == 'unexpected identifier "b" in label matching, expected string'
    assert exc.position_range == PositionRange(6, 7)
    assert exc.query == "foo{a=b}"
    assert len(exc.errors) == 1


def test_multiple_semantic_errors_report_the_first() -> None:
    with pytest.raises(ParseError) as info:
        parse_expr("nope1(x) + nope2(y)")
    assert [e.message for e in info.value.errors] == [
        'unknown function with name "nope1"',
        'unknown function with name "nope2"',
    ]


# ---------------------------------------------------------------------------------------------
# Feature flags.


@pytest.mark.parametrize(
    ("query", "feature", "message"),
    [
        ("sort_by_label(x, 'a')", FEATURE_EXPERIMENTAL_FUNCTIONS, 'function "sort_by_label" is not enabled'),
        (
            "limitk(1, x)",
            FEATURE_EXPERIMENTAL_FUNCTIONS,
            "limitk() is experimental and must be enabled with "
            "--enable-feature=promql-experimental-functions",
        ),
        ("x[5m+1m]", FEATURE_DURATION_EXPR, "experimental duration expression is not enabled"),
        ("x offset step()", FEATURE_DURATION_EXPR, "experimental duration expression is not enabled"),
        (
            "x[5m] anchored",
            FEATURE_EXTENDED_RANGE_SELECTORS,
            "anchored modifier is experimental and not enabled",
        ),
        ("x smoothed", FEATURE_EXTENDED_RANGE_SELECTORS, "smoothed modifier is experimental and not enabled"),
        (
            "a + fill(0) b",
            FEATURE_BINOP_FILL_MODIFIERS,
            "binop fill modifiers are experimental and not enabled",
        ),
    ],
)
def test_features(query: str, feature: str, message: str) -> None:
    parse_expr(query, features=ALL)
    with pytest.raises(ParseError) as info:
        parse_expr(query, features=ALL - {feature})
    assert info.value.message == message


def test_default_features_are_prometheus_defaults() -> None:
    assert frozenset({FEATURE_DURATION_EXPR}) == DEFAULT_FEATURES
    parse_expr("x[5m+1m]")
    with pytest.raises(ParseError):
        parse_expr("info(x)")


def test_function_table() -> None:
    assert len(FUNCTIONS) == 90
    assert FUNCTIONS["label_join"].variadic == -1
    assert FUNCTIONS["round"].arg_types == (ValueType.VECTOR, ValueType.SCALAR)
    assert FUNCTIONS["double_exponential_smoothing"].experimental
    assert FUNCTIONS["rate"].return_type is ValueType.VECTOR
    assert ValueType.MATRIX.documented == "range vector"


# ---------------------------------------------------------------------------------------------
# Other entry points.


def test_parse_duration_expr() -> None:
    assert parse_duration_expr("1m0s") == num(60, True)
    assert parse_duration_expr("5m+1m") == DurationExpr("+", num(300, True), num(60, True))
    assert parse_duration_expr("step() * 2") == DurationExpr("*", DurationExpr("step"), num(2))
    with pytest.raises(ParseError):
        parse_duration_expr("5m]")
    with pytest.raises(ParseError):
        parse_duration_expr("")


def test_parse_metric_selector() -> None:
    assert parse_metric_selector('up{job="a"}') == [eq("job", "a"), eq("__name__", "up")]
    assert parse_metric_selector('{"a.b"="c"}') == [eq("a.b", "c")]
    with pytest.raises(ParseError):
        parse_metric_selector("up + 1")


def test_series_desc_values() -> None:
    labels, values = parse_series_desc(
        'http_requests{job="api", instance="0"} 1+1x3 _ _x2 stale -2-0.5x1 5x2'
    )
    assert labels == {"__name__": "http_requests", "job": "api", "instance": "0"}
    plain = [None if v.omitted else ("stale" if v.stale else v.value) for v in values]
    assert plain == [1, 2, 3, 4, None, None, None, "stale", -2, -2.5, 5, 5, 5]
    assert is_stale_nan(values[7].value)


def test_series_desc_quoted_names_and_errors() -> None:
    labels, values = parse_series_desc('{"http.requests", "service.name"="api"}\t0+50x2')
    assert labels == {"__name__": "http.requests", "service.name": "api"}
    assert [v.value for v in values] == [0, 50, 100]
    with pytest.raises(ParseError, match='unexpected identifier "xx" in label set, expected "," or "}"'):
        parse_series_desc('{"http.requests"xx} 0+50x2')
    with pytest.raises(ParseError, match='unexpected "," in label set, expected string'):
        parse_series_desc('{"http.requests"=, x="y"} 1')
    with pytest.raises(ParseError, match="unterminated quoted string"):
        parse_series_desc('{"http.requests} 1')
    with pytest.raises(ParseError, match='expected number or "stale"'):
        parse_series_desc("m 1 foo")


_ = None  # An omitted point in SERIES_CASES.
# From parse_test.go's testSeries: (input, labels, values) or (input, None, None) when it must fail.
SERIES_CASES = [
    ("{} 1 2 3", {}, [1, 2, 3]),
    ('{a="b"} -1 2 3', {"a": "b"}, [-1, 2, 3]),
    ("my_metric{} 1 2 3", {"__name__": "my_metric"}, [1, 2, 3]),
    ('my_metric{a="b"} 1 2 3-10x4', {"__name__": "my_metric", "a": "b"}, [1, 2, 3, -7, -17, -27, -37]),
    ('my_metric{a="b"} 1 2 3-0x4', {"__name__": "my_metric", "a": "b"}, [1, 2, 3, 3, 3, 3, 3]),
    ("{} 1+1", None, None),
    ("{} 1x0", {}, [1]),
    ("{} 1+1x0", {}, [1]),
    ('my_metric{a="b"} 1 3 _ 5 _x4', {"__name__": "my_metric", "a": "b"}, [1, 3, _, 5, _, _, _, _]),
    ('my_metric{a="b"} 1 3 _ 5 _a4', None, None),
    ('m{a="b"} 1 -1 -3-10x4 7 9 +5', {"__name__": "m", "a": "b"}, [1, -1, -3, -13, -23, -33, -43, 7, 9, 5]),
    ('m{a="b"} 1 +1 +4 -6 -2 8', {"__name__": "m", "a": "b"}, [1, 1, 4, -6, -2, 8]),
    ('m{a="b"} 1 2 3    ', {"__name__": "m", "a": "b"}, [1, 2, 3]),
    ('m{a="\\u70ac = torch"} 1 2 3', {"__name__": "m", "a": "炬 = torch"}, [1, 2, 3]),
    ('m{a="b"} -3-3 -3', None, None),
    ('m{a="b"} -3 -3-3', None, None),
    ('m{a="b"} -3 _-2', None, None),
    ('m{a="b"} -3 3+3x4-4', None, None),
]


@pytest.mark.parametrize(("text", "labels", "values"), SERIES_CASES)
def test_upstream_series(text: str, labels: dict[str, str] | None, values: list[float | None] | None) -> None:
    if labels is None:
        with pytest.raises(ParseError):
            parse_series_desc(text)
        return
    got_labels, got = parse_series_desc(text)
    assert got_labels == labels
    assert [None if v.omitted else v.value for v in got] == values


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{} {{buckets:[5 10 7] schema:1}}+{{buckets:[1 2 3] schema:0}}x2",
            "1:63: parse error: error combining histograms: cannot merge from schema 0 to 1",
        ),
        ("{} {{schema:1 schema:1}}", '1:1: parse error: duplicate key "schema" in histogram'),
        ("{} {{foo:1}}", '1:6: parse error: bad histogram descriptor found: "foo"'),
        ("{} {{schema :1}}", "1:6: parse error: missing `:` for histogram descriptor"),
        ("{} {{schema: 1}}", '1:13: parse error: unexpected " " in series values'),
        ("{} {{buckets:[ 1]}}", '1:15: parse error: unexpected " " in series values'),
        ("{} {{ schema:1}}", '1:7: parse error: unexpected "<Item 57372>" "schema" in series values'),
        ("{} {{counter_reset_hint:foo}}", '1:25: parse error: bad histogram descriptor found: "foo"'),
    ],
)
def test_upstream_histogram_series_errors(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_series_desc(text)
    assert str(info.value) == message


def test_series_desc_repetition_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ParseError, match="exceeds the limit"):
        parse_series_desc("m 1+1x99999999999")
    monkeypatch.setattr(parser_module, "MAX_SERIES_VALUES", 10)
    assert len(parse_series_desc("m 1x9")[1]) == 10
    with pytest.raises(ParseError, match="more than 10 series values"):
        parse_series_desc("m 1x5 2x5")


def test_series_desc_histograms() -> None:
    _, values = parse_series_desc(
        "m {{schema:1 sum:3 count:22 z_bucket:1 z_bucket_w:0.001 buckets:[5 10 7] n_buckets:[1] "
        "offset:2 counter_reset_hint:gauge}}x1 "
        "{{schema:0 sum:4 count:4 buckets:[1 2 1]}}+{{sum:2 count:1 buckets:[1] offset:1}}x2 {{}}"
    )
    first = values[0].histogram
    assert first is not None and values[0].counter_reset_hint_set and values[1] == values[0]
    assert (first.schema, first.sum, first.count, first.zero_count, first.zero_threshold) == (
        1,
        3,
        22,
        1,
        0.001,
    )
    assert first.positive_spans == ((2, 3),) and first.positive_buckets == (5, 10, 7)
    assert first.negative_spans == ((0, 1),) and first.counter_reset_hint == "gauge"
    series = [v.histogram for v in values[2:5]]
    assert [h.count for h in series if h] == [4, 5, 6]
    assert [h.positive_buckets for h in series if h] == [(1, 2, 1), (1, 3, 1), (1, 4, 1)]
    assert values[5].histogram is not None and values[5].histogram.count == 0


def test_series_desc_histogram_schema_reduction() -> None:
    _, values = parse_series_desc("m {{schema:0 buckets:[1 1]}}+{{schema:1 buckets:[1 1 1 1]}}x1")
    result = values[1].histogram
    assert result is not None and result.schema == 0
    assert result.positive_spans == ((0, 3),) and result.positive_buckets == (2, 3, 1)


def test_preprocess() -> None:
    expr = parse_expr("rate(x[5m+1m] @ start()) + time() + x offset (step()*2)", features=ALL)
    out = preprocess_expr(expr, 1_000_000, 2_000_000, 15_000)
    assert isinstance(out, BinaryExpr)
    lhs = out.lhs
    assert isinstance(lhs, BinaryExpr) and isinstance(lhs.lhs, StepInvariantExpr)
    call = lhs.lhs.expr
    assert isinstance(call, Call)
    matrix = call.args[0]
    assert isinstance(matrix, MatrixSelector) and matrix.range_ms == 360_000
    assert isinstance(matrix.vector_selector, VectorSelector)
    assert matrix.vector_selector.timestamp_ms == 1_000_000
    rhs = out.rhs
    assert isinstance(rhs, VectorSelector) and rhs.offset_ms == 30_000
    whole = preprocess_expr(parse_expr("1 + sum(x @ 5)"), 0, 10_000, 1_000)
    assert isinstance(whole, StepInvariantExpr)
    folded = preprocess_expr(parse_expr("step() + range()", features=ALL), 0, 60_000, 15_000)
    assert isinstance(folded, StepInvariantExpr)
    assert folded.expr == BinaryExpr("+", num(15), num(60), None)
    with pytest.raises(PreprocessError, match="division by zero"):
        preprocess_expr(parse_expr("x[5m/(step()-step())]"), 0, 0, 0)
    with pytest.raises(PreprocessError, match="duration must be greater than 0"):
        preprocess_expr(parse_expr("x[5m - step()]"), 0, 10, 600_000)


# ---------------------------------------------------------------------------------------------
# Robustness.


def test_deep_nesting_is_a_parse_error() -> None:
    for query in ["(" * 5000 + "1" + ")" * 5000, "sum(" * 3000 + "x" + ")" * 3000, "a^" * 3000 + "a"]:
        with pytest.raises(ParseError, match="nesting too deep"):
            parse_expr(query)
    with pytest.raises(ParseError, match="nesting too deep"):
        parse_expr("1" + " + 1" * 5000)
    assert parse_expr("-" * 5001 + "1") == num(-1)


def _mutate(rng: random.Random, text: str, corpus: list[str]) -> str:
    pieces = [
        *'()[]{}:,.+-*/%^=!~<>@"\'`\\#_ \n\tax09eEms',
        "offset", "by", "on", "bool", "sum", "step()", "anchored", "fill(", "@ start()", "[5m]", "[5m:1m]",
        '{a="b"}', "and", "Inf", "0x", "é", "\ufffd",
    ]  # fmt: skip
    for _ in range(rng.randint(1, 4)):
        pos = rng.randint(0, len(text))
        choice = rng.random()
        if choice < 0.4:
            text = text[:pos] + rng.choice(pieces) + text[pos:]
        elif choice < 0.7:
            text = text[:pos] + text[pos + rng.randint(1, 5) :]
        else:
            other = rng.choice(corpus)
            start = rng.randint(0, len(other))
            text = text[:pos] + other[start : start + rng.randint(1, 20)] + text[pos:]
    return text


def test_fuzz_only_parse_errors_escape() -> None:
    rng = random.Random(20261121)
    corpus = [q for _, q, _ in SHARED_QUERIES] or ['sum by (a) (rate(x{y="z"}[5m])) > 1']
    corpus += [*(c[0] for c in AST_CASES), *(c[0] for c in ERROR_CASES)]
    deadline = time.monotonic() + 4.0
    count = 0
    for _ in range(3000):
        query = _mutate(rng, rng.choice(corpus), corpus)
        try:
            parse_expr(query, features=ALL)
        except ParseError as exc:
            assert str(exc)
        count += 1
        if time.monotonic() > deadline:
            break
    for length in (1, 3, 8):
        for _ in range(300):
            parse_or_error("".join(rng.choice("(){}[]\"`'=~!<>@:,+-*/^%#. x1e\\") for _ in range(length)))
    assert count >= 1000


def parse_or_error(query: str) -> None:
    with contextlib.suppress(ParseError):
        parse_expr(query, features=ALL)
