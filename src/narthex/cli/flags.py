"""A small command-line flag parser with kingpin's conventions, so Prometheus command lines carry over.

``--name=value`` and ``--name value``; booleans as ``--name``, ``--no-name`` or ``--name=true|false``;
repeatable flags collect a list; an unknown flag is an error that names it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


class FlagError(Exception):
    """A command line that does not parse; the message reads like kingpin's."""


@dataclass(frozen=True)
class Flag:
    """One long flag: its name, help text, default (as text, like kingpin) and value converter."""

    name: str
    help: str
    default: str | None = None
    convert: Callable[[str], Any] = str
    is_bool: bool = False
    repeatable: bool = False
    placeholder: str = ""


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "t", "yes"):
        return True
    if lowered in ("false", "0", "f", "no"):
        return False
    raise ValueError(f"strconv.ParseBool: parsing {text!r}: invalid syntax")


@dataclass
class FlagSet:
    """A set of long flags; :meth:`parse` returns ``{name: value}`` plus positional arguments."""

    program: str
    description: str
    flags: list[Flag] = field(default_factory=list)

    def add(self, flag: Flag) -> None:
        self.flags.append(flag)

    def _lookup(self) -> dict[str, Flag]:
        return {f.name: f for f in self.flags}

    def parse(self, argv: Sequence[str]) -> tuple[dict[str, Any], list[str], set[str]]:
        """Parse ``argv``; returns values (defaults filled in), positionals and the names set explicitly."""
        by_name = self._lookup()
        raw: dict[str, list[str]] = {}
        positionals: list[str] = []
        args = list(argv)
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--":
                positionals.extend(args[i:])
                break
            if not arg.startswith("--") or arg == "-":
                if arg.startswith("-") and arg != "-":
                    raise FlagError(f"unknown short flag '{arg}'")
                positionals.append(arg)
                continue
            name, has_value, value = arg[2:].partition("=")
            flag = by_name.get(name)
            if flag is None and name.startswith("no-") and not has_value:
                negated = by_name.get(name[3:])
                if negated is not None and negated.is_bool:
                    raw.setdefault(negated.name, []).append("false")
                    continue
            if flag is None:
                raise FlagError(f"unknown long flag '--{name}'")
            if flag.is_bool:
                raw.setdefault(name, []).append(value if has_value else "true")
                continue
            if not has_value:
                if i >= len(args):
                    raise FlagError(f"expected argument for flag '--{name}'")
                value = args[i]
                i += 1
            raw.setdefault(name, []).append(value)
        return self._convert(raw), positionals, set(raw)

    def _convert(self, raw: dict[str, list[str]]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for flag in self.flags:
            texts = raw.get(flag.name)
            if texts is None:
                texts = [] if flag.default is None else [flag.default]
            elif not flag.repeatable and len(texts) > 1:
                raise FlagError(f"flag '--{flag.name}' cannot be repeated")
            try:
                converted = [(parse_bool if flag.is_bool else flag.convert)(t) for t in texts]
            except ValueError as exc:
                raise FlagError(f"invalid value {texts[-1]!r} for flag '--{flag.name}': {exc}") from None
            if flag.repeatable:
                values[flag.name] = converted
            else:
                values[flag.name] = converted[0] if converted else (False if flag.is_bool else None)
        return values

    def usage(self) -> str:
        """Help text in kingpin's layout."""
        lines = [f"usage: {self.program} [<flags>]", "", self.description, "", "Flags:"]
        lines.append("  -h, --[no-]help".ljust(40) + "Show context-sensitive help.")
        for flag in self.flags:
            if flag.is_bool:
                head = f"      --[no-]{flag.name}"
            else:
                head = f"      --{flag.name}={flag.placeholder or flag.name.split('.')[-1].upper()}"
                if flag.repeatable:
                    head += " ..."
            text = flag.help
            if flag.default not in (None, "") and not flag.is_bool:
                text += f' Default: "{flag.default}".'
            wrapped = textwrap.wrap(text, 70) or [""]
            lines.append(head)
            lines.extend(" " * 10 + w for w in wrapped)
        return "\n".join(lines) + "\n"
