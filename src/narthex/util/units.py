"""Byte sizes as Prometheus writes them (``512MB``, powers of two: 1KB = 1024B)."""

from __future__ import annotations

import re

_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40, "PB": 1 << 50, "EB": 1 << 60}
_SIZE_RE = re.compile(r"^(\d+)(B|KB|MB|GB|TB|PB|EB)$")


def parse_bytes(text: str) -> int:
    """Parse ``<integer><unit>`` into bytes; a unit is required, as in Prometheus's ``units.Base2Bytes``."""
    match = _SIZE_RE.match(text.strip().upper())
    if match is None:
        raise ValueError(f"invalid size {text!r}: want an integer with a unit (B, KB, MB, GB, TB, PB, EB)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_bytes(size: int) -> str:
    """The largest exact unit: ``536870912`` -> ``512MB``."""
    for unit in ("EB", "PB", "TB", "GB", "MB", "KB"):
        if size and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return f"{size}B"
