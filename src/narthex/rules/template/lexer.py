"""Tokenizer for Go's text/template syntax (delimiters ``{{`` and ``}}``), as text/template/parse/lex.go.

Positions are byte offsets into the UTF-8 encoding of the template, because Go reports error columns in
bytes; the parser converts them back to ``line:column`` for messages.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass

from narthex.rules.template.gofmt import go_quote

LEFT_DELIM = "{{"
RIGHT_DELIM = "}}"
LEFT_COMMENT = "/*"
RIGHT_COMMENT = "*/"
TRIM_MARKER = "-"


class T(enum.IntEnum):
    """Token types; values above ``KEYWORD`` are keywords."""

    ERROR = 0
    BOOL = 1
    CHAR = 2
    CHAR_CONSTANT = 3
    COMMENT = 4
    COMPLEX = 5
    ASSIGN = 6
    DECLARE = 7
    EOF = 8
    FIELD = 9
    IDENTIFIER = 10
    LEFT_DELIM = 11
    LEFT_PAREN = 12
    NUMBER = 13
    PIPE = 14
    RAW_STRING = 15
    RIGHT_DELIM = 16
    RIGHT_PAREN = 17
    SPACE = 18
    STRING = 19
    TEXT = 20
    VARIABLE = 21
    KEYWORD = 30
    BLOCK = 31
    BREAK = 32
    CONTINUE = 33
    DOT = 34
    DEFINE = 35
    ELSE = 36
    END = 37
    IF = 38
    NIL = 39
    RANGE = 40
    TEMPLATE = 41
    WITH = 42


KEYWORDS = {
    ".": T.DOT,
    "block": T.BLOCK,
    "break": T.BREAK,
    "continue": T.CONTINUE,
    "define": T.DEFINE,
    "else": T.ELSE,
    "end": T.END,
    "if": T.IF,
    "range": T.RANGE,
    "nil": T.NIL,
    "template": T.TEMPLATE,
    "with": T.WITH,
}


@dataclass(slots=True)
class Item:
    """One token: type, byte position, text and line (1-based) where it starts."""

    typ: T
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        if self.typ == T.EOF:
            return "EOF"
        if self.typ == T.ERROR:
            return self.val
        if self.typ > T.KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


def unicode_repr(ch: str) -> str:
    """Go's ``%#U``: ``U+0041 'A'`` for printable runes, ``U+00A0`` otherwise."""
    code = f"U+{ord(ch):04X}"
    return f"{code} '{ch}'" if ch.isprintable() and (ch == " " or not ch.isspace()) else code


def _is_space(ch: str) -> bool:
    return ch != "" and ch in " \t\r\n"


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdigit()


