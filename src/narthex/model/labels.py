"""Label and metric name rules (Prometheus 3: UTF-8 by default, legacy on request)."""

from __future__ import annotations

import re

METRIC_NAME = "__name__"
_LEGACY_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_LEGACY_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def is_valid_legacy_label_name(name: str) -> bool:
    return bool(_LEGACY_LABEL_NAME.match(name))


def is_valid_legacy_metric_name(name: str) -> bool:
    return bool(_LEGACY_METRIC_NAME.match(name))


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_valid_label_name(name: str, legacy: bool = False) -> bool:
    """UTF-8 validation (the Prometheus 3 default): any non-empty valid UTF-8 string."""
    if legacy:
        return is_valid_legacy_label_name(name)
    return name != "" and _is_utf8(name)


def is_valid_metric_name(name: str, legacy: bool = False) -> bool:
    if legacy:
        return is_valid_legacy_metric_name(name)
    return name != "" and _is_utf8(name)


def is_valid_label_value(value: str) -> bool:
    return _is_utf8(value)


# A label set: (name, value) pairs sorted by name, ``__name__`` included. Hashable, cheap to compare.
Labels = tuple[tuple[str, str], ...]


def labels_from_dict(mapping: dict[str, str]) -> Labels:
    """A sorted label set from a mapping, dropping empty values (an empty value means no label)."""
    return tuple(sorted((k, v) for k, v in mapping.items() if v != ""))


def labels_to_dict(labels: Labels) -> dict[str, str]:
    return dict(labels)


def metric_name(labels: Labels) -> str:
    for name, value in labels:
        if name == METRIC_NAME:
            return value
    return ""
