"""Decode YAML into typed rule-file values the way Go's yaml.v3 does, with its error messages.

Only what rule files and rule unit tests need: strings, ints, floats, bools, durations, string maps,
lists and structs with known fields. Type mismatches are collected (``line N: cannot unmarshal ...``);
an invalid duration aborts decoding, as a failing custom unmarshaler does in Go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from narthex.model.duration import DurationError, parse_duration

try:
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

_TAG = "tag:yaml.org,2002:"
_SHORT = {
    "str": "!!str",
    "int": "!!int",
    "float": "!!float",
    "bool": "!!bool",
    "null": "!!null",
    "seq": "!!seq",
    "map": "!!map",
    "timestamp": "!!timestamp",
    "binary": "!!binary",
}


class YAMLError(Exception):
    """A syntax error or a failed decode; ``str()`` reads like Go's error."""

    def __init__(self, message: str, syntax: bool = False) -> None:
        super().__init__(message)
        self.syntax = syntax


class AbortDecode(Exception):
    """A custom unmarshaler failed: decoding stops with this message."""


@dataclass(frozen=True, slots=True)
class Pos:
    """A node's 1-based line and column (0:0 when the node is absent)."""

    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


def node_pos(node: yaml.Node | None) -> Pos:
    if node is None:
        return Pos()
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


def compose(text: str) -> yaml.Node | None:
    """The first document's node tree (None for an empty document); raises :class:`YAMLError`."""
    try:
        loader = _Loader(text)
        try:
            return loader.get_single_node() if _single(text) else _first_node(loader)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        line = _go_error_line(exc)
        where = f"line {line}: " if line else ""
        raise YAMLError(f"yaml: {where}{exc.problem or exc.context}", syntax=True) from None
    except yaml.YAMLError as exc:
        raise YAMLError(f"yaml: {exc}", syntax=True) from None


def _go_error_line(exc: yaml.MarkedYAMLError) -> int:
    """The line yaml.v3 reports: the context mark's (else the problem mark's) 0-based line, plus one
    for scanner errors only."""
    scanner = isinstance(exc, yaml.scanner.ScannerError)
    for mark in (exc.context_mark, exc.problem_mark):
        if mark is not None and mark.line != 0:
            return mark.line + 1 if scanner else mark.line
    return 0


def _single(text: str) -> bool:
    return "\n---" not in text and not text.startswith("---")


def _first_node(loader: yaml.SafeLoader) -> yaml.Node | None:
    loader.get_event()  # stream start
    if loader.check_event(yaml.StreamEndEvent):
        return None
    return loader.compose_document()


def has_second_document(text: str) -> bool:
    """Whether the text holds more than one YAML document."""
    if _single(text):
        return False
    try:
        return sum(1 for _ in yaml.compose_all(text, Loader=_Loader)) > 1
    except yaml.YAMLError:
        return False


def short_tag(node: yaml.Node) -> str:
    tag = node.tag or ""
    if tag.startswith(_TAG):
        return _SHORT.get(tag[len(_TAG) :], "!!" + tag[len(_TAG) :])
    return tag


