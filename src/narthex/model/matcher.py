"""Label matchers (``=``, ``!=``, ``=~``, ``!~``) shared by PromQL, the TSDB querier and the API."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from narthex.model.regex import Regex, compile_regex


class MatchType(enum.Enum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """One matcher; regex matchers are compiled once, fully anchored with RE2 semantics."""

    type: MatchType
    name: str
    value: str
    _regex: Regex | None = field(default=None, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        if self.type in (MatchType.REGEX, MatchType.NOT_REGEX) and self._regex is None:
            object.__setattr__(self, "_regex", compile_regex(self.value))

    def matches(self, value: str) -> bool:
        """Whether a label value satisfies the matcher (an absent label has value ``""``)."""
        match self.type:
            case MatchType.EQUAL:
                return value == self.value
            case MatchType.NOT_EQUAL:
                return value != self.value
            case MatchType.REGEX:
                assert self._regex is not None
                return self._regex.matches(value)
            case MatchType.NOT_REGEX:
                assert self._regex is not None
                return not self._regex.matches(value)

    @property
    def matches_empty(self) -> bool:
        """Whether series without this label are selected (Prometheus's empty-value semantics)."""
        return self.matches("")

    def __str__(self) -> str:
        from json import dumps

        return f"{self.name}{self.type.value}{dumps(self.value, ensure_ascii=False)}"
