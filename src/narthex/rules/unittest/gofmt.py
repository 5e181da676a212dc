"""Go value formatting used in promtool's unit test messages."""

from __future__ import annotations

from narthex.model.labels import Labels, is_valid_legacy_label_name
from narthex.promql.lexer import go_quote
from narthex.util.gofmt import format_float


def format_float_e(value: float) -> str:
    """``strconv.FormatFloat(v, 'E', -1, 64)``: ``1E+00``, ``3.5E-01``, ``NaN``, ``+Inf``."""
    return format_float(value, "E")


def go_duration(ms: int) -> str:
    """Go's ``time.Duration.String()`` of milliseconds: ``0s``, ``1.5s``, ``5m0s``, ``1h0m0s``."""
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    if ms < 1000:
        return f"{sign}{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    sec = f"{seconds}" + (f".{millis:03d}".rstrip("0") if millis else "") + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{sec}"
    if minutes:
        return f"{sign}{minutes}m{sec}"
    return sign + sec


def labels_string(labels: Labels) -> str:
    """``labels.Labels.String()``: ``{a="b", c="d"}`` (names quoted when not legacy-valid)."""
    parts = []
    for name, value in labels:
        shown = name if is_valid_legacy_label_name(name) else go_quote(name)
        parts.append(f"{shown}={go_quote(value)}")
    return "{" + ", ".join(parts) + "}"


def sort_key(labels: Labels) -> tuple[tuple[bytes, bytes], ...]:
    """``labels.Compare`` order (byte-wise)."""
    return tuple((k.encode(), v.encode()) for k, v in labels)