class Decoder:
    """Collects Go-style type errors while converting nodes."""

    def __init__(self, known_fields: bool = True) -> None:
        self.known_fields = known_fields
        self.errors: list[str] = []

    def type_error(self, node: yaml.Node, go_type: str) -> None:
        line = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            self.errors.append(
                f"line {line}: cannot unmarshal {short_tag(node)} `{node.value}` into {go_type}"
            )
        else:
            self.errors.append(f"line {line}: cannot unmarshal {short_tag(node)} into {go_type}")

    def finish(self) -> None:
        """Raise the collected type errors as one error, as yaml.v3 does."""
        if self.errors:
            raise YAMLError("yaml: unmarshal errors:\n  " + "\n  ".join(self.errors))

    @staticmethod
    def is_null(node: yaml.Node | None) -> bool:
        return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null")

    def string(self, node: yaml.Node | None) -> str:
        if self.is_null(node):
            return ""
        assert node is not None
        if isinstance(node, yaml.ScalarNode):
            return node.value
        self.type_error(node, "string")
        return ""

    def integer(self, node: yaml.Node | None) -> int:
        if self.is_null(node):
            return 0
        assert node is not None
        if isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "int":
            try:
                return int(node.value.replace("_", ""), 0)
            except ValueError:
                pass
        self.type_error(node, "int")
        return 0

    def number(self, node: yaml.Node | None) -> float:
        if self.is_null(node):
            return 0.0
        assert node is not None
        if isinstance(node, yaml.ScalarNode) and node.tag in (_TAG + "int", _TAG + "float"):
            try:
                return float(_Loader("").construct_object(node))
            except (ValueError, yaml.YAMLError):
                pass
        self.type_error(node, "float64")
        return 0.0

    def boolean(self, node: yaml.Node | None) -> bool:
        if self.is_null(node):
            return False
        assert node is not None
        if isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "bool":
            return node.value.lower() in ("true", "yes", "on", "y")
        self.type_error(node, "bool")
        return False

    def duration(self, node: yaml.Node | None) -> int:
        """A Prometheus duration in milliseconds; an invalid one aborts decoding."""
        if self.is_null(node):
            return 0
        assert node is not None
        if not isinstance(node, yaml.ScalarNode):
            self.type_error(node, "string")
            return 0
        try:
            return parse_duration(node.value)
        except DurationError as exc:
            raise AbortDecode(str(exc)) from None

    def string_map(self, node: yaml.Node | None) -> dict[str, str]:
        if self.is_null(node):
            return {}
        assert node is not None
        if not isinstance(node, yaml.MappingNode):
            self.type_error(node, "map[string]string")
            return {}
        out: dict[str, str] = {}
        for key, value in self.pairs(node):
            if not isinstance(key, yaml.ScalarNode):
                self.type_error(key, "string")
                continue
            out[key.value] = self.string(value)
        return out

    def sequence(self, node: yaml.Node | None, go_type: str) -> list[yaml.Node]:
        if self.is_null(node):
            return []
        assert node is not None
        if not isinstance(node, yaml.SequenceNode):
            self.type_error(node, go_type)
            return []
        return list(node.value)

    def pairs(self, node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
        """Key/value pairs with ``<<`` merges resolved; a repeated key is an error."""
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag == _TAG + "merge":
                sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        for k, v in self.pairs(source):
                            merged.setdefault(_key_text(k), (k, v))
                    else:
                        line = source.start_mark.line + 1
                        self.errors.append(
                            f"line {line}: map merge requires map or sequence of maps as the value"
                        )
                continue
            text = _key_text(key)
            if text in out:
                first = out[text][0].start_mark.line + 1
                self.errors.append(
                    f'line {key.start_mark.line + 1}: mapping key "{text}" already defined at line {first}'
                )
                continue
            out[text] = (key, value)
        for text, pair in merged.items():
            out.setdefault(text, pair)
        return list(out.values())

    def struct(
        self,
        node: yaml.Node | None,
        go_type: str,
        fields: dict[str, Callable[[yaml.Node, yaml.Node], None]],
    ) -> bool:
        """Call ``fields[name](key, value)`` for every entry of a mapping; False if not a mapping."""
        if self.is_null(node):
            return True
        assert node is not None
        if not isinstance(node, yaml.MappingNode):
            self.type_error(node, go_type)
            return False
        for key, value in self.pairs(node):
            name = _key_text(key)
            handler = fields.get(name)
            if handler is None:
                if self.known_fields:
                    self.errors.append(
                        f"line {key.start_mark.line + 1}: field {name} not found in type {go_type}"
                    )
                continue
            handler(key, value)
        return True


def _key_text(node: yaml.Node) -> str:
    return node.value if isinstance(node, yaml.ScalarNode) else str(node.value)


def scalar_value(node: yaml.Node) -> Any:
    """A scalar node's Python value (as PyYAML's safe constructor makes it)."""
    return _Loader("").construct_object(node)
