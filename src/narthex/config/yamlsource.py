"""YAML text to plain Python values, remembering the line of every key and refusing duplicate keys.

Go's yaml.v2 decodes any scalar into a string field using its source text (``regex: 1`` is the string
``"1"``), so integers and floats keep their source text in :class:`RawInt` and :class:`RawFloat`.
"""

from __future__ import annotations

from typing import Any

import yaml

from narthex.config.errors import Path

try:
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

_TAG = "tag:yaml.org,2002:"


class RawInt(int):
    """An integer scalar that remembers how it was written."""

    raw: str

    def __new__(cls, value: int, raw: str) -> RawInt:
        obj = super().__new__(cls, value)
        obj.raw = raw
        return obj


class RawFloat(float):
    """A float scalar that remembers how it was written."""

    raw: str

    def __new__(cls, value: float, raw: str) -> RawFloat:
        obj = super().__new__(cls, value)
        obj.raw = raw
        return obj


class YAMLSyntaxError(Exception):
    """Text that is not YAML; the message reads like Go's (``yaml: line 3: ...``)."""


class DuplicateKeyError(Exception):
    """A mapping that sets the same key twice (``path`` is the mapping, ``line`` the second key)."""

    def __init__(self, path: Path, key: str, line: int) -> None:
        super().__init__(key)
        self.path = path
        self.key = key
        self.line = line


class _Converter:
    def __init__(self) -> None:
        self.loader = _Loader("")
        self.lines: dict[Path, int] = {}

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag == _TAG + "str" or not tag.startswith(_TAG):
            return node.value
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "binary":
            raw = self.loader.construct_object(node)
            return raw.decode("utf-8", "surrogateescape")
        if tag == _TAG + "timestamp":
            return node.value
        value = self.loader.construct_object(node)
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return RawInt(value, node.value)
        if isinstance(value, float):
            return RawFloat(value, node.value)
        return value

    def key_text(self, node: yaml.Node) -> str:
        if isinstance(node, yaml.ScalarNode):
            value = self.scalar(node)
            if value is None:
                return ""
            if isinstance(value, RawInt | RawFloat):
                return value.raw
            if isinstance(value, bool):
                return node.value
            return str(value)
        raise YAMLSyntaxError(f"yaml: line {node.start_mark.line + 1}: invalid map key: complex key")

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        """A mapping; ``<<`` merge keys are applied where they appear and may be overridden (as yaml.v2),
        while a key written twice is an error."""
        out: dict[str, Any] = {}
        explicit: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in reversed(sources):
                    if not isinstance(source, yaml.MappingNode):
                        line = source.start_mark.line + 1
                        raise YAMLSyntaxError(
                            f"yaml: line {line}: map merge requires map or sequence of maps as the value"
                        )
                    out.update(self.mapping(source, path))
                continue
            key = self.key_text(key_node)
            line = key_node.start_mark.line + 1
            if key in explicit:
                raise DuplicateKeyError(path, key, line)
            explicit.add(key)
            self.lines[(*path, key)] = line
            out[key] = self.convert(value_node, (*path, key))
        return out

    def convert(self, node: yaml.Node, path: Path) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, child in enumerate(node.value):
                self.lines[(*path, index)] = child.start_mark.line + 1
                items.append(self.convert(child, (*path, index)))
            return items
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        raise YAMLSyntaxError(f"yaml: unexpected node {node!r}")  # pragma: no cover


def parse_yaml(text: str) -> tuple[Any, dict[Path, int]]:
    """Parse the first YAML document of ``text``; return its value and the line of each key path."""
    try:
        documents = yaml.compose_all(text, Loader=_Loader)
        node = next(iter(documents), None)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise YAMLSyntaxError(f"yaml: {line}{problem}") from None
    except yaml.YAMLError as exc:
        raise YAMLSyntaxError(f"yaml: {exc}") from None
    converter = _Converter()
    converter.lines[()] = 1
    if node is None:
        return None, converter.lines
    try:
        return converter.convert(node, ()), converter.lines
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise YAMLSyntaxError(f"yaml: {line}{exc.problem}") from None
