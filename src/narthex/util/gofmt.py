"""Go's text formatting that Prometheus's outputs are made of: ``strconv.Quote`` and
``strconv.FormatFloat``. One implementation for every package that has to print as Prometheus does.
"""

from __future__ import annotations

import math

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def is_go_print(ch: str) -> bool:
    """Go's ``strconv.IsPrint`` (space included), as far as Python's Unicode tables allow."""
    return ch == " " or (ch.isprintable() and ch != "\ufffd" and not ("\ud800" <= ch <= "\udfff"))


def quote_char(ch: str, quote: str = '"') -> str:
    """One character as ``strconv.Quote`` writes it inside ``quote`` delimiters."""
    if ch == quote or ch == "\\":
        return "\\" + ch
    if is_go_print(ch):
        return ch
    if ch in _GO_ESCAPES:
        return _GO_ESCAPES[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # A raw byte kept through surrogateescape.
        return f"\\x{code - 0xDC00:02x}"
    if ch == "\ufffd":
        return ch
    if code < 0x80 or (0xD800 <= code <= 0xDFFF):
        return f"\\x{code & 0xFF:02x}" if code < 0x80 else "\\ufffd"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def go_quote(text: str, quote: str = '"') -> str:
    """``strconv.Quote`` (or ``QuoteRune`` with ``quote="'"``)."""
    return quote + "".join(quote_char(c, quote) for c in text) + quote


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of abs(value) and the decimal point position (0.DIGITS x 10^dp)."""
    text = repr(abs(value))
    exp = 0
    if "e" in text:
        text, exp_text = text.split("e")
        exp = int(exp_text)
    int_part, _, frac = text.partition(".")
    digits = int_part + frac
    dp = len(int_part) + exp
    stripped = digits.lstrip("0")
    dp -= len(digits) - len(stripped)
    stripped = stripped.rstrip("0")
    if not stripped:
        return "", 0
    return stripped, dp


def _fmt_e(digits: str, dp: int, prec: int, letter: str) -> str:
    out = digits[0] if digits else "0"
    if prec > 0:
        out += "." + digits[1 : prec + 1].ljust(prec, "0")
    exp = dp - 1 if digits else 0
    return f"{out}{letter}{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _fmt_f(digits: str, dp: int, prec: int) -> str:
    int_part = digits[:dp].ljust(dp, "0") if dp > 0 else "0"
    if prec <= 0:
        return int_part
    frac = "".join(digits[i] if 0 <= i < len(digits) else "0" for i in range(dp, dp + prec))
    return int_part + "." + frac


def format_float(value: float, fmt: str = "g", prec: int = -1) -> str:
    """``strconv.FormatFloat(value, fmt, prec, 64)`` for fmt in e, E, f, F, g, G (prec -1: shortest)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    lower = fmt.lower()
    if prec >= 0:
        if lower == "g":
            body = f"{abs(value):.{max(prec, 1)}g}"
            return sign + (body.upper() if fmt == "G" else body)
        body = f"{abs(value):.{prec}{lower}}"
        return sign + (body.upper() if fmt == "E" else body)
    digits, dp = _shortest_digits(value)
    if lower == "e":
        body = _fmt_e(digits, dp, max(len(digits) - 1, 0), fmt)
    elif lower == "f":
        body = _fmt_f(digits, dp, max(len(digits) - dp, 0))
    else:
        exp = dp - 1
        if digits and (exp < -4 or exp >= 6):
            body = _fmt_e(digits, dp, len(digits) - 1, "e" if fmt == "g" else "E")
        else:
            body = _fmt_f(digits, dp, max(len(digits) - dp, 0))
    return sign + body


def _fraction(value: int, scale: int) -> str:
    """``value / scale`` in decimal with trailing zeros dropped (``1500, 1000`` -> ``1.5``)."""
    whole, rest = divmod(value, scale)
    if not rest:
        return str(whole)
    return f"{whole}." + str(rest).rjust(len(str(scale)) - 1, "0").rstrip("0")


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``0s``, ``1.5ms``, ``1m30s``, ``2h0m0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000_000_000:
        for unit, scale in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < scale * 1000:
                return sign + _fraction(u, scale) + unit
    seconds, frac = divmod(u, 1_000_000_000)
    minutes, secs = divmod(seconds, 60)
    hours, mins = divmod(minutes, 60)
    out = _fraction(secs * 1_000_000_000 + frac, 1_000_000_000) + "s"
    if minutes:
        out = f"{mins}m" + out
    if hours:
        out = f"{hours}h" + out
    return sign + out


def labels_string(labels: tuple[tuple[str, str], ...], sep: str = ", ") -> str:
    """Prometheus's ``labels.Labels.String()``: ``{__name__="up", job="x"}``, names quoted when they are
    not valid legacy label names (``sep=","`` gives ``StringNoSpace``)."""
    from narthex.model.labels import is_valid_legacy_label_name

    return (
        "{"
        + sep.join(f"{k if is_valid_legacy_label_name(k) else go_quote(k)}={go_quote(v)}" for k, v in labels)
        + "}"
    )
