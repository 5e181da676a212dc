"""Prometheus durations (``model.Duration``): ``1y2w3d4h5m6s7ms`` parsed to milliseconds and back."""

from __future__ import annotations

import re

MS = 1
SECOND = 1000 * MS
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
YEAR = 365 * DAY

_UNITS: tuple[tuple[str, int], ...] = (
    ("y", YEAR),
    ("w", WEEK),
    ("d", DAY),
    ("h", HOUR),
    ("m", MINUTE),
    ("s", SECOND),
    ("ms", MS),
)
_DURATION_RE = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$", re.ASCII
)
_MAX_MS = (1 << 63) // 1_000_000 - 1  # Go's time.Duration is int64 nanoseconds.


class DurationError(ValueError):
    """A string that is not a Prometheus duration."""


def parse_duration(text: str) -> int:
    """Parse a Prometheus duration into milliseconds, as ``model.ParseDuration`` does."""
    if text == "":
        raise DurationError("empty duration string")
    if text == "0":
        return 0
    match = _DURATION_RE.match(text)
    if match is None or not any(match.groups()):
        raise DurationError(f'not a valid duration string: "{text}"')
    total = 0
    for group, (_, mult) in zip(match.groups(), _UNITS, strict=True):
        if group is not None:
            total += int(group) * mult
            if total > _MAX_MS:
                raise DurationError(f'not a valid duration string: "{text}"')
    return total


def format_duration(ms: int) -> str:
    """Format milliseconds as Prometheus does (``90d`` not ``12w6d``; years and weeks only when exact)."""
    if ms == 0:
        return "0s"
    sign = ""
    if ms < 0:
        sign, ms = "-", -ms
    out = []
    for unit, mult in _UNITS:
        if unit in ("y", "w") and ms % mult != 0:
            continue
        count, ms = divmod(ms, mult)
        if count:
            out.append(f"{count}{unit}")
    return sign + "".join(out)


def parse_duration_seconds(text: str) -> float:
    """Parse a duration into float seconds."""
    return parse_duration(text) / 1000.0
