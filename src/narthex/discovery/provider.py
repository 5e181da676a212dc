"""The interface every discovery mechanism implements, and what it reports back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from narthex.discovery.targetgroup import TargetGroup

Send = Callable[[list[TargetGroup]], None]
"""Deliver changed target groups; a group with no targets removes its source's targets."""


class Provider(ABC):
    """One configured SD section (``file_sd_configs[0]``...). ``error`` holds its last failure."""

    mechanism = ""

    def __init__(self) -> None:
        self.error: str | None = None

    @abstractmethod
    async def run(self, send: Send) -> None:
        """Discover until cancelled, calling ``send`` with each batch of (changed) groups."""


class StaticProvider(Provider):
    """``static_configs``: the groups are known up front."""

    mechanism = "static_configs"

    def __init__(self, groups: list[TargetGroup]) -> None:
        super().__init__()
        self.groups = groups

    async def run(self, send: Send) -> None:
        send(self.groups)
