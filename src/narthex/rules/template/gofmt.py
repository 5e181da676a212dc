"""Go's fmt and strconv formatting of template values: ``Sprint``, ``Sprintf``, ``Sprintln``, quoting.

Python values stand for Go ones: ``bool``; ``int`` (int, or uint64 above the int64 range); ``float``
(float64); ``str``; ``None`` (nil); ``list``/``tuple`` (slices); ``dict`` (maps, printed in sorted key
order). Other objects print through their Go-style ``String()`` method when they have one, else ``str()``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from narthex.util.gofmt import format_float, go_quote, is_go_print


def go_type_name(value: Any) -> str:
    """The Go type a Python value stands for, as fmt's ``%T`` prints it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if value < 2**63 else "uint64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, complex):
        return "complex128"
    if isinstance(value, str):
        go_type = getattr(type(value), "go_type", None)
        return go_type or "string"
    go_type = getattr(value, "go_type", None)
    if isinstance(go_type, str):
        return go_type
    if isinstance(value, Mapping):
        elems = {go_type_name(v) for v in value.values()}
        return "map[string]string" if elems <= {"string"} else "map[string]interface {}"
    if isinstance(value, Sequence):
        elems = {go_type_name(v) for v in value}
        return f"[]{elems.pop()}" if len(elems) == 1 else "[]interface {}"
    if callable(value):
        return "func"
    return type(value).__name__


# -- the %v rendering of values ------------------------------------------------------------------------------


_PLAIN_TYPES = (bool, int, float, complex, str, dict, list, tuple)


def stringer(value: Any) -> str | None:
    """The result of a Go ``String()`` (or ``Error()``) method, if the value has one."""
    method = getattr(value, "String", None) or getattr(value, "Error", None)
    if callable(method) and not isinstance(value, type):
        return str(method())
    return None


def format_value(value: Any, verb: str = "v", depth: int = 0) -> str:
    """fmt's ``%v`` (or ``%s``/``%d``-style element verbs inside containers) of one value."""
    if value is None:
        return "<nil>"
    if type(value) not in _PLAIN_TYPES and (text := stringer(value)) is not None:
        return text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value, "g", -1)
    if isinstance(value, complex):
        return f"({format_float(value.real)}{'+' if value.imag >= 0 else ''}{format_float(value.imag)}i)"
    if isinstance(value, str):
        return str.__str__(value)
    text = stringer(value)
    if text is not None:
        return text
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: _sort_key(kv[0]))
        inner = " ".join(
            f"{format_value(k, verb, depth + 1)}:{format_value(v, verb, depth + 1)}" for k, v in items
        )
        return f"map[{inner}]"
    if isinstance(value, Sequence):
        return "[" + " ".join(format_value(v, verb, depth + 1) for v in value) + "]"
    if callable(value):
        return f"{hex(id(value))}"
    return str(value)


def _sort_key(key: Any) -> tuple[int, Any]:
    if isinstance(key, bool):
        return (0, key)
    if isinstance(key, int | float):
        return (1, key)
    return (2, str(key))


def sprint(*args: Any) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    out: list[str] = []
    prev_string = False
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(format_value(arg))
        prev_string = is_string
    return "".join(out)


def sprintln(*args: Any) -> str:
    """fmt.Sprintln: operands always separated by spaces, newline appended."""
    return " ".join(format_value(arg) for arg in args) + "\n"


# -- Sprintf -----------------------------------------------------------------------------------------


class _Spec:
    __slots__ = ("minus", "plus", "prec", "sharp", "space", "width", "zero")

    def __init__(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = False
        self.width: int | None = None
        self.prec: int | None = None

    def pad(self, text: str, zero_ok: bool = False) -> str:
        if self.width is None or len(text) >= self.width:
            return text
        fill = self.width - len(text)
        if self.minus:
            return text + " " * fill
        if self.zero and zero_ok:
            sign = text[0] if text[:1] in ("+", "-", " ") else ""
            return sign + "0" * fill + text[len(sign) :]
        return " " * fill + text


def _bad_verb(verb: str, arg: Any) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type_name(arg)}={format_value(arg)})"


def _signed(text: str, negative: bool, spec: _Spec) -> str:
    if negative:
        return "-" + text
    if spec.plus:
        return "+" + text
    if spec.space:
        return " " + text
    return text