class Lexer:
    """Produces :class:`Item` tokens for one template text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[Item] = []
        self.start = 0
        self.pos = 0
        self.paren_depth = 0
        self.inside_action = False
        # Byte offset of each character index, so token positions match Go's.
        offsets = [0] * (len(text) + 1)
        total = 0
        for i, ch in enumerate(text):
            offsets[i] = total
            total += len(ch.encode("utf-8", "surrogatepass"))
        offsets[len(text)] = total
        self._offsets = offsets
        self._newlines = [i for i, ch in enumerate(text) if ch == "\n"]

    def _line_at(self, index: int) -> int:
        return 1 + bisect.bisect_left(self._newlines, index)

    # -- low level -------------------------------------------------------------------------------------------

    def _peek(self, n: int = 0) -> str:
        i = self.pos + n
        return self.text[i] if i < len(self.text) else ""

    def _next(self) -> str:
        if self.pos >= len(self.text):
            self.pos = len(self.text) + 1
            return ""
        ch = self.text[self.pos]
        self.pos += 1
        return ch

    def _backup(self) -> None:
        if self.pos > len(self.text):
            self.pos = len(self.text)
            return
        self.pos -= 1

    def _emit(self, typ: T) -> None:
        end = min(self.pos, len(self.text))
        self._add(typ, self.start, end)
        self.start = end

    def _add(self, typ: T, start: int, end: int) -> None:
        self.items.append(Item(typ, self._offsets[start], self.text[start:end], self._line_at(start)))

    def _ignore(self) -> None:
        self.start = self.pos

    def _error(self, message: str) -> None:
        start = min(self.start, len(self.text))
        self.items.append(Item(T.ERROR, self._offsets[start], message, self._line_at(start)))

    def _skip_to(self, index: int) -> None:
        self.pos = index

    # -- states ----------------------------------------------------------------------------------------------

    def run(self) -> list[Item]:
        """Tokenize the whole text; the list ends with EOF or an ERROR item."""
        while True:
            state = self._lex_text()
            if state is None:
                return self.items
            if state and not self._lex_action():
                return self.items

    def _at_trim_left(self, index: int) -> bool:
        after = index + len(LEFT_DELIM)
        return self.text.startswith(TRIM_MARKER, after) and _is_space(
            self.text[after + 1] if after + 1 < len(self.text) else ""
        )

    def _lex_text(self) -> bool | None:
        """Scan text up to the next left delimiter: None at EOF or error, True when an action follows."""
        index = self.text.find(LEFT_DELIM, self.pos)
        if index < 0:
            self.pos = len(self.text)
            if self.pos > self.start:
                self._add(T.TEXT, self.start, self.pos)
            self.items.append(Item(T.EOF, self._offsets[len(self.text)], "", self._line_at(len(self.text))))
            return None
        trim_len = 0
        text_end = index
        if self._at_trim_left(index):
            text_end = index
            while text_end > self.start and _is_space(self.text[text_end - 1]):
                text_end -= 1
            trim_len = len(TRIM_MARKER) + 1
        self.pos = index
        if text_end > self.start:
            self._add(T.TEXT, self.start, text_end)
        self.start = index
        return self._lex_left_delim(trim_len)

    def _lex_left_delim(self, trim_len: int) -> bool | None:
        self.pos += len(LEFT_DELIM)
        after_marker = self.pos + trim_len
        if self.text.startswith(LEFT_COMMENT, after_marker):
            self.pos = after_marker
            self._ignore()
            return False if self._lex_comment() else None
        self._emit(T.LEFT_DELIM)
        self.pos += trim_len
        self._ignore()
        self.inside_action = True
        self.paren_depth = 0
        return True

    def _at_right_delim(self) -> tuple[bool, bool]:
        """Whether a right delimiter (possibly with a trim marker before it) starts here."""
        if _is_space(self._peek()) and self.text.startswith(TRIM_MARKER + RIGHT_DELIM, self.pos + 1):
            return True, True
        if self.text.startswith(RIGHT_DELIM, self.pos):
            return True, False
        return False, False

    def _lex_comment(self) -> bool:
        self.pos += len(LEFT_COMMENT)
        end = self.text.find(RIGHT_COMMENT, self.pos)
        if end < 0:
            self._error("unclosed comment")
            return False
        self._skip_to(end + len(RIGHT_COMMENT))
        delim, trim = self._at_right_delim()
        if not delim:
            self._error("comment ends before closing delimiter")
            return False
        self._ignore()
        self.pos += (len(TRIM_MARKER) + 1 if trim else 0) + len(RIGHT_DELIM)
        self._ignore()
        if trim:
            self._trim_following_space()
        return True

    def _trim_following_space(self) -> None:
        while self.pos < len(self.text) and _is_space(self.text[self.pos]):
            self.pos += 1
        self._ignore()

    def _lex_right_delim(self, trim: bool) -> None:
        if trim:
            self.pos += 1  # the space before the marker
            self._ignore()
            self.pos += len(TRIM_MARKER)
            self._ignore()
        self.pos += len(RIGHT_DELIM)
        self._emit(T.RIGHT_DELIM)
        if trim:
            self._trim_following_space()
        self.inside_action = False

    def _lex_action(self) -> bool:
        """Scan the inside of an action; returns False after an error or EOF."""
        while True:
            delim, trim = self._at_right_delim()
            if delim:
                if self.paren_depth == 0:
                    self._lex_right_delim(trim)
                    return True
                self._error("unclosed left paren")
                return False
            ch = self._next()
            if ch == "":
                self._error("unclosed action")
                return False
            if _is_space(ch):
                self._backup()
                self._lex_space()
            elif ch == "=":
                self._emit(T.ASSIGN)
            elif ch == ":":
                if self._next() != "=":
                    self._error("expected :=")
                    return False
                self._emit(T.DECLARE)
            elif ch == "|":
                self._emit(T.PIPE)
            elif ch == '"':
                if not self._lex_quote():
                    return False
            elif ch == "`":
                if not self._lex_raw_quote():
                    return False
            elif ch == "$":
                if not self._lex_variable():
                    return False
            elif ch == "'":
                if not self._lex_char():
                    return False
            elif ch == ".":
                if self.pos < len(self.text) and self.text[self.pos].isdigit():
                    self._backup()
                    if not self._lex_number():
                        return False
                elif not self._lex_field():
                    return False
            elif ch in "+-" or ch.isdigit():
                self._backup()
                if not self._lex_number():
                    return False
            elif _is_alnum(ch):
                self._backup()
                if not self._lex_identifier():
                    return False
            elif ch == "(":
                self._emit(T.LEFT_PAREN)
                self.paren_depth += 1
            elif ch == ")":
                self._emit(T.RIGHT_PAREN)
                self.paren_depth -= 1
                if self.paren_depth < 0:
                    self._error("unexpected right paren")
                    return False
            elif ch.isascii() and ch.isprintable():
                self._emit(T.CHAR)
            else:
                self._error(f"unrecognized character in action: {unicode_repr(ch)}")
                return False

    def _lex_space(self) -> None:
        while _is_space(self._peek()):
            # A space followed by "-}}" belongs to the right delimiter.
            if self.text.startswith(TRIM_MARKER + RIGHT_DELIM, self.pos + 1):
                break
            self._next()
        if self.pos > self.start:
            self._emit(T.SPACE)

    def _at_terminator(self) -> bool:
        ch = self._peek()
        if ch == "" or _is_space(ch) or ch in ".,|:()":
            return True
        return self.text.startswith(RIGHT_DELIM, self.pos)

    def _lex_identifier(self) -> bool:
        while _is_alnum(self._peek()):
            self._next()
        word = self.text[self.start : self.pos]
        if not self._at_terminator():
            self._error(f"bad character {unicode_repr(self._peek())}")
            return False
        if word in KEYWORDS and word != ".":
            self._emit(KEYWORDS[word])
        elif word in ("true", "false"):
            self._emit(T.BOOL)
        elif word[0] == ".":
            self._emit(T.FIELD)
        else:
            self._emit(T.IDENTIFIER)
        return True

    def _lex_field(self) -> bool:
        return self._lex_field_or_variable(T.FIELD)

    def _lex_variable(self) -> bool:
        return self._lex_field_or_variable(T.VARIABLE)

    def _lex_field_or_variable(self, typ: T) -> bool:
        if self._at_terminator():
            if typ == T.VARIABLE:
                self._emit(T.VARIABLE)
            else:
                self._emit(T.DOT)
            return True
        while _is_alnum(self._peek()):
            self._next()
        if not self._at_terminator():
            self._error(f"bad character {unicode_repr(self._peek())}")
            return False
        self._emit(typ)
        return True

    def _lex_quote(self) -> bool:
        while True:
            ch = self._next()
            if ch == "\\":
                nxt = self._next()
                if nxt not in ("", "\n"):
                    continue
                ch = nxt
            if ch in ("", "\n"):
                self._error("unterminated quoted string")
                return False
            if ch == '"':
                break
        self._emit(T.STRING)
        return True

    def _lex_raw_quote(self) -> bool:
        end = self.text.find("`", self.pos)
        if end < 0:
            self._error("unterminated raw quoted string")
            return False
        self._skip_to(end + 1)
        self._emit(T.RAW_STRING)
        return True

    def _lex_char(self) -> bool:
        while True:
            ch = self._next()
            if ch == "\\":
                nxt = self._next()
                if nxt not in ("", "\n"):
                    continue
                ch = nxt
            if ch in ("", "\n"):
                self._error("unterminated character constant")
                return False
            if ch == "'":
                break
        self._emit(T.CHAR_CONSTANT)
        return True

    def _accept(self, valid: str) -> bool:
        ch = self._peek()
        if ch != "" and ch in valid:
            self._next()
            return True
        return False

    def _accept_run(self, valid: str) -> None:
        while self._accept(valid):
            pass

    def _scan_number(self) -> bool:
        self._accept("+-")
        digits = "0123456789_"
        if self._accept("0"):
            if self._accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self._accept("oO"):
                digits = "01234567_"
            elif self._accept("bB"):
                digits = "01_"
        self._accept_run(digits)
        if self._accept("."):
            self._accept_run(digits)
        if len(digits) == 11 and self._accept("eE"):
            self._accept("+-")
            self._accept_run("0123456789_")
        if len(digits) == 23 and self._accept("pP"):
            self._accept("+-")
            self._accept_run("0123456789_")
        self._accept("i")
        return not _is_alnum(self._peek())

    def _lex_number(self) -> bool:
        if not self._scan_number():
            self._next()
            self._error(f"bad number syntax: {go_quote(self.text[self.start : self.pos])}")
            return False
        sign = self._peek()
        if sign in "+-" and sign != "":
            # Complex number: real part followed by an imaginary part.
            if not self._scan_number() or self.text[self.pos - 1] != "i":
                self._next()
                self._error(f"bad number syntax: {go_quote(self.text[self.start : self.pos])}")
                return False
            self._emit(T.COMPLEX)
        else:
            self._emit(T.NUMBER)
        return True


def tokenize(text: str) -> list[Item]:
    """All tokens of ``text``; the last is EOF or an ERROR."""
    return Lexer(text).run()
