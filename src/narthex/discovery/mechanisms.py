"""Which service-discovery mechanisms Narthex implements, and what to say about the others."""

from __future__ import annotations

# Config keys of the mechanisms that produce targets; the others are reported as discovery errors.
IMPLEMENTED = frozenset({"static_configs", "file_sd_configs", "http_sd_configs"})


def unsupported(mechanisms: list[str]) -> list[str]:
    """The configured mechanisms (``*_sd_configs`` keys) Narthex cannot run yet."""
    return [m for m in mechanisms if m not in IMPLEMENTED]


def unsupported_message(mechanism: str) -> str:
    return f"service discovery mechanism {mechanism} is not implemented by Narthex; no targets from it"
