"""The interface every server component implements: start, apply a config, stop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from narthex.config import Config


class Component(Protocol):
    """A part of the server (storage, scrape manager, rule manager, notifier, web) with a lifecycle."""

    name: str

    async def start(self) -> None:
        """Start background work; called once, after the first successful :meth:`apply_config`."""

    async def apply_config(self, config: Config) -> None:
        """Apply a new, already validated configuration without a restart; raise to report failure."""

    async def stop(self) -> None:
        """Stop background work and release resources."""
