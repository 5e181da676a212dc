"""PromQL lexer: turns query text into items, with Prometheus's lexing rules and error texts.

The lexer is a state machine (one method per state) like upstream's, so that the token boundaries and
the lexer error messages match Prometheus exactly. Lexing stops at the first error, which becomes an
``ERROR`` item whose value is the message.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

from narthex.promql.errors import utf8_len
from narthex.util.gofmt import go_quote, is_go_print, quote_char

EOF_RUNE = ""  # What ``_next`` returns at the end of the input.
_RUNE_ERROR = "\ufffd"


class T(enum.Enum):
    """Item types."""

    # Plain items.
    EQL = enum.auto()
    BLANK = enum.auto()
    COLON = enum.auto()
    COMMA = enum.auto()
    COMMENT = enum.auto()
    DURATION = enum.auto()
    EOF = enum.auto()
    ERROR = enum.auto()
    IDENTIFIER = enum.auto()
    LEFT_BRACE = enum.auto()
    LEFT_BRACKET = enum.auto()
    LEFT_PAREN = enum.auto()
    OPEN_HIST = enum.auto()
    CLOSE_HIST = enum.auto()
    METRIC_IDENTIFIER = enum.auto()
    NUMBER = enum.auto()
    RIGHT_BRACE = enum.auto()
    RIGHT_BRACKET = enum.auto()
    RIGHT_PAREN = enum.auto()
    SEMICOLON = enum.auto()
    SPACE = enum.auto()
    STRING = enum.auto()
    TIMES = enum.auto()
    # Histogram descriptors.
    SUM_DESC = enum.auto()
    COUNT_DESC = enum.auto()
    SCHEMA_DESC = enum.auto()
    OFFSET_DESC = enum.auto()
    NEGATIVE_OFFSET_DESC = enum.auto()
    BUCKETS_DESC = enum.auto()
    NEGATIVE_BUCKETS_DESC = enum.auto()
    ZERO_BUCKET_DESC = enum.auto()
    ZERO_BUCKET_WIDTH_DESC = enum.auto()
    CUSTOM_VALUES_DESC = enum.auto()
    COUNTER_RESET_HINT_DESC = enum.auto()
    # Operators.
    ADD = enum.auto()
    DIV = enum.auto()
    EQLC = enum.auto()
    EQL_REGEX = enum.auto()
    GTE = enum.auto()
    GTR = enum.auto()
    TRIM_UPPER = enum.auto()
    TRIM_LOWER = enum.auto()
    LAND = enum.auto()
    LOR = enum.auto()
    LSS = enum.auto()
    LTE = enum.auto()
    LUNLESS = enum.auto()
    MOD = enum.auto()
    MUL = enum.auto()
    NEQ = enum.auto()
    NEQ_REGEX = enum.auto()
    POW = enum.auto()
    SUB = enum.auto()
    AT = enum.auto()
    ATAN2 = enum.auto()
    # Aggregators.
    AVG = enum.auto()
    BOTTOMK = enum.auto()
    COUNT = enum.auto()
    COUNT_VALUES = enum.auto()
    GROUP = enum.auto()
    MAX = enum.auto()
    MIN = enum.auto()
    QUANTILE = enum.auto()
    STDDEV = enum.auto()
    STDVAR = enum.auto()
    SUM = enum.auto()
    TOPK = enum.auto()
    LIMITK = enum.auto()
    LIMIT_RATIO = enum.auto()
    # Keywords.
    BOOL = enum.auto()
    BY = enum.auto()
    GROUP_LEFT = enum.auto()
    GROUP_RIGHT = enum.auto()
    FILL = enum.auto()
    FILL_LEFT = enum.auto()
    FILL_RIGHT = enum.auto()
    IGNORING = enum.auto()
    OFFSET = enum.auto()
    SMOOTHED = enum.auto()
    ANCHORED = enum.auto()
    ON = enum.auto()
    WITHOUT = enum.auto()
    # Preprocessors.
    START = enum.auto()
    END = enum.auto()
    STEP = enum.auto()
    RANGE = enum.auto()
    MAX_OF = enum.auto()
    MIN_OF = enum.auto()
    # Counter reset hints.
    UNKNOWN_COUNTER_RESET = enum.auto()
    COUNTER_RESET = enum.auto()
    NOT_COUNTER_RESET = enum.auto()
    GAUGE_TYPE = enum.auto()


OPERATORS = frozenset(
    {
        T.ADD, T.DIV, T.EQLC, T.EQL_REGEX, T.GTE, T.GTR, T.TRIM_UPPER, T.TRIM_LOWER, T.LAND, T.LOR,
        T.LSS, T.LTE, T.LUNLESS, T.MOD, T.MUL, T.NEQ, T.NEQ_REGEX, T.POW, T.SUB, T.AT, T.ATAN2,
    }
)  # fmt: skip
AGGREGATORS = frozenset(
    {
        T.AVG, T.BOTTOMK, T.COUNT, T.COUNT_VALUES, T.GROUP, T.MAX, T.MIN, T.QUANTILE, T.STDDEV,
        T.STDVAR, T.SUM, T.TOPK, T.LIMITK, T.LIMIT_RATIO,
    }
)  # fmt: skip
AGGREGATORS_WITH_PARAM = frozenset({T.TOPK, T.BOTTOMK, T.COUNT_VALUES, T.QUANTILE, T.LIMITK, T.LIMIT_RATIO})
EXPERIMENTAL_AGGREGATORS = frozenset({T.LIMITK, T.LIMIT_RATIO})
KEYWORDS = frozenset(
    {
        T.BOOL, T.BY, T.GROUP_LEFT, T.GROUP_RIGHT, T.FILL, T.FILL_LEFT, T.FILL_RIGHT, T.IGNORING,
        T.OFFSET, T.SMOOTHED, T.ANCHORED, T.ON, T.WITHOUT,
    }
)  # fmt: skip
COMPARISON_OPERATORS = frozenset({T.EQLC, T.NEQ, T.LTE, T.LSS, T.GTE, T.GTR})
SET_OPERATORS = frozenset({T.LAND, T.LOR, T.LUNLESS})

# Words the lexer turns into keyword items (matched case-insensitively).
KEY: dict[str, T] = {
    "and": T.LAND,
    "or": T.LOR,
    "unless": T.LUNLESS,
    "atan2": T.ATAN2,
    "sum": T.SUM,
    "avg": T.AVG,
    "count": T.COUNT,
    "min": T.MIN,
    "max": T.MAX,
    "group": T.GROUP,
    "stddev": T.STDDEV,
    "stdvar": T.STDVAR,
    "topk": T.TOPK,
    "bottomk": T.BOTTOMK,
    "count_values": T.COUNT_VALUES,
    "quantile": T.QUANTILE,
    "limitk": T.LIMITK,
    "limit_ratio": T.LIMIT_RATIO,
    "offset": T.OFFSET,
    "smoothed": T.SMOOTHED,
    "anchored": T.ANCHORED,
    "by": T.BY,
    "without": T.WITHOUT,
    "on": T.ON,
    "ignoring": T.IGNORING,
    "group_left": T.GROUP_LEFT,
    "group_right": T.GROUP_RIGHT,
    "fill": T.FILL,
    "fill_left": T.FILL_LEFT,
    "fill_right": T.FILL_RIGHT,
    "bool": T.BOOL,
    "start": T.START,
    "end": T.END,
    "step": T.STEP,
    "range": T.RANGE,
    "max_of": T.MAX_OF,
    "min_of": T.MIN_OF,
}

# Canonical text of item types (upstream's ItemTypeStr).
TYPE_STR: dict[T, str] = {
    T.OPEN_HIST: "{{",
    T.CLOSE_HIST: "}}",
    T.LEFT_PAREN: "(",
    T.RIGHT_PAREN: ")",
    T.LEFT_BRACE: "{",
    T.RIGHT_BRACE: "}",
    T.LEFT_BRACKET: "[",
    T.RIGHT_BRACKET: "]",
    T.COMMA: ",",
    T.EQL: "=",
    T.COLON: ":",
    T.SEMICOLON: ";",
    T.BLANK: "_",
    T.TIMES: "x",
    T.SPACE: "<space>",
    T.SUB: "-",
    T.ADD: "+",
    T.MUL: "*",
    T.MOD: "%",
    T.DIV: "/",
    T.EQLC: "==",
    T.NEQ: "!=",
    T.LTE: "<=",
    T.LSS: "<",
    T.GTE: ">=",
    T.GTR: ">",
    T.TRIM_UPPER: "</",
    T.TRIM_LOWER: ">/",
    T.EQL_REGEX: "=~",
    T.NEQ_REGEX: "!~",
    T.POW: "^",
    T.AT: "@",
}
for _word, _typ in KEY.items():
    TYPE_STR[_typ] = _word
del _word, _typ

_SPECIAL_NUMBERS = frozenset({"inf", "nan"})

HISTOGRAM_DESC: dict[str, T] = {
    "sum": T.SUM_DESC,
    "count": T.COUNT_DESC,
    "schema": T.SCHEMA_DESC,
    "offset": T.OFFSET_DESC,
    "n_offset": T.NEGATIVE_OFFSET_DESC,
    "buckets": T.BUCKETS_DESC,
    "n_buckets": T.NEGATIVE_BUCKETS_DESC,
    "z_bucket": T.ZERO_BUCKET_DESC,
    "z_bucket_w": T.ZERO_BUCKET_WIDTH_DESC,
    "custom_values": T.CUSTOM_VALUES_DESC,
    "counter_reset_hint": T.COUNTER_RESET_HINT_DESC,
}
COUNTER_RESET_HINTS: dict[str, T] = {
    "unknown": T.UNKNOWN_COUNTER_RESET,
    "reset": T.COUNTER_RESET,
    "not_reset": T.NOT_COUNTER_RESET,
    "gauge": T.GAUGE_TYPE,
}

_DURATION_KEYWORDS: dict[str, T] = {"step": T.STEP, "range": T.RANGE, "max_of": T.MAX_OF, "min_of": T.MIN_OF}
_DURATION_KEYWORD_STARTS = frozenset(k[0] for k in _DURATION_KEYWORDS)

# ---------------------------------------------------------------------------------------------
# Go-compatible quoting, used in messages and by the printer.


def go_quote_rune(ch: str) -> str:
    """``%q`` of a rune; the end of input quotes as the replacement character, as in Go."""
    if ch == EOF_RUNE:
        ch = _RUNE_ERROR
    return "'" + quote_char(ch, "'") + "'"


def go_unicode_rune(ch: str) -> str:
    """``%#U`` of a rune: ``U+0063 'c'``."""
    code = ord(ch)
    text = f"U+{code:04X}"
    if is_go_print(ch):
        text += f" '{ch}'"
    return text


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    """One lexed item: its type, start offset and source text (or error message)."""

    typ: T
    pos: int
    val: str

    @property
    def end(self) -> int:
        return self.pos + len(self.val)

    def __str__(self) -> str:
        typ = self.typ
        if typ is T.EOF:
            return "EOF"
        if typ is T.ERROR:
            return self.val
        if typ in (T.IDENTIFIER, T.METRIC_IDENTIFIER):
            return go_quote(self.val)
        if typ in KEYWORDS:
            return f"<{self.val}>"
        if typ in OPERATORS:
            return f"<op:{self.val}>"
        if typ in AGGREGATORS:
            return f"<aggr:{self.val}>"
        if utf8_len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)

    def desc(self) -> str:
        """How the item is named in "unexpected ..." messages."""
        if self.typ in TYPE_STR:
            return str(self)
        if self.typ is T.EOF:
            return "end of input"
        return f"{type_desc(self.typ)} {self}"


