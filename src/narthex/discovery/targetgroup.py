"""Target groups (``discovery/targetgroup``): a source's targets and their common labels.

Files and HTTP SD endpoints hold ``[{"targets": [...], "labels": {...}}, ...]``; each target string
becomes ``{__address__: target}``. Decoding is as strict as Prometheus's (unknown fields, non-string
values and invalid label names are refused).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from narthex.config.errors import go_quote
from narthex.model.labels import is_valid_label_name

ADDRESS_LABEL = "__address__"


@dataclass(slots=True)
class TargetGroup:
    """Targets (label sets, ``__address__`` at least) sharing ``labels``, identified by ``source``."""

    source: str
    targets: list[dict[str, str]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


class TargetGroupError(ValueError):
    """A target group document that Prometheus would refuse."""


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string" if isinstance(value, str) else "null"


def _group(item: Any, source: str, yaml_doc: bool) -> TargetGroup:
    if item is None:
        raise TargetGroupError("nil target group item found")
    if not isinstance(item, dict):
        kind = type(item).__name__ if yaml_doc else _json_type(item)
        raise TargetGroupError(f"cannot unmarshal {kind} into a target group")
    for key in item:
        if key not in ("targets", "labels"):
            if yaml_doc:
                raise TargetGroupError(f"field {key} not found in type struct targetgroup.Group")
            raise TargetGroupError(f"json: unknown field {go_quote(str(key))}")
    targets = item.get("targets") or []
    if not isinstance(targets, list):
        raise TargetGroupError("targets must be a list of strings")
    addresses = []
    for target in targets:
        if (
            isinstance(target, bool)
            or not isinstance(target, (str, int, float))
            or (not yaml_doc and not isinstance(target, str))
        ):
            raise TargetGroupError(f"cannot unmarshal {_json_type(target)} into a target (string)")
        addresses.append({ADDRESS_LABEL: str(target)})
    labels = item.get("labels") or {}
    if not isinstance(labels, dict):
        raise TargetGroupError("labels must be a map of label names to values")
    out: dict[str, str] = {}
    for name, value in labels.items():
        name = str(name)
        if not is_valid_label_name(name):
            raise TargetGroupError(f"{go_quote(name)} is not a valid label name")
        if value is None:
            value = ""
        elif isinstance(value, (dict, list)) or (not yaml_doc and not isinstance(value, str)):
            raise TargetGroupError(f"cannot unmarshal {_json_type(value)} into a label value (string)")
        out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return TargetGroup(source, addresses, out)


def _groups(doc: Any, source_prefix: str, yaml_doc: bool) -> list[TargetGroup]:
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise TargetGroupError("target groups must be a list")
    return [_group(item, f"{source_prefix}:{i}", yaml_doc) for i, item in enumerate(doc)]


def groups_from_json(data: bytes | str, source_prefix: str) -> list[TargetGroup]:
    """Decode a JSON list of target groups; sources are ``<prefix>:<index>``."""
    if not data.strip():
        raise TargetGroupError("unexpected end of JSON input")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TargetGroupError(str(exc)) from None
    return _groups(doc, source_prefix, False)


def groups_from_yaml(data: bytes | str, source_prefix: str) -> list[TargetGroup]:
    """Decode a YAML list of target groups; sources are ``<prefix>:<index>``."""
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise TargetGroupError(f"yaml: {exc}".replace("\n", " ")) from None
    return _groups(doc, source_prefix, True)


def static_groups(configs: list[Any]) -> list[TargetGroup]:
    """``static_configs`` as target groups, sources ``"0"``, ``"1"``, ... as Prometheus names them."""
    return [
        TargetGroup(str(i), [{ADDRESS_LABEL: t} for t in cfg.targets], dict(cfg.labels))
        for i, cfg in enumerate(configs)
    ]
