"""Go value formatting used in promtool's unit test messages."""

from __future__ import annotations

from narthex.model.labels import Labels
from narthex.util.gofmt import format_float
from narthex.util.gofmt import go_duration as go_duration_ns


def format_float_e(value: float) -> str:
    """``strconv.FormatFloat(v, 'E', -1, 64)``: ``1E+00``, ``3.5E-01``, ``NaN``, ``+Inf``."""
    return format_float(value, "E")


def go_duration(ms: int) -> str:
    """Go's ``time.Duration.String()`` of milliseconds: ``0s``, ``1.5s``, ``5m0s``, ``1h0m0s``."""
    return go_duration_ns(ms * 1_000_000)


def sort_key(labels: Labels) -> tuple[tuple[bytes, bytes], ...]:
    """``labels.Compare`` order (byte-wise)."""
    return tuple((k.encode(), v.encode()) for k, v in labels)