_TYPE_DESC = {
    T.ERROR: "error",
    T.EOF: "end of input",
    T.COMMENT: "comment",
    T.IDENTIFIER: "identifier",
    T.METRIC_IDENTIFIER: "metric identifier",
    T.STRING: "string",
    T.NUMBER: "number",
    T.DURATION: "duration",
}


# goyacc numbers tokens from 57346 in declaration order, range markers included; T follows that order,
# and these are the markers' places. Items without a canonical text print as "<Item N>".
_MARKERS_AFTER = {
    T.TIMES: 1,
    T.COUNTER_RESET_HINT_DESC: 2,
    T.ATAN2: 2,
    T.LIMIT_RATIO: 2,
    T.WITHOUT: 2,
    T.MIN_OF: 2,
}


def _yacc_numbers() -> dict[T, int]:
    numbers: dict[T, int] = {}
    number = 57346
    for typ in T:
        numbers[typ] = number
        number += 1 + _MARKERS_AFTER.get(typ, 0)
    return numbers


_YACC_NUMBER = _yacc_numbers()


def type_desc(typ: T) -> str:
    if typ in _TYPE_DESC:
        return _TYPE_DESC[typ]
    return go_quote(TYPE_STR.get(typ, f"<Item {_YACC_NUMBER[typ]}>"))