def _format_int(value: int, verb: str, spec: _Spec) -> str:
    negative = value < 0
    magnitude = abs(value)
    if verb == "c":
        return spec.pad(chr(magnitude) if magnitude <= 0x10FFFF else "\ufffd")
    if verb == "q":
        return spec.pad(go_quote(chr(magnitude), "'") if magnitude <= 0x10FFFF else "'\ufffd'")
    if verb == "U":
        text = f"U+{magnitude:04X}"
        if spec.sharp and magnitude <= 0x10FFFF and is_go_print(chr(magnitude)):
            text += f" '{chr(magnitude)}'"
        return spec.pad(text)
    base = {"d": "d", "v": "d", "b": "b", "o": "o", "O": "o", "x": "x", "X": "X"}[verb]
    digits = format(magnitude, base)
    if spec.prec is not None:
        digits = "" if spec.prec == 0 and magnitude == 0 else digits.rjust(spec.prec, "0")
    prefix = ""
    if verb == "O" or (spec.sharp and verb == "o" and not digits.startswith("0")):
        prefix = "0o" if verb == "O" else "0"
    elif spec.sharp and verb in "xX":
        prefix = "0x" if verb == "x" else "0X"
    elif spec.sharp and verb == "b":
        prefix = "0b"
    text = _signed(prefix + digits, negative, spec)
    if spec.zero and spec.prec is None and spec.width is not None and not spec.minus:
        sign = text[0] if text[:1] in ("+", "-", " ") else ""
        body = text[len(sign) :]
        return sign + body.rjust(spec.width - len(sign), "0")
    return spec.pad(text)


def _format_float(value: float, verb: str, spec: _Spec) -> str:
    if verb == "v":
        fmt, prec = "g", -1 if spec.prec is None else spec.prec
    elif verb in "eEfF":
        fmt, prec = verb.lower() if verb == "F" else verb, 6 if spec.prec is None else spec.prec
    else:
        fmt, prec = verb, -1 if spec.prec is None else spec.prec
    if math.isnan(value) or math.isinf(value):
        body = ""
    elif verb in "xX":
        body = _hex_float(abs(value), verb)
    else:
        body = format_float(abs(value), fmt, prec)
    if math.isnan(value):
        text = ("+" if spec.plus else " " if spec.space else "") + "NaN"
        return spec.pad(text)
    if math.isinf(value):
        return spec.pad("+Inf" if value > 0 else "-Inf")
    negative = math.copysign(1.0, value) < 0
    return spec.pad(_signed(body, negative, spec), zero_ok=True)


def _hex_float(value: float, verb: str) -> str:
    """strconv's shortest ``'x'`` format of a non-negative float, e.g. ``0x1.8p+01``."""
    mantissa, _, exp = value.hex()[2:].partition("p")
    whole, _, frac = mantissa.partition(".")
    frac = frac.rstrip("0")
    exponent = int(exp)
    text = f"0x{whole}{'.' + frac if frac else ''}p{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return text.upper() if verb == "X" else text


def _format_string(text: str, verb: str, spec: _Spec) -> str:
    if spec.prec is not None:
        text = text[: spec.prec]
    if verb in "vs":
        return spec.pad(text)
    if verb == "q":
        if spec.sharp and "`" not in text and all(is_go_print(c) or c == "\t" for c in text):
            return spec.pad("`" + text + "`")
        return spec.pad(go_quote(text))
    data = text.encode("utf-8", "surrogatepass")
    sep = " " if spec.space else ""
    prefix = ("0x" if verb == "x" else "0X") if spec.sharp else ""
    hex_bytes = [prefix + format(b, "02x" if verb == "x" else "02X") for b in data]
    if not spec.space:
        return spec.pad(prefix + "".join(h[len(prefix) :] for h in hex_bytes))
    return spec.pad(sep.join(hex_bytes))


