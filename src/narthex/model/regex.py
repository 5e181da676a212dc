"""RE2 regular expressions with Prometheus semantics: fully anchored, ``.`` matches newline.

Every user-supplied regex (PromQL matchers, relabeling, ``label_replace``, rule templates) goes through
:func:`compile_regex`. Python's ``re`` is never used on user input: its syntax differs from Go's and it is
exposed to catastrophic backtracking.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.dot_nl = True
_OPTIONS.log_errors = False

# Characters that make a pattern more than a literal string.
_META = re.compile(r"[\\.+*?()|\[\]{}^$]")


class RegexError(ValueError):
    """A pattern RE2 (and so Go's regexp) refuses."""


def _literal_alternatives(pattern: str) -> frozenset[str] | None:
    """``a|b|c`` with no metacharacters in any branch, as a set; otherwise None."""
    parts = pattern.split("|")
    if any(_META.search(p) for p in parts):
        return None
    return frozenset(parts)


class Regex:
    """A fully anchored RE2 pattern with literal, set and prefix fast paths (as FastRegexMatcher)."""

    __slots__ = ("_compiled", "_test", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        try:
            self._compiled = re2.compile(f"^(?s:{pattern})$", _OPTIONS)
        except re2.error as exc:
            msg = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise RegexError(f"error parsing regexp: {msg}") from None
        self._test = self._fast_path(pattern)

    def _fast_path(self, pattern: str) -> Callable[[str], bool]:
        if pattern == ".*":
            return lambda s: True
        if pattern == ".+":
            return lambda s: s != ""
        alternatives = _literal_alternatives(pattern)
        if alternatives is not None:
            if len(alternatives) == 1:
                (only,) = alternatives
                return lambda s: s == only
            return alternatives.__contains__
        if pattern.endswith(".*") and not _META.search(pattern[:-2]):
            prefix = pattern[:-2]
            return lambda s: s.startswith(prefix)
        if pattern.startswith(".*") and pattern.endswith(".*") and not _META.search(pattern[2:-2]):
            inner = pattern[2:-2]
            return lambda s: inner in s
        compiled = self._compiled
        return lambda s: compiled.fullmatch(s) is not None

    def matches(self, value: str) -> bool:
        """Whether the whole of ``value`` matches."""
        return self._test(value)

    def fullmatch(self, value: str) -> Any:
        """The RE2 match object (with groups) or None."""
        return self._compiled.fullmatch(value)

    @property
    def group_names(self) -> dict[str, int]:
        return dict(self._compiled.groupindex)

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Regex) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)


@functools.lru_cache(maxsize=4096)
def compile_regex(pattern: str) -> Regex:
    """Compile (and cache) a fully anchored Prometheus regex; raises :class:`RegexError`."""
    return Regex(pattern)
