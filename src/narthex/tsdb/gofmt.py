"""Go formatting the TSDB tools reproduce: ``time.Duration``, ``strconv.Quote``, ``labels.String()``,
``units.Base2Bytes``, Go's tabwriter and ``time.ParseDuration``."""

from __future__ import annotations

import re

from narthex.model.labels import Labels
from narthex.util.gofmt import go_duration, labels_string

_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_NS["h"] = 3600 * 10**9
_GO_DUR_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> int:
    """``time.ParseDuration`` in nanoseconds (``2h``, ``1h30m``, ``1.5h``, ``-5m``)."""
    s = text
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _GO_DUR_PART.match(s, pos)
        if m is None or m.group(1) in ("", "."):
            if m is None and re.match(r"[0-9.]+\Z", s[pos:]):
                raise ValueError(f'time: missing unit in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _NS[m.group(2)]
        pos = m.end()
    return sign * int(total)


def format_go_duration(ns: int) -> str:
    """``time.Duration.String()``: ``2h0m0s``, ``1h59m59.999s``, ``1.5s``, ``999ms``, ``0s``."""
    return go_duration(ns)


def condensed_labels(labels: Labels) -> str:
    """promtool's ``CondensedString``: as :func:`labels_string` without spaces after commas."""
    return labels_string(labels, sep=",")


_BYTE_UNITS = (("EiB", 1 << 60), ("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20))
_BYTE_UNITS = (*_BYTE_UNITS, ("KiB", 1 << 10), ("B", 1))


def format_base2_bytes(n: int) -> str:
    """``units.Base2Bytes(n).String()`` (alecthomas/units): ``1MiB512KiB3B``, ``0B``."""
    if n == 0:
        return "0B"
    sign = "-" if n < 0 else ""
    n = abs(n)
    parts = []
    for unit, size in _BYTE_UNITS:
        q, n = divmod(n, size)
        if q:
            parts.append(f"{q}{unit}")
    return sign + "".join(parts)


def tabwrite(rows: list[list[str]], minwidth: int = 13, padding: int = 2) -> str:
    """Go's ``tabwriter.NewWriter(w, minwidth, 0, padding, ' ', 0)`` over tab-separated cells.

    Every cell but the last of a row is padded to its column's width (widest cell + padding, at
    least ``minwidth``); the last cell is written as is.
    """
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    widths = [0] * ncols
    for r in rows:
        for i, cell in enumerate(r[:-1]):
            widths[i] = max(widths[i], len(cell) + padding, minwidth)
    lines = []
    for r in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(r[:-1])]
        lines.append("".join(cells) + r[-1])
    return "\n".join(lines) + "\n"
