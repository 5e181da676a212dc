"""PromQL parse errors with Prometheus's position prefix (``1:5: parse error: ...``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PositionRange:
    """A half-open range of character offsets into the query text."""

    start: int
    end: int


def utf8_len(text: str) -> int:
    """Length in UTF-8 bytes, as Go's ``len``; surrogate escapes count as the one byte they stand for."""
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return len(text.encode("utf-8", "surrogatepass"))


def _byte_offset(query: str, pos: int) -> int:
    """Character offset to UTF-8 byte offset (Prometheus counts bytes)."""
    return utf8_len(query[:pos])


def position_prefix(query: str, pos: int, line_offset: int = 0) -> str:
    """``line:col`` for a character position, computed over bytes as Prometheus does."""
    if query == "":
        return "unknown position"
    if pos < 0 or pos > len(query):
        return "invalid position"
    head = query[:pos]
    line = line_offset + 1 + head.count("\n")
    last_break = head.rfind("\n")
    col = _byte_offset(query, pos) - (_byte_offset(query, last_break) if last_break >= 0 else -1)
    return f"{line}:{col}"


@dataclass(frozen=True, slots=True)
class ParseErr:
    """One error found while parsing: a message and where it applies."""

    position_range: PositionRange
    message: str
    query: str
    line_offset: int = 0

    def __str__(self) -> str:
        prefix = position_prefix(self.query, self.position_range.start, self.line_offset)
        return f"{prefix}: parse error: {self.message}"


class ParseError(ValueError):
    """A query that does not parse or type-check; ``str()`` is the first error, as upstream."""

    def __init__(self, errors: list[ParseErr] | tuple[ParseErr, ...]) -> None:
        self.errors: tuple[ParseErr, ...] = tuple(errors)
        super().__init__(str(self.errors[0]) if self.errors else "error contains no error message")

    @property
    def position_range(self) -> PositionRange:
        return self.errors[0].position_range

    @property
    def message(self) -> str:
        """The first error's message without the position prefix."""
        return self.errors[0].message

    @property
    def query(self) -> str:
        return self.errors[0].query

    def __str__(self) -> str:
        return str(self.errors[0]) if self.errors else "error contains no error message"