def is_space(ch: str) -> bool:
    return ch in (" ", "\t", "\n", "\r") and ch != ""


def is_digit(ch: str) -> bool:
    return "0" <= ch <= "9" and ch != ""


def is_alpha(ch: str) -> bool:
    return ch == "_" or ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def is_alnum(ch: str) -> bool:
    return is_alpha(ch) or is_digit(ch)


_HIST_NONE, _HIST_OPEN, _HIST_MUL, _HIST_ADD, _HIST_SUB = range(5)

_ALNUM_RUN = re.compile(r"[A-Za-z0-9_]+")
_WORD_RUN = re.compile(r"[A-Za-z0-9_:]+")
_SPACE_RUN = re.compile(r"[ \t\n\r]+")
# Characters a quoted string can contain without further checks.
_PLAIN_STRING_RUN = re.compile("[^\\\\\"'\n\ufffd\ud800-\udfff]+")

State = Callable[[], "State | None"]


class Lexer:
    """Scans a PromQL query (or a series description) into items."""

    def __init__(self, text: str, *, series_desc: bool = False, duration_only: bool = False) -> None:
        self.input = text
        self.pos = 0
        self.start = 0
        self.width = 0
        self.items: list[Item] = []
        self.paren_depth = 0
        self.brace_open = False
        self.bracket_open = False
        self.got_colon = False
        self.got_duration = False
        self.string_open = ""
        self.series_desc = series_desc
        self.hist_state = _HIST_NONE
        self._scanned = False
        # Lexing a bare duration expression: as inside "[...]", but the end of input is fine.
        self.duration_only = duration_only
        if duration_only:
            self.bracket_open = True

    # -- primitives -------------------------------------------------------------------------

    def _next(self) -> str:
        if self.pos >= len(self.input):
            self.width = 0
            return EOF_RUNE
        ch = self.input[self.pos]
        self.width = 1
        self.pos += 1
        return ch

    def _peek(self) -> str:
        return self.input[self.pos] if self.pos < len(self.input) else EOF_RUNE

    def _backup(self) -> None:
        self.pos -= self.width

    def _emit(self, typ: T) -> None:
        self.items.append(Item(typ, self.start, self.input[self.start : self.pos]))
        self.start = self.pos
        self._scanned = True

    def _ignore(self) -> None:
        self.start = self.pos

    def _accept(self, valid: str) -> bool:
        ch = self._next()
        if ch != EOF_RUNE and ch in valid:
            return True
        self._backup()
        return False

    def _is(self, valid: str) -> bool:
        ch = self._peek()
        return ch != EOF_RUNE and ch in valid

    def _accept_run(self, valid: str) -> None:
        while self._accept(valid):
            pass

    def _errorf(self, message: str) -> None:
        self.items.append(Item(T.ERROR, self.start, message))
        self._scanned = True
        return None

    # -- driver -----------------------------------------------------------------------------

    def lex_all(self) -> list[Item]:
        """All items up to and including EOF or the first ERROR."""
        state: State | None = self._lex_duration_expr if self.duration_only else self._lex_statements
        items = self.items
        count = 0
        while state is not None:
            state = state()
            if len(items) != count:
                count = len(items)
                if items[-1].typ in (T.ERROR, T.EOF):
                    break
        if not self.items or self.items[-1].typ not in (T.ERROR, T.EOF):
            self.items.append(Item(T.EOF, self.pos, ""))
        return self.items

    # -- states -----------------------------------------------------------------------------

    def _lex_statements(self) -> State | None:
        if self.hist_state != _HIST_NONE:
            return self._lex_histogram
        if self.brace_open:
            return self._lex_inside_braces
        if self.input.startswith("#", self.pos):
            return self._lex_line_comment
        ch = self._next()
        if ch == EOF_RUNE:
            if self.paren_depth != 0:
                return self._errorf("unclosed left parenthesis")
            if self.bracket_open and not self.duration_only:
                return self._errorf("unclosed left bracket")
            self._emit(T.EOF)
            return None
        if ch == ",":
            self._emit(T.COMMA)
        elif is_space(ch):
            return self._lex_space
        elif ch in "*/%+-^":
            self._emit({"*": T.MUL, "/": T.DIV, "%": T.MOD, "+": T.ADD, "-": T.SUB, "^": T.POW}[ch])
        elif ch == "=":
            nxt = self._peek()
            if nxt == "=":
                self._next()
                self._emit(T.EQLC)
            elif nxt == "~":
                return self._errorf(f"unexpected character after '=': {go_quote_rune(nxt)}")
            else:
                self._emit(T.EQL)
        elif ch == "!":
            nxt = self._next()
            if nxt != "=":
                return self._errorf(f"unexpected character after '!': {go_quote_rune(nxt)}")
            self._emit(T.NEQ)
        elif ch in "<>":
            nxt = self._peek()
            if nxt == "=":
                self._next()
                self._emit(T.LTE if ch == "<" else T.GTE)
            elif nxt == "/":
                self._next()
                self._emit(T.TRIM_UPPER if ch == "<" else T.TRIM_LOWER)
            else:
                self._emit(T.LSS if ch == "<" else T.GTR)
        elif is_digit(ch) or (ch == "." and is_digit(self._peek())):
            self._backup()
            return self._lex_number_or_duration
        elif ch in "\"'":
            self.string_open = ch
            return self._lex_string
        elif ch == "`":
            self.string_open = ch
            return self._lex_raw_string
        elif is_alpha(ch) or ch == ":":
            if not self.bracket_open:
                self._backup()
                return self._lex_keyword_or_identifier
            if ch == ":":
                if self.got_colon:
                    return self._errorf(f"unexpected colon {go_quote_rune(ch)}")
                self._emit(T.COLON)
                self.got_colon = True
                return self._lex_statements
            if ch.lower() in _DURATION_KEYWORD_STARTS and self._scan_duration_keyword():
                return self._lex_statements
            return self._errorf(f"unexpected character: {go_quote_rune(ch)}, expected ':'")
        elif ch == "(":
            self._emit(T.LEFT_PAREN)
            self.paren_depth += 1
        elif ch == ")":
            self._emit(T.RIGHT_PAREN)
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self.items.pop()  # Upstream's error overwrites the item just emitted.
                return self._errorf(f"unexpected right parenthesis {go_quote_rune(ch)}")
        elif ch == "{":
            self._emit(T.LEFT_BRACE)
            self.brace_open = True
            return self._lex_inside_braces
        elif ch == "[":
            if self.bracket_open:
                return self._errorf(f"unexpected left bracket {go_quote_rune(ch)}")
            self.got_colon = False
            self._emit(T.LEFT_BRACKET)
            while is_space(self._peek()):
                self._next()
            self._ignore()
            self.bracket_open = True
            return self._lex_duration_expr
        elif ch == "]":
            if not self.bracket_open:
                return self._errorf(f"unexpected right bracket {go_quote_rune(ch)}")
            self._emit(T.RIGHT_BRACKET)
            self.bracket_open = False
        elif ch == "@":
            self._emit(T.AT)
        else:
            return self._errorf(f"unexpected character: {go_quote_rune(ch)}")
        return self._lex_statements

    def _lex_inside_braces(self) -> State | None:
        if self.input.startswith("#", self.pos):
            return self._lex_line_comment
        ch = self._next()
        if ch == EOF_RUNE:
            return self._errorf("unexpected end of input inside braces")
        if is_space(ch):
            return self._lex_space
        if is_alpha(ch):
            self._backup()
            return self._lex_identifier
        if ch == ",":
            self._emit(T.COMMA)
        elif ch in "\"'":
            self.string_open = ch
            return self._lex_string
        elif ch == "`":
            self.string_open = ch
            return self._lex_raw_string
        elif ch == "=":
            if self._next() == "~":
                self._emit(T.EQL_REGEX)
            else:
                self._backup()
                self._emit(T.EQL)
        elif ch == "!":
            nxt = self._next()
            if nxt == "~":
                self._emit(T.NEQ_REGEX)
            elif nxt == "=":
                self._emit(T.NEQ)
            else:
                return self._errorf(f"unexpected character after '!' inside braces: {go_quote_rune(nxt)}")
        elif ch == "{":
            return self._errorf(f"unexpected left brace {go_quote_rune(ch)}")
        elif ch == "}":
            self._emit(T.RIGHT_BRACE)
            self.brace_open = False
            return self._lex_value_sequence if self.series_desc else self._lex_statements
        else:
            return self._errorf(f"unexpected character inside braces: {go_quote_rune(ch)}")
        return self._lex_inside_braces

    def _lex_duration_expr(self) -> State | None:
        ch = self._next()
        if ch == EOF_RUNE and self.duration_only:
            return self._lex_statements
        if ch == EOF_RUNE:
            return self._errorf("unexpected end of input in duration expression")
        if ch == "]":
            self._emit(T.RIGHT_BRACKET)
            self.bracket_open = False
            self.got_colon = False
            return self._lex_statements
        if ch == ":":
            self._emit(T.COLON)
            if not self.got_duration or self.got_colon:
                self.items.pop()
                if not self.got_duration:
                    return self._errorf("unexpected colon before duration in duration expression")
                return self._errorf("unexpected repeated colon in duration expression")
            self.got_colon = True
            return self._lex_duration_expr
        if ch == "(":
            self._emit(T.LEFT_PAREN)
            self.paren_depth += 1
            return self._lex_duration_expr
        if ch == ")":
            self._emit(T.RIGHT_PAREN)
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self.items.pop()  # Upstream's error overwrites the item just emitted.
                return self._errorf(f"unexpected right parenthesis {go_quote_rune(ch)}")
            return self._lex_duration_expr
        if is_space(ch):
            while is_space(self._peek()):
                self._next()
            self._ignore()
            return self._lex_duration_expr
        simple = {"+": T.ADD, "-": T.SUB, "*": T.MUL, "/": T.DIV, "%": T.MOD, "^": T.POW, ",": T.COMMA}
        if ch in simple:
            self._emit(simple[ch])
            return self._lex_duration_expr
        if ch.lower() in _DURATION_KEYWORD_STARTS:
            if self._scan_duration_keyword():
                return self._lex_duration_expr
            return self._errorf(f"unexpected character in duration expression: {go_quote_rune(ch)}")
        if is_digit(ch) or (ch == "." and is_digit(self._peek())):
            self._backup()
            self.got_duration = True
            return self._lex_number_or_duration
        return self._errorf(f"unexpected character in duration expression: {go_quote_rune(ch)}")

    def _scan_duration_keyword(self) -> bool:
        while True:
            ch = self._next()
            if not is_alpha(ch):
                self._backup()
                word = self.input[self.start : self.pos].lower()
                if word in _DURATION_KEYWORDS:
                    self._emit(_DURATION_KEYWORDS[word])
                    return True
                return False

    def _lex_line_comment(self) -> State | None:
        self.pos += 1
        ch = self._next()
        while ch not in ("\r", "\n") and ch != EOF_RUNE:
            ch = self._next()
        self._backup()
        self._emit(T.COMMENT)
        return self._lex_statements

    def _lex_space(self) -> State | None:
        match = _SPACE_RUN.match(self.input, self.pos)
        self.pos = match.end() if match else self.pos
        self._ignore()
        return self._lex_statements

    def _lex_escape(self) -> State | None:
        ch = self._next()
        if (ch != EOF_RUNE and ch in "abfnrtv\\") or (ch == self.string_open and ch != EOF_RUNE):
            return self._lex_string
        if ch == EOF_RUNE:
            self._errorf("escape sequence not terminated")
            return None
        if ch in "01234567":
            count, base, max_val = 3, 8, 255
        elif ch in "xuU":
            count, base, max_val = {"x": (2, 16, 255), "u": (4, 16, 0x10FFFF), "U": (8, 16, 0x10FFFF)}[ch]
            ch = self._next()
        else:
            self._errorf(f"unknown escape sequence {go_unicode_rune(ch)}")
            return None
        value = 0
        while count > 0:
            digit = int(ch, 16) if ch != EOF_RUNE and ch in "0123456789abcdefABCDEF" else 16
            if digit >= base:
                if ch == EOF_RUNE:
                    self._errorf("escape sequence not terminated")
                else:
                    self._errorf(f"illegal character {go_unicode_rune(ch)} in escape sequence")
                return None
            value = value * base + digit
            count -= 1
            if count > 0:
                ch = self._next()
        if value > max_val or 0xD800 <= value < 0xE000:
            self._errorf("escape sequence is an invalid Unicode code point")
            return None
        return self._lex_string

    def _lex_string(self) -> State | None:
        plain = _PLAIN_STRING_RUN.match(self.input, self.pos)
        if plain:
            self.pos = plain.end()
        while True:
            ch = self._next()
            if ch == "\\":
                return self._lex_escape
            if ch == _RUNE_ERROR or ("\ud800" <= ch <= "\udfff" and ch != EOF_RUNE):
                self._errorf("invalid UTF-8 rune")
                return None
            if ch == EOF_RUNE or ch == "\n":
                return self._errorf("unterminated quoted string")
            if ch == self.string_open:
                break
        self._emit(T.STRING)
        return self._lex_statements

    def _lex_raw_string(self) -> State | None:
        while True:
            ch = self._next()
            if ch == _RUNE_ERROR or ("\ud800" <= ch <= "\udfff" and ch != EOF_RUNE):
                self._errorf("invalid UTF-8 rune")
                return None
            if ch == EOF_RUNE:
                self._errorf("unterminated raw string")
                return None
            if ch == self.string_open:
                break
        self._emit(T.STRING)
        return self._lex_statements

    def _lex_number(self) -> State | None:
        if not self._scan_number():
            return self._errorf(f"bad number syntax: {go_quote(self.input[self.start : self.pos])}")
        self._emit(T.NUMBER)
        return self._lex_statements

    def _lex_number_or_duration(self) -> State | None:
        if self._scan_number():
            self._emit(T.NUMBER)
            return self._lex_statements
        if self._accept_remaining_duration():
            self._backup()
            self._emit(T.DURATION)
            return self._lex_statements
        return self._errorf(f"bad number or duration syntax: {go_quote(self.input[self.start : self.pos])}")

    def _accept_remaining_duration(self) -> bool:
        if not self._accept("smhdwy"):
            return False
        self._accept("s")
        while self._accept("0123456789"):
            self._accept_run("0123456789")
            if not self._accept("smhdw"):
                return False
            self._accept("s")
        return not is_alnum(self._next())

    def _scan_number(self) -> bool:
        initial = self.pos
        digits = "0123456789"
        if not self.series_desc and self._accept("0") and self._accept("xX"):
            self._accept("_")
            digits = "0123456789abcdefABCDEF"
        self._accept(".")
        self._accept(digits)
        dot_seen = exp_seen = False
        while self._is(digits + "._eE"):
            if self._is(".") and dot_seen:
                self._accept(".")
                return False
            if self._is("eE") and exp_seen:
                self._accept("eE")
                return False
            if self._accept("."):
                dot_seen = True
                if self._accept("_."):
                    return False
                if len(digits) > 10:
                    return False
                continue
            if self._accept("eE"):
                exp_seen = True
                self._accept("+-")
                if self._accept("._eE") or self._peek() == EOF_RUNE:
                    return False
                continue
            if self._accept("_"):
                if self._accept("._eE") or self._peek() == EOF_RUNE:
                    return False
                continue
            self._accept_run(digits)
        if self.pos == initial:
            return False
        nxt = self._peek()
        return (self.series_desc and nxt == "x") or not is_alnum(nxt)

    def _lex_identifier(self) -> State | None:
        match = _ALNUM_RUN.match(self.input, self.pos)
        self.pos = match.end() if match else self.pos
        self._emit(T.IDENTIFIER)
        return self._lex_statements

    def _followed_by_left_paren(self) -> bool:
        pos = self.pos
        while pos < len(self.input):
            ch = self.input[pos]
            if not is_space(ch):
                return ch == "("
            pos += 1
        return False

    def _lex_keyword_or_identifier(self) -> State | None:
        match = _WORD_RUN.match(self.input, self.pos)
        self.pos = match.end() if match else self.pos
        word = self.input[self.start : self.pos]
        lower = word.lower()
        if lower in _SPECIAL_NUMBERS:
            self._emit(T.NUMBER)
        elif lower in KEY:
            kw = KEY[lower]
            if kw in (T.FILL, T.FILL_LEFT, T.FILL_RIGHT) and not self._followed_by_left_paren():
                self._emit(T.IDENTIFIER)
            else:
                self._emit(kw)
        elif ":" not in word:
            self._emit(T.IDENTIFIER)
        else:
            self._emit(T.METRIC_IDENTIFIER)
        if self.series_desc and self._peek() != "{":
            return self._lex_value_sequence
        return self._lex_statements

    # -- series descriptions ----------------------------------------------------------------

    def _lex_value_sequence(self) -> State | None:
        if self.hist_state != _HIST_NONE:
            return self._lex_histogram
        ch = self._next()
        if ch == EOF_RUNE:
            return self._lex_statements
        if ch == "{" and self._peek() == "{":
            self.hist_state = _HIST_OPEN
            self._next()
            self._emit(T.OPEN_HIST)
            return self._lex_histogram
        if is_space(ch):
            self._emit(T.SPACE)
            self._lex_space()
        elif ch in "+-x_":
            self._emit({"+": T.ADD, "-": T.SUB, "x": T.TIMES, "_": T.BLANK}[ch])
        elif is_digit(ch) or (ch == "." and is_digit(self._peek())):
            self._backup()
            self._scanned = False
            self._lex_number()
            if self.items[-1].typ is T.ERROR:
                return None
        elif is_alpha(ch):
            self._backup()
            return self._lex_keyword_or_identifier
        else:
            return self._errorf(f"unexpected character in series sequence: {go_quote_rune(ch)}")
        return self._lex_value_sequence

    def _lex_histogram(self) -> State | None:
        if self.hist_state in (_HIST_MUL, _HIST_ADD, _HIST_SUB):
            typ = {_HIST_MUL: T.TIMES, _HIST_ADD: T.ADD, _HIST_SUB: T.SUB}[self.hist_state]
            self.hist_state = _HIST_NONE
            self._next()
            self._emit(typ)
            return self._lex_value_sequence
        if self.bracket_open:
            return self._lex_buckets
        ch = self._next()
        if is_space(ch):
            self._emit(T.SPACE)
            return self._lex_space
        if is_alpha(ch):
            self._backup()
            return self._lex_histogram_descriptor
        if ch == ":":
            self._emit(T.COLON)
            return self._lex_histogram
        if ch == "-":
            self._emit(T.SUB)
            return self._lex_histogram
        if is_digit(ch):
            self._backup()
            return self._lex_number
        if ch == "[":
            self.bracket_open = True
            self.got_colon = False
            self.got_duration = False
            self._emit(T.LEFT_BRACKET)
            return self._lex_buckets
        if ch == "}" and self._peek() == "}":
            self._next()
            self._emit(T.CLOSE_HIST)
            nxt = self._peek()
            self.hist_state = {"x": _HIST_MUL, "+": _HIST_ADD, "-": _HIST_SUB}.get(nxt, _HIST_NONE)
            return self._lex_histogram if self.hist_state != _HIST_NONE else self._lex_value_sequence
        return self._errorf(f"histogram description incomplete unexpected: {go_quote_rune(ch)}")

    def _lex_histogram_descriptor(self) -> State | None:
        while is_alpha(self._next()):
            pass
        self._backup()
        word = self.input[self.start : self.pos].lower()
        if word in HISTOGRAM_DESC:
            if self._peek() == ":":
                self._emit(HISTOGRAM_DESC[word])
                return self._lex_histogram
            return self._errorf("missing `:` for histogram descriptor")
        if word in _SPECIAL_NUMBERS:
            self._emit(T.NUMBER)
            return self._lex_histogram
        if word in COUNTER_RESET_HINTS:
            self._emit(COUNTER_RESET_HINTS[word])
            return self._lex_histogram
        return self._errorf(f"bad histogram descriptor found: {go_quote(self.input[self.start : self.pos])}")

    def _lex_buckets(self) -> State | None:
        ch = self._next()
        if is_space(ch):
            self._emit(T.SPACE)
            return self._lex_space
        if ch == "-":
            self._emit(T.SUB)
            return self._lex_number
        if is_digit(ch):
            self._backup()
            return self._lex_number
        if ch == "]":
            self.bracket_open = False
            self._emit(T.RIGHT_BRACKET)
            return self._lex_histogram
        if is_alpha(ch):
            while is_alpha(self._peek()):
                self._next()
            if self.input[self.start : self.pos].lower() in _SPECIAL_NUMBERS:
                self._emit(T.NUMBER)
                return self._lex_buckets
            return self._errorf(f"invalid character in buckets description: {go_quote_rune(ch)}")
        return self._errorf(f"invalid character in buckets description: {go_quote_rune(ch)}")


def lex(text: str, *, series_desc: bool = False, duration_only: bool = False) -> list[Item]:
    """Lex a whole input; the last item is EOF or ERROR."""
    return Lexer(text, series_desc=series_desc, duration_only=duration_only).lex_all()
