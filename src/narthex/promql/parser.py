"""PromQL parser: a recursive-descent, precedence-climbing parser with Prometheus's error messages.

:func:`parse_expr` parses and type-checks a query (upstream's ``ParseExpr``). Syntax errors stop the
parse; semantic errors found while parsing are collected and the first one is reported, as upstream.
"""

from __future__ import annotations

import contextlib
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace

from narthex.model.labels import METRIC_NAME
from narthex.model.matcher import Matcher, MatchType
from narthex.model.regex import RegexError
from narthex.promql.ast import (
    COMPARISON_OPS,
    SET_OPS,
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
    VectorMatching,
    VectorSelector,
)
from narthex.promql.errors import ParseErr, ParseError, PositionRange
from narthex.promql.functions import FUNCTIONS, Function, ValueType
from narthex.promql.lexer import (
    AGGREGATORS,
    EXPERIMENTAL_AGGREGATORS,
    TYPE_STR,
    Item,
    T,
    go_quote,
    lex,
)
from narthex.util.gofmt import format_float

# Feature names, as given to Prometheus's --enable-feature.
FEATURE_EXPERIMENTAL_FUNCTIONS = "promql-experimental-functions"
FEATURE_DURATION_EXPR = "promql-duration-expr"
FEATURE_EXTENDED_RANGE_SELECTORS = "promql-extended-range-selectors"
FEATURE_BINOP_FILL_MODIFIERS = "promql-binop-fill-modifiers"
ALL_FEATURES = frozenset(
    {
        FEATURE_EXPERIMENTAL_FUNCTIONS,
        FEATURE_DURATION_EXPR,
        FEATURE_EXTENDED_RANGE_SELECTORS,
        FEATURE_BINOP_FILL_MODIFIERS,
    }
)
# Prometheus 3 has duration expressions always on; the rest are opt-in.
DEFAULT_FEATURES = frozenset({FEATURE_DURATION_EXPR})

# Nesting limit (parentheses, calls, subqueries...) and tree depth limit: deeper queries are refused
# with a parse error instead of exhausting the Python stack.
MAX_NESTING = 100
MAX_TREE_DEPTH = 250

_BINARY_PRECEDENCE: dict[T, int] = {
    T.LOR: 1,
    T.LAND: 2,
    T.LUNLESS: 2,
    T.EQLC: 3,
    T.GTE: 3,
    T.GTR: 3,
    T.LSS: 3,
    T.LTE: 3,
    T.NEQ: 3,
    T.TRIM_UPPER: 3,
    T.TRIM_LOWER: 3,
    T.ADD: 4,
    T.SUB: 4,
    T.MUL: 5,
    T.DIV: 5,
    T.MOD: 5,
    T.ATAN2: 5,
    T.POW: 6,
}
_POW_PRECEDENCE = 6
_DURATION_PRECEDENCE: dict[T, int] = {T.ADD: 4, T.SUB: 4, T.MUL: 5, T.DIV: 5, T.MOD: 5, T.POW: 6}

# Keyword items that name a metric when they start an expression (upstream's metric_identifier).
_METRIC_KEYWORDS = AGGREGATORS | {
    T.BY, T.FILL, T.FILL_LEFT, T.FILL_RIGHT, T.IDENTIFIER, T.LAND, T.LOR, T.LUNLESS,
    T.METRIC_IDENTIFIER, T.OFFSET, T.WITHOUT, T.START, T.END, T.STEP, T.RANGE, T.ANCHORED,
    T.SMOOTHED, T.MAX_OF, T.MIN_OF,
}  # fmt: skip
# Items usable as label names in grouping clauses (upstream's maybe_label).
_MAYBE_LABEL = AGGREGATORS | {
    T.BOOL, T.BY, T.GROUP_LEFT, T.GROUP_RIGHT, T.FILL, T.FILL_LEFT, T.FILL_RIGHT, T.IDENTIFIER,
    T.IGNORING, T.LAND, T.LOR, T.LUNLESS, T.METRIC_IDENTIFIER, T.OFFSET, T.ON, T.START, T.END,
    T.ATAN2, T.LIMITK, T.LIMIT_RATIO, T.STEP, T.RANGE, T.ANCHORED, T.SMOOTHED, T.MAX_OF, T.MIN_OF,
}  # fmt: skip
_MATCH_OPS = {
    T.EQL: MatchType.EQUAL,
    T.NEQ: MatchType.NOT_EQUAL,
    T.EQL_REGEX: MatchType.REGEX,
    T.NEQ_REGEX: MatchType.NOT_REGEX,
}
_NUMBERS = (T.NUMBER, T.DURATION)
_MAX_DURATION_SECONDS = (1 << 63) / 1e9

_CTX_OFFSET = ("offset", "number, duration, step(), or range()")
_CTX_AT = ("@", "timestamp")
_CTX_RANGE_START = ("subquery or range selector", "number, duration, step(), or range()")
_CTX_RANGE_AFTER = ("subquery or range", '":" or "]"')
_CTX_SUBQUERY_STEP = ("subquery selector", 'number, duration, step(), range(), or "]"')
_CTX_SUBQUERY_END = ("subquery selector", '"]"')
_CTX_AGGREGATION = ("aggregation", "")


class _Abort(Exception):
    """Stops parsing after a syntax error (already recorded)."""


# ---------------------------------------------------------------------------------------------
# Literals.

_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, "'": 39, '"': 34}


def unquote(text: str) -> str:
    """Decode a PromQL string literal (quotes included) as Go's strconv.Unquote.

    Escapes yielding bytes that are not valid UTF-8 (``"\\xff"``) are kept as surrogate escapes.
    """
    quote, body = text[0], text[1:-1]
    if quote == "`":
        return body
    if "\\" not in body:
        return body
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
            continue
        esc = body[i + 1]
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
            i += 2
        elif esc in "01234567":
            out.append(int(body[i + 1 : i + 4], 8))
            i += 4
        elif esc == "x":
            out.append(int(body[i + 2 : i + 4], 16))
            i += 4
        else:
            width = 4 if esc == "u" else 8
            out += chr(int(body[i + 2 : i + 2 + width], 16)).encode("utf-8")
            i += 2 + width
    return out.decode("utf-8", "surrogateescape")


def _underscores_ok(text: str) -> bool:
    """Go's rule: an underscore must sit between digits, or between a base prefix and a digit."""
    if "_" not in text:
        return True
    body, saw, hexadecimal = text, "^", False
    if len(body) >= 2 and body[0] == "0" and body[1] in "xXoObB":
        body, saw, hexadecimal = body[2:], "0", body[1] in "xX"
    for ch in body:
        if "0" <= ch <= "9" or (hexadecimal and ch.lower() in "abcdef"):
            saw = "0"
        elif ch == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


class NumberError(ValueError):
    """A number literal Go's strconv would refuse."""


def _parse_go_int(text: str) -> int | None:
    """``strconv.ParseInt(text, 0, 64)`` (None when it fails)."""
    if not _underscores_ok(text):
        return None
    prefix = text[:2].lower()
    if prefix in ("0x", "0o", "0b"):
        base, body = {"0x": 16, "0o": 8, "0b": 2}[prefix], text[2:]
    elif len(text) > 1 and text[0] == "0":
        base, body = 8, text[1:]
    else:
        base, body = 10, text
    digits = body.replace("_", "")
    if not digits or any(ch not in "0123456789abcdef"[:base] for ch in digits.lower()):
        return None
    value = int(digits, base)
    return value if value < (1 << 63) else None


def parse_number(text: str) -> float:
    """Parse a number literal as upstream: ``strconv.ParseInt(s, 0, 64)``, then ``ParseFloat``."""
    integer = _parse_go_int(text)
    if integer is not None:
        return float(integer)
    lower = text.lower()
    if lower in ("inf", "+inf", "infinity", "+infinity"):
        return math.inf
    if lower in ("-inf", "-infinity"):
        return -math.inf
    if lower == "nan":
        return math.nan
    try:
        if lower.startswith("0x") or "n" in lower or not _underscores_ok(text):
            raise ValueError(text)
        value = float(text)
    except ValueError:
        raise NumberError(f"strconv.ParseFloat: parsing {go_quote(text)}: invalid syntax") from None
    if math.isinf(value):
        raise NumberError(f"strconv.ParseFloat: parsing {go_quote(text)}: value out of range")
    return value


_DURATION_UNITS = {"y": (1, 365 * 86400000), "w": (2, 7 * 86400000), "d": (3, 86400000), "h": (4, 3600000)}
_DURATION_UNITS.update({"m": (5, 60000), "s": (6, 1000), "ms": (7, 1)})
_DURATION_PART = re.compile(r"([0-9]*)([^0-9]*)")


