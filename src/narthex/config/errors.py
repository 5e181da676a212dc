"""Configuration errors, worded like Prometheus's, with the YAML path and line where known."""

from __future__ import annotations

import re
from collections.abc import Sequence

Path = tuple[str | int, ...]
_SURROGATE = re.compile(r"[\udc80-\udcff]")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(Exception):
    """A configuration file Narthex refuses; ``str()`` is the full human-readable message."""

    def __init__(self, message: str) -> None:
        # Invalid UTF-8 from the file (kept as surrogates) is shown as \xNN so the message prints.
        super().__init__(_SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", message))


class LocatedError(Exception):
    """A validation failure at a YAML path (turned into a :class:`ConfigError` by the loader)."""

    def __init__(self, message: str, path: Path = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def format_path(path: Sequence[str | int]) -> str:
    """``("scrape_configs", 0, "relabel_configs", 1)`` -> ``scrape_configs[0].relabel_configs[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _IDENT.match(part):
            out += f"[{go_quote(part)}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def go_quote(text: str) -> str:
    """Quote a string as Go's ``%q`` does (invalid UTF-8 bytes, kept as surrogates, become ``\\xNN``)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