def format_arg(arg: Any, verb: str, spec: _Spec | None = None) -> str:
    """One ``%verb`` conversion of ``arg`` (with flags, width and precision in ``spec``)."""
    spec = spec or _Spec()
    if verb == "T":
        return spec.pad(go_type_name(arg))
    if arg is None:
        return spec.pad("<nil>") if verb == "v" else _bad_verb(verb, arg)
    if isinstance(arg, int) and type(arg) not in _PLAIN_TYPES and verb in "vs":
        text = stringer(arg)
        if text is not None:
            return _format_string(text, verb, spec)
    if isinstance(arg, bool):
        return spec.pad("true" if arg else "false") if verb in "vt" else _bad_verb(verb, arg)
    if isinstance(arg, int):
        return _format_int(arg, verb, spec) if verb in "vdboOxXcqU" else _bad_verb(verb, arg)
    if isinstance(arg, float):
        return _format_float(arg, verb, spec) if verb in "veEfFgGxX" else _bad_verb(verb, arg)
    if isinstance(arg, str):
        return _format_string(arg, verb, spec) if verb in "vsqxX" else _bad_verb(verb, arg)
    text = stringer(arg)
    if text is not None:
        return _format_string(text, verb, spec) if verb in "vsqxX" else _bad_verb(verb, arg)
    if isinstance(arg, Mapping):
        items = sorted(arg.items(), key=lambda kv: _sort_key(kv[0]))
        inner = " ".join(f"{format_arg(k, verb)}:{format_arg(v, verb)}" for k, v in items)
        return spec.pad(f"map[{inner}]")
    if isinstance(arg, Sequence):
        return spec.pad("[" + " ".join(format_arg(v, verb) for v in arg) + "]")
    return spec.pad(format_value(arg)) if verb in "vs" else _bad_verb(verb, arg)


def _parse_number(fmt: str, i: int) -> tuple[int | None, int]:
    start = i
    while i < len(fmt) and fmt[i].isdigit():
        i += 1
    return (int(fmt[start:i]) if i > start else None), i


def _explicit_index(fmt: str, i: int, nargs: int) -> tuple[int | None, int, bool]:
    """An ``[n]`` argument index at ``i``: (0-based index or None, next position, whether it was valid)."""
    if i >= len(fmt) or fmt[i] != "[":
        return None, i, True
    end = fmt.find("]", i)
    if end < 0:
        return None, len(fmt), False
    text = fmt[i + 1 : end]
    if not text.isdigit() or not 1 <= int(text) <= nargs:
        return None, end + 1, False
    return int(text) - 1, end + 1, True


def sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf, including ``%[n]d`` indexes and Go's ``%!verb(type=value)``, ``%!d(MISSING)``,
    ``%!d(BADINDEX)`` and EXTRA diagnostics."""
    out: list[str] = []
    arg_index = 0
    reordered = False
    i = 0
    length = len(fmt)
    while i < length:
        percent = fmt.find("%", i)
        if percent < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:percent])
        i = percent + 1
        spec = _Spec()
        while i < length and fmt[i] in "+-# 0":
            flag = fmt[i]
            spec.plus |= flag == "+"
            spec.minus |= flag == "-"
            spec.sharp |= flag == "#"
            spec.space |= flag == " "
            spec.zero |= flag == "0" and not spec.minus
            i += 1
        good_index = True
        index, i, ok = _explicit_index(fmt, i, len(args))
        good_index &= ok
        reordered |= index is not None or not ok
        arg_index = arg_index if index is None else index
        if i < length and fmt[i] == "*":
            i += 1
            if (
                arg_index < len(args)
                and isinstance(args[arg_index], int)
                and not isinstance(args[arg_index], bool)
            ):
                spec.width = args[arg_index]
                if spec.width < 0:
                    spec.minus, spec.width = True, -spec.width
            else:
                out.append("%!(BADWIDTH)")
            arg_index += 1
        else:
            spec.width, i = _parse_number(fmt, i)
        if i < length and fmt[i] == ".":
            i += 1
            index, i, ok = _explicit_index(fmt, i, len(args))
            good_index &= ok
            reordered |= index is not None or not ok
            arg_index = arg_index if index is None else index
            if i < length and fmt[i] == "*":
                i += 1
                if arg_index < len(args) and isinstance(args[arg_index], int):
                    spec.prec = max(args[arg_index], 0)
                else:
                    out.append("%!(BADPREC)")
                arg_index += 1
            else:
                prec, i = _parse_number(fmt, i)
                spec.prec = prec or 0
        index, i, ok = _explicit_index(fmt, i, len(args))
        good_index &= ok
        reordered |= index is not None or not ok
        arg_index = arg_index if index is None else index
        if i >= length:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if not good_index:
            out.append(f"%!{verb}(BADINDEX)")
            continue
        if arg_index >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[arg_index]
        arg_index += 1
        out.append(format_arg(arg, verb, spec))
    if not reordered and arg_index < len(args):
        extra = ", ".join(
            "<nil>" if a is None else f"{go_type_name(a)}={format_value(a)}" for a in args[arg_index:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
