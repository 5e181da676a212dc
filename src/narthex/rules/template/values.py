"""Go-typed values Prometheus templates see: query samples and results, argument maps, safe HTML."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from narthex.rules.template.gofmt import format_value


class HTML(str):
    """``html/template.HTML``: text trusted not to need escaping (made by ``safeHtml``)."""

    go_type = "template.HTML"
    __slots__ = ()


class AnyMap(dict[str, Any]):
    """A ``map[string]interface{}`` (what ``args`` returns): a missing key is nil, never ``""``."""

    go_type = "map[string]interface {}"


class StringMap(dict[str, str]):
    """A ``map[string]string`` such as a label set: a missing key is ``""`` under missingkey=zero."""

    go_type = "map[string]string"


def map_zero(mapping: Mapping[str, Any]) -> Any:
    """The zero value of a map's element type: ``""`` for string maps, nil otherwise.

    Plain dicts are string maps when non-empty with only string values (an empty one counts as nil)."""
    if isinstance(mapping, AnyMap):
        return None
    if isinstance(mapping, StringMap) or (mapping and all(isinstance(v, str) for v in mapping.values())):
        return ""
    return None


class Sample:
    """Prometheus's template ``*sample``: ``.Labels`` (map) and ``.Value`` (float or histogram)."""

    go_type = "*template.sample"
    __slots__ = ("Labels", "Value")

    def __init__(self, labels: Mapping[str, str], value: Any) -> None:
        self.Labels = StringMap(labels)
        self.Value = value

    def go_struct_text(self) -> str:
        """The struct as fmt prints it once the pointer is dereferenced, e.g. ``{map[a:b] 1}``."""
        return f"{{{format_value(self.Labels)} {format_value(self.Value)}}}"

    def __repr__(self) -> str:
        return "&" + self.go_struct_text()

    __str__ = __repr__


class QueryResult(list[Sample]):
    """Prometheus's ``queryResult`` (a slice of samples), as ``query`` returns."""

    go_type = "template.queryResult"


@dataclass
class AlertTemplateData:
    """The data alerting rules expand templates with (``.Labels``, ``.ExternalLabels``, ...)."""

    Labels: StringMap
    ExternalLabels: StringMap
    ExternalURL: str
    Value: Any

    go_type = "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }"  # noqa: E501
