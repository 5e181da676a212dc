"""Which service-discovery mechanisms Narthex implements, and what to say about the others."""

from __future__ import annotations

# Config keys of the mechanisms that produce targets today; more join as they are built.
IMPLEMENTED = frozenset({"static_configs"})


def unsupported(mechanisms: list[str]) -> list[str]:
    """The configured mechanisms (``*_sd_configs`` keys) Narthex cannot run yet."""
    return [m for m in mechanisms if m not in IMPLEMENTED]


def unsupported_message(mechanism: str) -> str:
    return f"service discovery mechanism {mechanism} is not implemented by Narthex; no targets from it"