def parse_duration_ms(text: str) -> int:
    """Parse a Prometheus duration (``1h30m``, ``1m0s``) into milliseconds, as ``model.ParseDuration``.

    Raises ValueError with upstream's messages.
    """
    if text == "0":
        return 0
    if text == "":
        raise ValueError("empty duration string")
    total_ns = 0
    last_unit = 0
    pos = 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        assert match is not None
        number, unit = match.group(1), match.group(2)
        if number == "" or unit == "":
            raise ValueError(f"not a valid duration string: {go_quote(text)}")
        pos = match.end()
        if unit not in _DURATION_UNITS:
            raise ValueError(f"unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        order, mult_ms = _DURATION_UNITS[unit]
        if order <= last_unit:
            raise ValueError(f"not a valid duration string: {go_quote(text)}")
        last_unit = order
        value = int(number)
        if value >= 1 << 64:
            raise ValueError(f"not a valid duration string: {go_quote(text)}")
        mult_ns = mult_ms * 1_000_000
        if value > (1 << 63) // mult_ns:
            raise ValueError("duration out of range")
        total_ns += value * mult_ns
        if total_ns > (1 << 63) - 1:
            raise ValueError("duration out of range")
    return total_ns // 1_000_000


def _round_half_away(value: float) -> int:
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def seconds_to_ms(seconds: float) -> int:
    """Seconds to milliseconds through Go's nanosecond ``time.Duration`` (rounded, then truncated)."""
    if not math.isfinite(seconds) or abs(seconds) > _MAX_DURATION_SECONDS:
        return 0
    ns = _round_half_away(seconds * 1e9)
    return (
        int(ns / 1_000_000) if abs(ns) < (1 << 53) else ns // 1_000_000 if ns >= 0 else -((-ns) // 1_000_000)
    )


_RE2_TO_GO_ERRORS = {
    "missing ]": "missing closing ]",
    "missing )": "missing closing )",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid repetition size": "invalid repeat count",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid named capture group": "invalid named capture",
}
_REGEX_ERROR_PREFIX = "error parsing regexp: "


def go_regex_error(message: str) -> str:
    """Reword an RE2 error (``missing ): (.*``) as Go's regexp package does (``missing closing ): `(.*```)."""
    if not message.startswith(_REGEX_ERROR_PREFIX):
        return message
    rest = message[len(_REGEX_ERROR_PREFIX) :]
    for code in sorted(
        {
            *_RE2_TO_GO_ERRORS,
            "invalid escape sequence",
            "invalid character class range",
            "invalid character class",
            "unexpected )",
            "invalid UTF-8",
        },
        key=len,
        reverse=True,
    ):
        if rest.startswith(code + ": ") or rest == code:
            fragment = rest[len(code) + 2 :]
            go_code = _RE2_TO_GO_ERRORS.get(code, code)
            return (
                f"{_REGEX_ERROR_PREFIX}{go_code}: `{fragment}`" if fragment else _REGEX_ERROR_PREFIX + go_code
            )
    return message


# ---------------------------------------------------------------------------------------------
# The parser.


@dataclass
class _Modifiers:
    """Binary operator modifiers while parsing."""

    return_bool: bool = False
    card: Cardinality = Cardinality.ONE_TO_ONE
    matching_labels: tuple[str, ...] = ()
    on: bool = False
    include: tuple[str, ...] = ()
    fill_lhs: float | None = None
    fill_rhs: float | None = None


class _Parser:
    def __init__(
        self, text: str, features: frozenset[str], functions: dict[str, Function] | None = None
    ) -> None:
        self.text = text
        self.features = features
        self.functions = FUNCTIONS if functions is None else functions
        self.items = [it for it in lex(text) if it.typ is not T.COMMENT]
        self.i = 0
        self.last_end = 0
        self.errors: list[ParseErr] = []
        self.contexts: list[tuple[str, str]] = []
        self.nesting = 0

    # -- token access --------------------------------------------------------------------

    def peek(self) -> Item:
        item = self.items[self.i]
        if item.typ is T.ERROR:
            self.errors.append(ParseErr(PositionRange(item.pos, len(self.text)), item.val, self.text))
            raise _Abort
        return item

    def peek2(self) -> Item:
        """The item after the next one (ERROR counts as the end)."""
        idx = min(self.i + 1, len(self.items) - 1)
        return self.items[idx]

    def advance(self) -> Item:
        item = self.peek()
        if item.typ is not T.EOF:
            self.i += 1
        self.last_end = item.end
        return item

    def expect(self, typ: T) -> Item:
        if self.peek().typ is not typ:
            self.unexpected()
        return self.advance()

    # -- errors ----------------------------------------------------------------------------

    def error(self, pos: PositionRange, message: str) -> None:
        self.errors.append(ParseErr(pos, message, self.text))

    def unexpected(self, context: tuple[str, str] | None = None) -> None:
        """Record "unexpected <item> [in ctx][, expected ...]" for the next item and stop."""
        item = self.peek()
        if context is None:
            context = self.contexts[-1] if self.contexts else ("", "")
        what, expected = context
        message = "unexpected " + item.desc()
        if what:
            message += " in " + what
        if expected:
            message += ", expected " + expected
        self.error(PositionRange(item.pos, item.end), message)
        raise _Abort

    def _nest(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            item = self.items[self.i]
            self.error(
                PositionRange(item.pos, item.end), f"expression nesting too deep (limit {MAX_NESTING})"
            )
            raise _Abort

    # -- entry points ----------------------------------------------------------------------

    def parse_query(self) -> Expr:
        if self.peek().typ is T.EOF:
            self.error(PositionRange(0, 0), "no expression found in input")
            raise _Abort
        expr = self.parse_expr(0)
        if self.peek().typ is not T.EOF:
            self.unexpected(("", ""))
        return expr

    # -- expressions -----------------------------------------------------------------------

    def parse_expr(self, min_prec: int) -> Expr:
        self._nest()
        lhs = self.parse_unary()
        result = self.parse_binary_rest(lhs, min_prec)
        self.nesting -= 1
        return result

    def parse_binary_rest(self, lhs: Expr, min_prec: int) -> Expr:
        while True:
            op = self.peek()
            prec = _BINARY_PRECEDENCE.get(op.typ)
            if prec is None or prec < min_prec:
                return lhs
            self.advance()
            mods = self.parse_bin_modifiers()
            rhs = self.parse_expr(prec if op.typ is T.POW else prec + 1)
            lhs = self.new_binary(lhs, op, mods, rhs)

    def parse_unary(self) -> Expr:
        ops: list[Item] = []
        while self.peek().typ in (T.ADD, T.SUB):
            ops.append(self.advance())
        expr = self.parse_postfix(self.parse_primary())
        if not ops:
            return expr
        expr = self.parse_binary_rest(expr, _POW_PRECEDENCE)
        for op in reversed(ops):
            if isinstance(expr, NumberLiteral):
                val = -expr.val if op.typ is T.SUB else expr.val
                expr = NumberLiteral(val, expr.duration, PositionRange(op.pos, expr.pos.end))
            else:
                expr = UnaryExpr(TYPE_STR[op.typ], expr, PositionRange(op.pos, expr.pos.end))
        return expr

    def parse_primary(self) -> Expr:
        tok = self.peek()
        typ = tok.typ
        if typ in _NUMBERS:
            return self.number_literal(self.advance())
        if typ is T.STRING:
            self.advance()
            return StringLiteral(unquote(tok.val), PositionRange(tok.pos, tok.end))
        if typ is T.LEFT_PAREN:
            self.advance()
            inner = self.parse_expr(0)
            if self.peek().typ is not T.RIGHT_PAREN:
                self.unexpected()
            close = self.advance()
            return ParenExpr(inner, PositionRange(tok.pos, close.end))
        if typ is T.LEFT_BRACE:
            return self.parse_vector_selector(None)
        nxt = self.peek2().typ
        if typ in AGGREGATORS and nxt in (T.LEFT_PAREN, T.BY, T.WITHOUT):
            return self.parse_aggregation()
        if typ in (T.IDENTIFIER, T.START, T.END, T.STEP, T.RANGE, T.MAX_OF, T.MIN_OF) and nxt is T.LEFT_PAREN:
            return self.parse_call()
        if typ in _METRIC_KEYWORDS:
            self.advance()
            return self.parse_vector_selector(tok)
        self.unexpected()
        raise AssertionError("unreachable")

    def number_literal(self, item: Item) -> NumberLiteral:
        pos = PositionRange(item.pos, item.end)
        if item.typ is T.DURATION:
            try:
                ms = parse_duration_ms(item.val)
            except ValueError as exc:
                self.error(pos, str(exc))
                ms = 0
            return NumberLiteral(ms / 1000.0, True, pos)
        try:
            return NumberLiteral(parse_number(item.val), False, pos)
        except NumberError as exc:
            self.error(pos, f"error parsing number: {exc}")
            return NumberLiteral(0.0, False, pos)

    # -- postfix modifiers -----------------------------------------------------------------

    def parse_postfix(self, expr: Expr) -> Expr:
        while True:
            typ = self.peek().typ
            if typ is T.LEFT_BRACKET:
                expr = self.parse_range(expr)
            elif typ is T.OFFSET:
                self.advance()
                self.contexts.append(_CTX_OFFSET)
                offset = self.parse_offset_duration()
                self.contexts.pop()
                expr = self.add_offset(expr, offset)
            elif typ is T.AT:
                self.advance()
                expr = self.parse_at(expr)
            elif typ in (T.ANCHORED, T.SMOOTHED):
                self.advance()
                expr = self.set_extended(expr, "anchored" if typ is T.ANCHORED else "smoothed")
            else:
                return expr

    def parse_range(self, expr: Expr) -> Expr:
        lbracket = self.advance()
        self.contexts.append(_CTX_RANGE_START)
        first = self.positive(self.parse_duration(0))
        self.contexts[-1] = _CTX_RANGE_AFTER
        tok = self.peek()
        if tok.typ is T.RIGHT_BRACKET:
            rbracket = self.advance()
            self.contexts.pop()
            return self.new_matrix(expr, first, lbracket, rbracket)
        if tok.typ is not T.COLON:
            self.unexpected()
        self.advance()
        step: Expr | None = None
        if self.peek().typ is not T.RIGHT_BRACKET:
            self.contexts[-1] = _CTX_SUBQUERY_STEP
            step = self.positive(self.parse_duration(0))
            self.contexts[-1] = _CTX_SUBQUERY_END
            if self.peek().typ is not T.RIGHT_BRACKET:
                self.unexpected()
        rbracket = self.advance()
        self.contexts.pop()
        range_ms, range_expr = self.split_duration(first)
        step_ms, step_expr = self.split_duration(step) if step is not None else (0, None)
        return SubqueryExpr(
            expr, range_ms, range_expr, step_ms, step_expr, pos=PositionRange(expr.pos.start, rbracket.end)
        )

    @staticmethod
    def split_duration(value: Expr) -> tuple[int, DurationExpr | None]:
        if isinstance(value, NumberLiteral):
            return seconds_to_ms(value.val), None
        assert isinstance(value, DurationExpr)
        return 0, value

    def positive(self, value: Expr) -> Expr:
        if isinstance(value, NumberLiteral) and not value.val > 0:
            self.error(value.pos, "duration must be greater than 0")
            return NumberLiteral(0.0)
        return value

    def new_matrix(self, expr: Expr, rng: Expr, lbracket: Item, rbracket: Item) -> Expr:
        message = ""
        if not isinstance(expr, VectorSelector):
            message = "ranges only allowed for vector selectors"
        elif expr.offset_ms != 0 or expr.offset_expr is not None:
            message = "no offset modifiers allowed before range"
        elif expr.timestamp_ms is not None or expr.start_or_end is not None:
            message = "no @ modifiers allowed before range"
        if message:
            self.error(PositionRange(lbracket.pos, rbracket.end), message)
        range_ms, range_expr = self.split_duration(rng)
        return MatrixSelector(expr, range_ms, range_expr, PositionRange(expr.pos.start, rbracket.end))

    def _modifier_target(self, expr: Expr, what: str) -> VectorSelector | SubqueryExpr | None:
        if isinstance(expr, VectorSelector | SubqueryExpr):
            return expr
        if isinstance(expr, MatrixSelector):
            if isinstance(expr.vector_selector, VectorSelector):
                return expr.vector_selector
            self.error(expr.pos, "ranges only allowed for vector selectors")
            return None
        self.error(
            expr.pos,
            f"{what} must be preceded by an instant vector selector or range vector selector or a subquery",
        )
        return None

    def _rewrap(self, expr: Expr, target: VectorSelector | SubqueryExpr) -> Expr:
        """Put an updated selector/subquery back, extending its end to the last item read."""
        if isinstance(expr, MatrixSelector):
            vs = target
            return replace(expr, vector_selector=vs, pos=PositionRange(expr.pos.start, self.last_end))
        return replace(target, pos=PositionRange(target.pos.start, self.last_end))

    def add_offset(self, expr: Expr, offset: Expr) -> Expr:
        target = self._modifier_target(expr, "offset modifier")
        if target is None:
            return expr
        if target.offset_ms != 0 or target.offset_expr is not None:
            self.error(expr.pos, "offset may not be set multiple times")
        elif isinstance(offset, NumberLiteral):
            target = replace(target, offset_ms=seconds_to_ms(offset.val))
        else:
            assert isinstance(offset, DurationExpr)
            target = replace(target, offset_expr=offset)
        return self._rewrap(expr, target)

    def parse_at(self, expr: Expr) -> Expr:
        self.contexts.append(_CTX_AT)
        tok = self.peek()
        preprocessor: str | None = None
        timestamp = 0.0
        if tok.typ in (T.START, T.END):
            self.advance()
            self.expect(T.LEFT_PAREN)
            self.expect(T.RIGHT_PAREN)
            preprocessor = "start" if tok.typ is T.START else "end"
        elif tok.typ in _NUMBERS:
            timestamp = self.number_literal(self.advance()).val
        elif tok.typ in (T.ADD, T.SUB):
            self.advance()
            if self.peek().typ not in _NUMBERS:
                self.unexpected()
            timestamp = self.number_literal(self.advance()).val
            if tok.typ is T.SUB:
                timestamp = -timestamp
        else:
            self.unexpected()
        self.contexts.pop()
        if preprocessor is None and (
            not math.isfinite(timestamp) or timestamp >= 2.0**63 or timestamp <= -(2.0**63)
        ):
            self.error(expr.pos, f"timestamp out of bounds for @ modifier: {format_float(timestamp, 'f', 6)}")
        target = self._modifier_target(expr, "@ modifier")
        if target is None:
            return expr
        if target.timestamp_ms is not None or target.start_or_end is not None:
            self.error(expr.pos, "@ <timestamp> may not be set multiple times")
            return expr
        if preprocessor is not None:
            target = replace(target, start_or_end=preprocessor)
        else:
            ms = _round_half_away(timestamp * 1000) if math.isfinite(timestamp) else 0
            target = replace(target, timestamp_ms=max(min(ms, (1 << 63) - 1), -(1 << 63)))
        return self._rewrap(expr, target)

    def set_extended(self, expr: Expr, which: str) -> Expr:
        other = "smoothed" if which == "anchored" else "anchored"
        if FEATURE_EXTENDED_RANGE_SELECTORS not in self.features:
            self.error(expr.pos, f"{which} modifier is experimental and not enabled")
            return expr
        if isinstance(expr, SubqueryExpr):
            self.error(expr.pos, f"{which} modifier is not supported for subqueries")
            return expr
        vs: Expr
        if isinstance(expr, MatrixSelector):
            vs = expr.vector_selector
            if not isinstance(vs, VectorSelector):
                return expr
        elif isinstance(expr, VectorSelector):
            vs = expr
        else:
            self.error(expr.pos, f"{which} modifier not implemented")
            return expr
        if getattr(vs, other):
            self.error(expr.pos, "anchored and smoothed modifiers cannot be used together")
        vs = replace(vs, **{which: True})
        return replace(expr, vector_selector=vs) if isinstance(expr, MatrixSelector) else vs

    # -- durations -------------------------------------------------------------------------

    def experimental_duration(self, expr: Expr) -> None:
        if FEATURE_DURATION_EXPR not in self.features:
            self.error(expr.pos, "experimental duration expression is not enabled")

    def duration_literal(self, item: Item) -> NumberLiteral:
        lit = self.number_literal(item)
        if abs(lit.val) > _MAX_DURATION_SECONDS:
            self.error(lit.pos, "duration out of range")
            return NumberLiteral(0.0)
        return lit

    def parse_offset_duration(self) -> Expr:
        """The value after ``offset``: a literal, step(), range(), min_of/max_of, or a parenthesised
        duration expression, optionally signed (upstream's offset_duration_expr)."""
        tok = self.peek()
        if tok.typ in _NUMBERS:
            return self.duration_literal(self.advance())
        if tok.typ in (T.ADD, T.SUB):
            op = self.advance()
            nxt = self.peek()
            if nxt.typ in _NUMBERS:
                lit = self.number_literal(self.advance())
                val = -lit.val if op.typ is T.SUB else lit.val
                if abs(val) > _MAX_DURATION_SECONDS:
                    self.error(PositionRange(op.pos, op.end), "duration out of range")
                    return NumberLiteral(0.0)
                return NumberLiteral(val, lit.duration, PositionRange(op.pos, lit.pos.end))
            if nxt.typ in (T.STEP, T.RANGE, T.MAX_OF, T.MIN_OF):
                inner = self.parse_duration_function()
                outer = DurationExpr(TYPE_STR[op.typ], None, inner, pos=PositionRange(op.pos, inner.pos.end))
                self.experimental_duration(outer)
                return outer
            if nxt.typ is T.LEFT_PAREN:
                self.advance()
                inner = self.parse_duration(0)
                self.expect(T.RIGHT_PAREN)
                return self.apply_unary_duration(op, inner, wrapped=True)
            if nxt.typ in (T.ADD, T.SUB):
                operand = self.parse_duration_operand()
                return self.parse_duration_rest(self.apply_unary_duration(op, operand, wrapped=False), 0)
            self.unexpected()
        if tok.typ in (T.STEP, T.RANGE, T.MAX_OF, T.MIN_OF):
            return self.parse_duration_function()
        if tok.typ is T.LEFT_PAREN:
            return self.parse_duration_rest(self.parse_paren_duration(check=True), 0)
        self.unexpected()
        raise AssertionError("unreachable")

    def parse_duration(self, min_prec: int) -> Expr:
        """A duration expression with + - * / % ^ (upstream's duration_expr)."""
        self._nest()
        result = self.parse_duration_rest(self.parse_duration_operand(), min_prec)
        self.nesting -= 1
        return result

    def parse_duration_rest(self, lhs: Expr, min_prec: int) -> Expr:
        while True:
            op = self.peek()
            prec = _DURATION_PRECEDENCE.get(op.typ)
            if prec is None or prec < min_prec:
                return lhs
            self.advance()
            rhs = self.parse_duration(prec if op.typ is T.POW else prec + 1)
            self.experimental_duration(lhs)
            if op.typ in (T.DIV, T.MOD) and isinstance(rhs, NumberLiteral) and rhs.val == 0:
                self.error(
                    PositionRange(op.pos, op.end), "division by zero" if op.typ is T.DIV else "modulo by zero"
                )
                lhs = NumberLiteral(0.0)
                continue
            lhs = DurationExpr(TYPE_STR[op.typ], lhs, rhs, pos=PositionRange(lhs.pos.start, rhs.pos.end))

    def parse_duration_operand(self) -> Expr:
        tok = self.peek()
        if tok.typ in (T.ADD, T.SUB):
            ops: list[Item] = []
            while self.peek().typ in (T.ADD, T.SUB):
                ops.append(self.advance())
            expr = self.parse_duration_rest(self.parse_duration_atom(), _POW_PRECEDENCE)
            for op in reversed(ops):
                expr = self.apply_unary_duration(op, expr, wrapped=False)
            return expr
        return self.parse_duration_atom()

    def parse_duration_atom(self) -> Expr:
        tok = self.peek()
        if tok.typ in _NUMBERS:
            return self.duration_literal(self.advance())
        if tok.typ in (T.STEP, T.RANGE, T.MAX_OF, T.MIN_OF):
            return self.parse_duration_function()
        if tok.typ is T.LEFT_PAREN:
            return self.parse_paren_duration(check=True)
        self.unexpected()
        raise AssertionError("unreachable")

    def parse_duration_function(self) -> DurationExpr:
        tok = self.advance()
        self.expect(T.LEFT_PAREN)
        if tok.typ in (T.STEP, T.RANGE):
            close = self.expect(T.RIGHT_PAREN)
            de = DurationExpr(TYPE_STR[tok.typ], pos=PositionRange(tok.pos, close.end))
        else:
            lhs = self.parse_duration(0)
            self.expect(T.COMMA)
            rhs = self.parse_duration(0)
            close = self.expect(T.RIGHT_PAREN)
            de = DurationExpr(TYPE_STR[tok.typ], lhs, rhs, pos=PositionRange(tok.pos, close.end))
        self.experimental_duration(de)
        return de

    def parse_paren_duration(self, *, check: bool) -> Expr:
        lparen = self.advance()
        inner = self.parse_duration(0)
        rparen = self.expect(T.RIGHT_PAREN)
        if check:
            self.experimental_duration(inner)
        return self.wrap_paren_duration(inner, lparen.pos, rparen.end)

    @staticmethod
    def wrap_paren_duration(expr: Expr, start: int, end: int) -> DurationExpr:
        if isinstance(expr, DurationExpr):
            return replace(expr, wrapped=True)
        return DurationExpr("+", None, expr, True, PositionRange(start, end))

    def apply_unary_duration(self, op: Item, expr: Expr, *, wrapped: bool) -> Expr:
        if wrapped:
            expr = self.wrap_paren_duration(expr, expr.pos.start, expr.pos.end)
        if isinstance(expr, DurationExpr):
            if op.typ is T.SUB:
                return DurationExpr("-", None, expr, pos=PositionRange(op.pos, expr.pos.end))
            return expr
        assert isinstance(expr, NumberLiteral)
        val = -expr.val if op.typ is T.SUB else expr.val
        if abs(val) > _MAX_DURATION_SECONDS:
            self.error(PositionRange(op.pos, op.end), "duration out of range")
            return NumberLiteral(0.0)
        return NumberLiteral(val, expr.duration, PositionRange(op.pos, expr.pos.end))

    # -- selectors -------------------------------------------------------------------------

    def parse_vector_selector(self, name_item: Item | None) -> VectorSelector:
        name = name_item.val if name_item is not None else ""
        start = name_item.pos if name_item is not None else self.peek().pos
        matchers: list[Matcher] = []
        if self.peek().typ is T.LEFT_BRACE:
            matchers = self.parse_label_matchers()
        if name:
            matchers.append(Matcher(MatchType.EQUAL, METRIC_NAME, name))
        return VectorSelector(name, tuple(matchers), pos=PositionRange(start, self.last_end))

    def parse_label_matchers(self) -> list[Matcher]:
        self.advance()
        matchers: list[Matcher] = []
        if self.peek().typ is T.RIGHT_BRACE:
            self.advance()
            return matchers
        while True:
            matcher = self.parse_label_matcher()
            if matcher is not None:
                matchers.append(matcher)
            tok = self.peek()
            if tok.typ is T.COMMA:
                self.advance()
                if self.peek().typ is T.RIGHT_BRACE:
                    self.advance()
                    return matchers
            elif tok.typ is T.RIGHT_BRACE:
                self.advance()
                return matchers
            else:
                self.unexpected(("label matching", '"," or "}"'))

    def parse_label_matcher(self) -> Matcher | None:
        tok = self.peek()
        if tok.typ is T.IDENTIFIER:
            self.advance()
            name = tok.val
            if self.peek().typ not in _MATCH_OPS:
                self.unexpected(("label matching", "label matching operator"))
        elif tok.typ is T.STRING:
            self.advance()
            name = unquote(tok.val)
            if self.peek().typ not in _MATCH_OPS:
                return self.new_matcher(MatchType.EQUAL, METRIC_NAME, name, tok, tok)
        else:
            self.unexpected(("label matching", 'identifier or "}"'))
        op = self.advance()
        if self.peek().typ is not T.STRING:
            self.unexpected(("label matching", "string"))
        value = self.advance()
        return self.new_matcher(_MATCH_OPS[op.typ], name, unquote(value.val), tok, value)

    def new_matcher(self, typ: MatchType, name: str, value: str, first: Item, last: Item) -> Matcher | None:
        try:
            return Matcher(typ, name, value)
        except RegexError as exc:
            self.error(PositionRange(first.pos, last.end), go_regex_error(str(exc)))
            return None

    # -- calls and aggregations ------------------------------------------------------------

    def parse_call_args(self) -> list[Expr]:
        self.advance()  # "("
        args: list[Expr] = []
        if self.peek().typ is T.RIGHT_PAREN:
            self.advance()
            return args
        while True:
            args.append(self.parse_expr(0))
            tok = self.peek()
            if tok.typ is T.COMMA:
                comma = self.advance()
                if self.peek().typ is T.RIGHT_PAREN:
                    self.error(
                        PositionRange(comma.pos, comma.end),
                        "trailing commas not allowed in function call args",
                    )
                    self.advance()
                    return args
            elif tok.typ is T.RIGHT_PAREN:
                self.advance()
                return args
            else:
                self.unexpected()

    def parse_call(self) -> Expr:
        name = self.advance()
        func = self.functions.get(name.val)
        name_pos = PositionRange(name.pos, name.end)
        if func is None:
            self.error(name_pos, f"unknown function with name {go_quote(name.val)}")
            func = Function(name.val, (), ValueType.VECTOR)
        elif func.experimental and FEATURE_EXPERIMENTAL_FUNCTIONS not in self.features:
            self.error(name_pos, f"function {go_quote(name.val)} is not enabled")
        args = self.parse_call_args()
        return Call(func, tuple(args), PositionRange(name.pos, self.last_end))

    def parse_aggregation(self) -> Expr:
        op = self.advance()
        self.contexts.append(_CTX_AGGREGATION)
        grouping: tuple[str, ...] = ()
        without = False
        modifier_first = self.peek().typ in (T.BY, T.WITHOUT)
        if modifier_first:
            without = self.advance().typ is T.WITHOUT
            grouping = self.parse_grouping_labels()
            if self.peek().typ is not T.LEFT_PAREN:
                self.unexpected()
        args = self.parse_call_args()
        self.contexts.pop()
        if not modifier_first and self.peek().typ in (T.BY, T.WITHOUT):
            without = self.advance().typ is T.WITHOUT
            grouping = self.parse_grouping_labels()
        pos = PositionRange(op.pos, self.last_end)
        name = TYPE_STR[op.typ]
        placeholder = NumberLiteral(0.0, pos=pos)
        if not args:
            self.error(pos, "no arguments for aggregate expression provided")
            return placeholder
        wanted = 1
        param: Expr | None = None
        if op.typ in AGGREGATORS_WITH_PARAM_ITEMS:
            if op.typ in EXPERIMENTAL_AGGREGATORS and FEATURE_EXPERIMENTAL_FUNCTIONS not in self.features:
                self.error(
                    pos,
                    f"{name}() is experimental and must be enabled with "
                    "--enable-feature=promql-experimental-functions",
                )
                return placeholder
            wanted = 2
            param = args[0]
        if len(args) != wanted:
            self.error(
                pos,
                "wrong number of arguments for aggregate expression provided, "
                f"expected {wanted}, got {len(args)}",
            )
            return placeholder
        return AggregateExpr(name, args[wanted - 1], param, grouping, without, pos)

    def parse_grouping_labels(self) -> tuple[str, ...]:
        if self.peek().typ is not T.LEFT_PAREN:
            self.unexpected(("grouping opts", '"("'))
        self.advance()
        labels: list[str] = []
        if self.peek().typ is T.RIGHT_PAREN:
            self.advance()
            return ()
        while True:
            tok = self.peek()
            if tok.typ in _MAYBE_LABEL:
                label = tok.val
            elif tok.typ is T.STRING:
                label = unquote(tok.val)
                if label == "" or not _valid_utf8(label):
                    self.error(
                        PositionRange(tok.pos, tok.end), f"invalid label name for grouping: {go_quote(label)}"
                    )
            else:
                self.unexpected(("grouping opts", "label"))
            self.advance()
            labels.append(label)
            tok = self.peek()
            if tok.typ is T.COMMA:
                self.advance()
                if self.peek().typ is T.RIGHT_PAREN:
                    self.advance()
                    return tuple(labels)
            elif tok.typ is T.RIGHT_PAREN:
                self.advance()
                return tuple(labels)
            else:
                self.unexpected(("grouping opts", '"," or ")"'))

    # -- binary operators ------------------------------------------------------------------

    def parse_bin_modifiers(self) -> _Modifiers:
        mods = _Modifiers()
        if self.peek().typ is T.BOOL:
            self.advance()
            mods.return_bool = True
        if self.peek().typ in (T.ON, T.IGNORING):
            mods.on = self.advance().typ is T.ON
            mods.matching_labels = self.parse_grouping_labels()
            if self.peek().typ in (T.GROUP_LEFT, T.GROUP_RIGHT):
                left = self.advance().typ is T.GROUP_LEFT
                mods.card = Cardinality.MANY_TO_ONE if left else Cardinality.ONE_TO_MANY
                if self.peek().typ is T.LEFT_PAREN:
                    mods.include = self.parse_grouping_labels()
        typ = self.peek().typ
        if typ is T.FILL:
            self.advance()
            mods.fill_lhs = mods.fill_rhs = self.parse_fill_value()
        elif typ in (T.FILL_LEFT, T.FILL_RIGHT):
            self.advance()
            value = self.parse_fill_value()
            if typ is T.FILL_LEFT:
                mods.fill_lhs = value
            else:
                mods.fill_rhs = value
            other = T.FILL_RIGHT if typ is T.FILL_LEFT else T.FILL_LEFT
            if self.peek().typ is other:
                self.advance()
                value = self.parse_fill_value()
                if other is T.FILL_LEFT:
                    mods.fill_lhs = value
                else:
                    mods.fill_rhs = value
        return mods

    def parse_fill_value(self) -> float:
        self.expect(T.LEFT_PAREN)
        sign = 1.0
        if self.peek().typ in (T.ADD, T.SUB):
            sign = -1.0 if self.advance().typ is T.SUB else 1.0
        if self.peek().typ not in _NUMBERS:
            self.unexpected()
        value = self.number_literal(self.advance()).val * sign
        self.expect(T.RIGHT_PAREN)
        return value

    def new_binary(self, lhs: Expr, op: Item, mods: _Modifiers, rhs: Expr) -> BinaryExpr:
        matching = VectorMatching(
            mods.card, mods.matching_labels, mods.on, mods.include, mods.fill_lhs, mods.fill_rhs
        )
        expr = BinaryExpr(
            TYPE_STR[op.typ], lhs, rhs, matching, mods.return_bool, PositionRange(lhs.pos.start, rhs.pos.end)
        )
        if FEATURE_BINOP_FILL_MODIFIERS not in self.features and (
            mods.fill_lhs is not None or mods.fill_rhs is not None
        ):
            self.error(expr.pos, "binop fill modifiers are experimental and not enabled")
        return expr


AGGREGATORS_WITH_PARAM_ITEMS = frozenset(
    {T.TOPK, T.BOTTOMK, T.COUNT_VALUES, T.QUANTILE, T.LIMITK, T.LIMIT_RATIO}
)


def _valid_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Type checking (upstream's checkAST).


class _Checker:
    def __init__(self, text: str, errors: list[ParseErr]) -> None:
        self.text = text
        self.errors = errors

    def error(self, pos: PositionRange, message: str) -> None:
        self.errors.append(ParseErr(pos, message, self.text))

    def expect_type(self, node: Expr, want: ValueType, context: str) -> Expr:
        node, got = self.check(node)
        if got is not want:
            self.error(node.pos, f"expected type {want.documented} in {context}, got {got.documented}")
        return node

    def op_range(self, node: BinaryExpr) -> PositionRange:
        text = self.text
        start = min(node.lhs.pos.end, len(text) - 1)
        while 0 <= start < len(text) - 1 and text[start] in " \t\n\r":
            start += 1
        end = node.rhs.pos.start - 1
        while end > start and text[end] in " \t\n\r":
            end -= 1
        return PositionRange(max(start, 0), max(end, 0))

    def check(self, node: Expr) -> tuple[Expr, ValueType]:
        match node:
            case AggregateExpr():
                inner = self.expect_type(node.expr, ValueType.VECTOR, "aggregation expression")
                param = node.param
                if node.op in ("topk", "bottomk", "quantile", "limitk", "limit_ratio"):
                    assert param is not None
                    param = self.expect_type(param, ValueType.SCALAR, "aggregation parameter")
                elif node.op == "count_values":
                    assert param is not None
                    param = self.expect_type(param, ValueType.STRING, "aggregation parameter")
                node = replace(node, expr=inner, param=param)
            case BinaryExpr():
                node = self.check_binary(node)
            case Call():
                node = self.check_call(node)
            case ParenExpr():
                node = replace(node, expr=self.check(node.expr)[0])
            case UnaryExpr():
                inner, typ = self.check(node.expr)
                if typ not in (ValueType.SCALAR, ValueType.VECTOR):
                    self.error(
                        node.pos,
                        "unary expression only allowed on expressions of type scalar or instant vector, "
                        f"got {go_quote(typ.documented)}",
                    )
                node = replace(node, expr=inner)
            case SubqueryExpr():
                inner, typ = self.check(node.expr)
                if typ is not ValueType.VECTOR:
                    self.error(
                        node.pos, f"subquery is only allowed on instant vector, got {typ.value} instead"
                    )
                node = replace(node, expr=inner)
            case MatrixSelector():
                node = replace(node, vector_selector=self.check(node.vector_selector)[0])
            case VectorSelector():
                self.check_selector(node)
            case NumberLiteral() | StringLiteral() | StepInvariantExpr():
                pass
            case _:
                self.error(node.pos, f"unknown node type: {type(node).__name__}")
        return node, node.type

    def check_selector(self, node: VectorSelector) -> None:
        if node.name:
            for m in node.matchers[:-1]:
                if m.name == METRIC_NAME:
                    self.error(
                        node.pos,
                        f"metric name must not be set twice: {go_quote(node.name)} or {go_quote(m.value)}",
                    )
            return
        if not node.bypass_empty_matcher_check and all(m.matches("") for m in node.matchers):
            self.error(node.pos, "vector selector must contain at least one non-empty matcher")

    def check_binary(self, node: BinaryExpr) -> BinaryExpr:
        lhs, lt = self.check(node.lhs)
        rhs, rt = self.check(node.rhs)
        node = replace(node, lhs=lhs, rhs=rhs)
        matching = node.matching or VectorMatching()
        if node.return_bool and node.op not in COMPARISON_OPS:
            self.error(self.op_range(node), "bool modifier can only be used on comparison operators")
        if node.op in COMPARISON_OPS and not node.return_bool and lt is rt is ValueType.SCALAR:
            self.error(self.op_range(node), "comparisons between scalars must use BOOL modifier")
        if node.op in SET_OPS and matching.card is Cardinality.ONE_TO_ONE:
            matching = replace(matching, card=Cardinality.MANY_TO_MANY)
        if matching.on:
            for label in matching.matching_labels:
                if label in matching.include:
                    self.error(
                        self.op_range(node),
                        f"label {go_quote(label)} must not occur in ON and GROUP clause at once",
                    )
        if lt not in (ValueType.SCALAR, ValueType.VECTOR):
            self.error(lhs.pos, "binary expression must contain only scalar and instant vector types")
        if rt not in (ValueType.SCALAR, ValueType.VECTOR):
            self.error(rhs.pos, "binary expression must contain only scalar and instant vector types")
        has_fill = matching.fill_lhs is not None or matching.fill_rhs is not None
        result: VectorMatching | None = matching
        if lt is not ValueType.VECTOR or rt is not ValueType.VECTOR:
            if matching.matching_labels:
                self.error(node.pos, "vector matching only allowed between instant vectors")
            if has_fill:
                self.error(node.pos, "filling in missing series only allowed between instant vectors")
            result = None
        elif node.op in SET_OPS:
            if matching.card in (Cardinality.ONE_TO_MANY, Cardinality.MANY_TO_ONE):
                self.error(node.pos, f"no grouping allowed for {go_quote(node.op)} operation")
            if matching.card is not Cardinality.MANY_TO_MANY:
                self.error(node.pos, "set operations must always be many-to-many")
            if has_fill:
                self.error(node.pos, "filling in missing series not allowed for set operators")
        if ValueType.SCALAR in (lt, rt) and node.op in SET_OPS:
            self.error(node.pos, f"set operator {go_quote(node.op)} not allowed in binary scalar expression")
        return replace(node, matching=result)

    def check_call(self, node: Call) -> Call:
        func, args = node.func, list(node.args)
        nargs = len(func.arg_types)
        if func.variadic == 0:
            if nargs != len(args):
                self.error(
                    node.pos,
                    f"expected {nargs} argument(s) in call to {go_quote(func.name)}, got {len(args)}",
                )
        else:
            least = nargs - 1
            if least > len(args):
                name = go_quote(func.name)
                self.error(
                    node.pos, f"expected at least {least} argument(s) in call to {name}, got {len(args)}"
                )
            elif func.variadic > 0 and least + func.variadic < len(args):
                self.error(
                    node.pos,
                    f"expected at most {least + func.variadic} argument(s) in call to {go_quote(func.name)}, "
                    f"got {len(args)}",
                )
        if func.name == "info" and len(args) > 1:
            second = args[1]
            if second.type is not ValueType.VECTOR:
                self.error(
                    node.pos,
                    f"expected type instant vector in call to function {go_quote(func.name)}, "
                    f"got {second.type.documented}",
                )
            if isinstance(second, VectorSelector) and second.name:
                self.error(second.pos, "expected label selectors only, got vector selector instead")
            elif isinstance(second, VectorSelector):
                args[1] = replace(second, bypass_empty_matcher_check=True)
            else:
                self.error(second.pos, "expected label selectors only")
        for i, arg in enumerate(args):
            idx = i
            if idx >= nargs:
                if func.variadic == 0:
                    break
                idx = nargs - 1
            new_arg, typ = self.check(arg)
            args[i] = new_arg
            want = func.arg_types[idx]
            if typ is not want:
                self.error(
                    arg.pos,
                    f"expected type {want.documented} in call to function {go_quote(func.name)}, "
                    f"got {typ.documented}",
                )
        return replace(node, args=tuple(args))


def _tree_depth(expr: Expr) -> int:
    deepest = 0
    stack: list[tuple[Expr, int]] = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        match node:
            case AggregateExpr(expr=e, param=p):
                stack.append((e, depth + 1))
                if p is not None:
                    stack.append((p, depth + 1))
            case BinaryExpr(lhs=lhs, rhs=rhs):
                stack.extend(((lhs, depth + 1), (rhs, depth + 1)))
            case Call(args=args):
                stack.extend((a, depth + 1) for a in args)
            case SubqueryExpr(expr=e) | ParenExpr(expr=e) | UnaryExpr(expr=e):
                stack.append((e, depth + 1))
            case MatrixSelector(vector_selector=vs):
                stack.append((vs, depth + 1))
    return deepest


def _run(text: str, body: Callable[[_Parser], Expr], features: frozenset[str]) -> Expr:
    parser = _Parser(text, features)
    expr: Expr | None = None
    try:
        expr = body(parser)
    except _Abort:
        pass
    except RecursionError:
        parser.errors.append(ParseErr(PositionRange(0, len(text)), "expression nesting too deep", text))
    if not parser.errors and expr is not None and _tree_depth(expr) > MAX_TREE_DEPTH:
        parser.errors.append(
            ParseErr(
                PositionRange(0, len(text)), f"expression nesting too deep (limit {MAX_TREE_DEPTH})", text
            )
        )
    if parser.errors or expr is None:
        raise ParseError(parser.errors or [ParseErr(PositionRange(0, 0), "unexpected error", text)])
    return expr


def parse_expr(text: str, *, features: frozenset[str] = DEFAULT_FEATURES) -> Expr:
    """Parse and type-check a PromQL expression (upstream's ``ParseExpr``).

    ``features`` are Prometheus --enable-feature names (see ``ALL_FEATURES``). Raises :class:`ParseError`,
    whose ``str()`` is Prometheus's message (``1:5: parse error: ...``). Node and error positions are
    character offsets into ``text``; the ``line:col`` prefix counts UTF-8 bytes as Prometheus does.
    """
    expr = _run(text, _Parser.parse_query, features)
    errors: list[ParseErr] = []
    try:
        expr = _Checker(text, errors).check(expr)[0]
    except RecursionError:
        errors.append(ParseErr(PositionRange(0, len(text)), "expression nesting too deep", text))
    if errors:
        raise ParseError(errors)
    return expr


def parse_duration_expr(text: str, *, features: frozenset[str] = DEFAULT_FEATURES) -> Expr:
    """Parse a standalone duration expression (``5m``, ``1m0s``, ``5m+1m``, ``step()*2``).

    The text is lexed as the inside of a range selector. Returns a NumberLiteral (seconds; ``duration``
    set when written with units) or a DurationExpr.
    """

    def body(parser: _Parser) -> Expr:
        parser.items = [it for it in lex(text, duration_only=True) if it.typ is not T.COMMENT]
        if parser.peek().typ is T.EOF:
            parser.error(PositionRange(0, 0), "no expression found in input")
            raise _Abort
        expr = parser.parse_duration(0)
        if parser.peek().typ is not T.EOF:
            parser.unexpected(("", ""))
        return expr

    return _run(text, body, features)


# ---------------------------------------------------------------------------------------------
# Series descriptions (the promqltest / promtool ``load`` notation).

STALE_NAN_BITS = 0x7FF0000000000002
# Bound on the values one series description may expand to (repetitions allocate eagerly).
MAX_SERIES_VALUES = 1_000_000
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]


def is_stale_nan(value: float) -> bool:
    """Whether a float is Prometheus's staleness marker (a NaN with a specific bit pattern)."""
    return struct.unpack("<Q", struct.pack("<d", value))[0] == STALE_NAN_BITS


@dataclass(frozen=True, slots=True)
class SeriesHistogram:
    """A float native histogram written in a series description (``{{schema:1 sum:3 buckets:[1 2]}}``).

    Spans are ``(offset, length)`` pairs as in Prometheus; buckets are absolute counts.
    ``counter_reset_hint`` is ``unknown``, ``reset``, ``not_reset`` or ``gauge``.
    """

    schema: int = 0
    count: float = 0.0
    sum: float = 0.0
    zero_threshold: float = 0.0
    zero_count: float = 0.0
    positive_spans: tuple[tuple[int, int], ...] = ()
    positive_buckets: tuple[float, ...] = ()
    negative_spans: tuple[tuple[int, int], ...] = ()
    negative_buckets: tuple[float, ...] = ()
    custom_values: tuple[float, ...] = ()
    counter_reset_hint: str = "unknown"

    @property
    def uses_custom_buckets(self) -> bool:
        return self.schema == -53


@dataclass(frozen=True, slots=True)
class SequenceValue:
    """One point of a series description: a float, an omitted point (``_``) or a histogram."""

    value: float = 0.0
    omitted: bool = False
    histogram: SeriesHistogram | None = None
    counter_reset_hint_set: bool = False

    @property
    def stale(self) -> bool:
        return self.histogram is None and not self.omitted and is_stale_nan(self.value)


def _absolute(spans: tuple[tuple[int, int], ...], buckets: tuple[float, ...]) -> dict[int, float]:
    out: dict[int, float] = {}
    idx = 0
    pos = 0
    for offset, length in spans:
        idx += offset
        for _ in range(length):
            if pos < len(buckets):
                out[idx] = out.get(idx, 0.0) + buckets[pos]
            pos += 1
            idx += 1
    return out


def _to_spans(buckets: dict[int, float]) -> tuple[tuple[tuple[int, int], ...], tuple[float, ...]]:
    spans: list[list[int]] = []
    values: list[float] = []
    prev_end = 0
    for idx in sorted(buckets):
        if spans and idx == prev_end:
            spans[-1][1] += 1
        else:
            spans.append([idx - prev_end if spans else idx, 1])
        prev_end = idx + 1
        values.append(buckets[idx])
    return tuple((o, n) for o, n in spans), tuple(values)


def _reduce(buckets: dict[int, float], delta: int) -> dict[int, float]:
    if delta <= 0:
        return buckets
    out: dict[int, float] = {}
    for idx, value in buckets.items():
        target = ((idx - 1) >> delta) + 1
        out[target] = out.get(target, 0.0) + value
    return out


def _combine_hints(a: str, b: str) -> str:
    if a == b or a == "gauge":
        return a
    if b == "gauge":
        return "gauge"
    return "unknown"


def combine_histograms(base: SeriesHistogram, other: SeriesHistogram, sign: float) -> SeriesHistogram:
    """``base + other`` (sign 1) or ``base - other`` (sign -1) in base's schema, as FloatHistogram.Add/Sub."""
    if base.uses_custom_buckets != other.uses_custom_buckets:
        raise ValueError(
            "cannot apply this operation on histograms with a mix of exponential and custom bucket schemas"
        )
    if base.uses_custom_buckets and base.custom_values != other.custom_values:
        raise ValueError(
            "cannot apply this operation on custom buckets histograms with different custom bounds"
        )
    delta = 0 if base.uses_custom_buckets else other.schema - base.schema
    result: dict[str, tuple[tuple[tuple[int, int], ...], tuple[float, ...]]] = {}
    for side in ("positive", "negative"):
        mine = _absolute(getattr(base, f"{side}_spans"), getattr(base, f"{side}_buckets"))
        theirs = _reduce(_absolute(getattr(other, f"{side}_spans"), getattr(other, f"{side}_buckets")), delta)
        for idx, value in theirs.items():
            mine[idx] = mine.get(idx, 0.0) + sign * value
        result[side] = _to_spans(mine)
    return SeriesHistogram(
        schema=base.schema,
        count=base.count + sign * other.count,
        sum=base.sum + sign * other.sum,
        zero_threshold=max(base.zero_threshold, other.zero_threshold),
        zero_count=base.zero_count + sign * other.zero_count,
        positive_spans=result["positive"][0],
        positive_buckets=result["positive"][1],
        negative_spans=result["negative"][0],
        negative_buckets=result["negative"][1],
        custom_values=base.custom_values,
        counter_reset_hint=_combine_hints(base.counter_reset_hint, other.counter_reset_hint),
    )


_HINT_NAMES = {
    T.UNKNOWN_COUNTER_RESET: "unknown",
    T.COUNTER_RESET: "reset",
    T.NOT_COUNTER_RESET: "not_reset",
    T.GAUGE_TYPE: "gauge",
}
_DESC_KEYS = {
    T.SUM_DESC: "sum",
    T.COUNT_DESC: "count",
    T.SCHEMA_DESC: "schema",
    T.OFFSET_DESC: "offset",
    T.NEGATIVE_OFFSET_DESC: "n_offset",
    T.BUCKETS_DESC: "buckets",
    T.NEGATIVE_BUCKETS_DESC: "n_buckets",
    T.ZERO_BUCKET_DESC: "z_bucket",
    T.ZERO_BUCKET_WIDTH_DESC: "z_bucket_w",
    T.CUSTOM_VALUES_DESC: "custom_values",
    T.COUNTER_RESET_HINT_DESC: "counter_reset_hint",
}


class _SeriesParser(_Parser):
    def __init__(self, text: str) -> None:
        super().__init__(text, ALL_FEATURES)
        self.items = [it for it in lex(text, series_desc=True) if it.typ is not T.COMMENT]
        self.hint_set = False

    def parse_series(self) -> tuple[dict[str, str], list[SequenceValue]]:
        labels: dict[str, str] = {}
        tok = self.peek()
        if tok.typ in _METRIC_KEYWORDS:
            self.advance()
            labels[METRIC_NAME] = tok.val
        if self.peek().typ is T.LEFT_BRACE:
            labels.update(self.parse_label_set())
        values: list[SequenceValue] = []
        while True:
            tok = self.peek()
            if tok.typ is T.EOF:
                return labels, values
            if tok.typ is not T.SPACE:
                self.unexpected(("series values", ""))
            self.advance()
            if self.peek().typ not in (T.EOF, T.SPACE):
                values.extend(self.parse_series_item())
                if len(values) > MAX_SERIES_VALUES:
                    self.error(
                        PositionRange(tok.pos, len(self.text)), f"more than {MAX_SERIES_VALUES} series values"
                    )
                    raise _Abort

    def parse_label_set(self) -> dict[str, str]:
        self.advance()
        out: dict[str, str] = {}
        if self.peek().typ is T.RIGHT_BRACE:
            self.advance()
            return out
        while True:
            tok = self.peek()
            if tok.typ in (T.IDENTIFIER, T.STRING):
                self.advance()
                name = tok.val if tok.typ is T.IDENTIFIER else unquote(tok.val)
                if self.peek().typ is T.EQL:
                    self.advance()
                    if self.peek().typ is not T.STRING:
                        self.unexpected(("label set", "string"))
                    out[name] = unquote(self.advance().val)
                elif tok.typ is T.STRING:
                    out[METRIC_NAME] = name
                else:
                    self.unexpected(("label set", '"="'))
            else:
                self.unexpected(("label set", 'identifier or "}"'))
            tok = self.peek()
            if tok.typ is T.COMMA:
                self.advance()
                if self.peek().typ is T.RIGHT_BRACE:
                    self.advance()
                    return out
            elif tok.typ is T.RIGHT_BRACE:
                self.advance()
                return out
            else:
                self.unexpected(("label set", '"," or "}"'))

    def parse_uint(self) -> int:
        tok = self.peek()
        if tok.typ is not T.NUMBER:
            self.unexpected(("series values", ""))
        self.advance()
        if not tok.val.isdigit() or not tok.val.isascii():
            self.error(
                PositionRange(tok.pos, tok.end),
                "invalid repetition in series values: "
                f"strconv.ParseUint: parsing {go_quote(tok.val)}: invalid syntax",
            )
            return 0
        return int(tok.val)

    def parse_count(self) -> int:
        """A repetition count; counts that would expand past MAX_SERIES_VALUES are refused."""
        tok = self.peek()
        count = self.parse_uint()
        if count > MAX_SERIES_VALUES:
            self.error(
                PositionRange(tok.pos, tok.end),
                f"invalid repetition in series values: {count} exceeds the limit of {MAX_SERIES_VALUES}",
            )
            raise _Abort
        return count

    def parse_int(self) -> int:
        if self.peek().typ is T.SUB:
            self.advance()
            return -self.parse_uint()
        return self.parse_uint()

    def parse_plain_number(self) -> float:
        tok = self.peek()
        if tok.typ not in _NUMBERS:
            self.unexpected()
        return self.number_literal(self.advance()).val

    def parse_signed_number(self) -> float:
        if self.peek().typ in (T.ADD, T.SUB):
            sign = -1.0 if self.advance().typ is T.SUB else 1.0
            return sign * self.parse_plain_number()
        return self.parse_plain_number()

    def parse_series_item(self) -> list[SequenceValue]:
        tok = self.peek()
        self.contexts.append(("series values", ""))
        try:
            if tok.typ is T.BLANK:
                self.advance()
                if self.peek().typ is T.TIMES:
                    self.advance()
                    return [SequenceValue(omitted=True) for _ in range(self.parse_count())]
                return [SequenceValue(omitted=True)]
            if tok.typ is T.OPEN_HIST:
                return self.parse_histogram_item()
            if tok.typ is T.IDENTIFIER:
                self.advance()
                if tok.val != "stale":
                    self.unexpected(("series values", 'number or "stale"'))
                value = STALE_NAN
            else:
                value = self.parse_signed_number()
            nxt = self.peek().typ
            if nxt is T.TIMES:
                self.advance()
                return [SequenceValue(value) for _ in range(self.parse_count() + 1)]
            if nxt in (T.ADD, T.SUB):
                step = self.parse_signed_number()
                if self.peek().typ is not T.TIMES:
                    self.unexpected()
                self.advance()
                out = []
                for _ in range(self.parse_count() + 1):
                    out.append(SequenceValue(value))
                    value += step
                return out
            return [SequenceValue(value)]
        finally:
            self.contexts.pop()

    def parse_histogram_item(self) -> list[SequenceValue]:
        base = self.parse_histogram()
        base_hint = self.hint_set
        nxt = self.peek().typ
        if nxt is T.TIMES:
            self.advance()
            return [SequenceValue(histogram=base, counter_reset_hint_set=base_hint)] * (
                self.parse_count() + 1
            )
        if nxt in (T.ADD, T.SUB):
            sign = -1.0 if self.advance().typ is T.SUB else 1.0
            inc = self.parse_histogram()
            hint = self.hint_set
            self.expect(T.TIMES)
            times = self.parse_count()
            out = [SequenceValue(histogram=base, counter_reset_hint_set=hint)]
            cur = base
            last = self.items[self.i - 1]
            for _ in range(times):
                if cur.schema > inc.schema:
                    self.error(
                        PositionRange(last.pos, last.end),
                        f"error combining histograms: cannot merge from schema {inc.schema} to {cur.schema}",
                    )
                    raise _Abort
                try:
                    cur = combine_histograms(cur, inc, sign)
                except ValueError as exc:
                    self.error(PositionRange(last.pos, last.end), str(exc))
                    raise _Abort from None
                out.append(SequenceValue(histogram=cur, counter_reset_hint_set=hint))
            return out
        return [SequenceValue(histogram=base, counter_reset_hint_set=base_hint)]

    def parse_bucket_set(self) -> tuple[float, ...]:
        self.expect(T.LEFT_BRACKET)
        values = [self.parse_signed_number()]
        while self.peek().typ is T.SPACE:
            self.advance()
            if self.peek().typ is T.RIGHT_BRACKET:
                break
            values.append(self.parse_signed_number())
        self.expect(T.RIGHT_BRACKET)
        return tuple(values)

    def parse_histogram(self) -> SeriesHistogram:
        self.advance()  # "{{"
        desc: dict[str, object] = {}
        key_context = ("histogram description", "histogram description key, e.g. buckets:[5 10 7]")
        if self.peek().typ is T.SPACE:
            self.advance()
            if self.peek().typ is not T.CLOSE_HIST:
                self.unexpected()
        first = True
        while self.peek().typ is not T.CLOSE_HIST:
            tok = self.peek()
            key = _DESC_KEYS.get(tok.typ)
            if key is None:
                self.unexpected(None if first else key_context)
            assert key is not None
            self.advance()
            # Upstream recovers from errors in the first item as a bad series value, later ones as a bad
            # histogram description.
            self.contexts.append(("series values", "") if first else key_context)
            self.expect(T.COLON)
            desc_value = self.parse_histogram_value(key)
            self.contexts.pop()
            first = False
            if key in desc:
                self.error(PositionRange(0, 0), f'duplicate key "{key}" in histogram')
            else:
                desc[key] = desc_value
            if self.peek().typ is T.SPACE:
                self.advance()
            elif self.peek().typ is not T.CLOSE_HIST:
                self.unexpected(key_context)
        self.advance()
        self.hint_set = "counter_reset_hint" in desc
        return self.build_histogram(desc)

    def parse_histogram_value(self, key: str) -> object:
        if key in ("schema", "offset", "n_offset"):
            return self.parse_int()
        if key in ("buckets", "n_buckets", "custom_values"):
            return self.parse_bucket_set()
        if key == "counter_reset_hint":
            hint = self.peek()
            if hint.typ not in _HINT_NAMES:
                self.unexpected()
            self.advance()
            return _HINT_NAMES[hint.typ]
        if key == "z_bucket_w":
            return self.parse_plain_number()
        return self.parse_signed_number()

    @staticmethod
    def build_histogram(desc: dict[str, object]) -> SeriesHistogram:
        def spans(buckets_key: str, offset_key: str) -> tuple[tuple[tuple[int, int], ...], tuple[float, ...]]:
            buckets = desc.get(buckets_key, ())
            assert isinstance(buckets, tuple)
            offset = desc.get(offset_key, 0)
            assert isinstance(offset, int)
            return (((offset, len(buckets)),) if buckets else ()), buckets

        pos_spans, pos_buckets = spans("buckets", "offset")
        neg_spans, neg_buckets = spans("n_buckets", "n_offset")
        return SeriesHistogram(
            schema=int(desc.get("schema", 0)),  # type: ignore[call-overload]
            count=float(desc.get("count", 0.0)),  # type: ignore[arg-type]
            sum=float(desc.get("sum", 0.0)),  # type: ignore[arg-type]
            zero_threshold=float(desc.get("z_bucket_w", 0.0)),  # type: ignore[arg-type]
            zero_count=float(desc.get("z_bucket", 0.0)),  # type: ignore[arg-type]
            positive_spans=pos_spans,
            positive_buckets=pos_buckets,
            negative_spans=neg_spans,
            negative_buckets=neg_buckets,
            custom_values=desc.get("custom_values", ()),  # type: ignore[arg-type]
            counter_reset_hint=str(desc.get("counter_reset_hint", "unknown")),
        )


def parse_series_desc(text: str) -> tuple[dict[str, str], list[SequenceValue]]:
    """Parse a series description such as ``metric{a="b"} 1+1x5 _ stale {{schema:1 sum:3}}x2``.

    Returns the labels (``__name__`` included) and the expanded values; ``aXn`` and ``a+bXn`` give
    n+1 values, ``_xn`` gives n omitted points. Raises :class:`ParseError`.
    """
    parser = _SeriesParser(text)
    result: tuple[dict[str, str], list[SequenceValue]] | None = None
    with contextlib.suppress(_Abort):
        result = parser.parse_series()
    if parser.errors or result is None:
        raise ParseError(parser.errors or [ParseErr(PositionRange(0, 0), "unexpected error", text)])
    return result


def parse_metric_selector(text: str) -> list[Matcher]:
    """Parse a ``match[]`` series selector (upstream's ParseMetricSelector) into its matchers."""

    def body(parser: _Parser) -> Expr:
        tok = parser.peek()
        if tok.typ is T.LEFT_BRACE:
            vs = parser.parse_vector_selector(None)
        elif tok.typ in _METRIC_KEYWORDS:
            parser.advance()
            vs = parser.parse_vector_selector(tok)
        else:
            parser.unexpected(("", ""))
            raise AssertionError("unreachable")
        if parser.peek().typ is not T.EOF:
            parser.unexpected(("", ""))
        return vs

    expr = _run(text, body, DEFAULT_FEATURES)
    assert isinstance(expr, VectorSelector)
    return list(expr.matchers)
