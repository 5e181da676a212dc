"""ULIDs for block directories: 48-bit millisecond time + 80 random bits, Crockford base32."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid(ms: int | None = None) -> str:
    """A new 26-character ULID; lexical order follows creation time."""
    if ms is None:
        ms = int(time.time() * 1000)
    value = (ms & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_ulid(name: str) -> bool:
    return len(name) == 26 and all(c in _ALPHABET for c in name.upper())
