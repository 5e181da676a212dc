"""Per-job discovery: runs a job's SD providers and keeps the union of their target groups.

Groups are keyed by (provider, source), so a provider's update replaces only the sources it names. A
job's discovery keeps running across config reloads while its SD sections are unchanged (compare
:func:`sd_fingerprint`). Mechanisms Narthex does not implement are reported as discovery errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from narthex.config.sd import FileSDConfig, HTTPSDConfig, ServiceDiscoveryFields
from narthex.discovery.file import WATCH_INTERVAL_S, FileProvider
from narthex.discovery.http import HTTPProvider
from narthex.discovery.mechanisms import unsupported, unsupported_message
from narthex.discovery.metrics import MANAGER_NAME, DiscoveryMetrics
from narthex.discovery.provider import Provider, StaticProvider
from narthex.discovery.targetgroup import TargetGroup, static_groups
from narthex.util.log import get_logger

log = get_logger("discovery")


def sd_fingerprint(cfg: ServiceDiscoveryFields) -> str:
    """A stable text of a job's SD sections: equal fingerprints mean the same providers."""
    dumped = {key: [c.model_dump(mode="json") for c in cfgs] for key, cfgs in _sections(cfg).items()}
    return json.dumps(dumped, sort_keys=True, default=str)


def _sections(cfg: ServiceDiscoveryFields) -> dict[str, list[Any]]:
    return {key: getattr(cfg, key) for key in cfg.sd_mechanisms()}


class JobDiscovery:
    """The providers of one scrape job; ``on_update`` is called (on the loop) after groups change."""

    def __init__(
        self,
        job: str,
        cfg: ServiceDiscoveryFields,
        session: Callable[[], aiohttp.ClientSession],
        metrics: DiscoveryMetrics,
        on_update: Callable[[], None],
        file_watch_interval_s: float = WATCH_INTERVAL_S,
    ) -> None:
        self.job = job
        self.fingerprint = sd_fingerprint(cfg)
        self.metrics = metrics
        self.on_update = on_update
        self.providers: list[Provider] = []
        self.unsupported_errors: list[str] = []
        self._groups: dict[tuple[int, str], TargetGroup] = {}
        self._tasks: list[asyncio.Task[None]] = []
        if cfg.static_configs:
            self.providers.append(StaticProvider(static_groups(cfg.static_configs)))
        for sd in cfg.file_sd_configs:
            assert isinstance(sd, FileSDConfig)
            self.providers.append(FileProvider(sd, metrics, file_watch_interval_s))
        for sd in cfg.http_sd_configs:
            assert isinstance(sd, HTTPSDConfig)
            self.providers.append(HTTPProvider(sd, session, metrics))
        for mechanism in unsupported(cfg.sd_mechanisms()):
            message = unsupported_message(mechanism)
            self.unsupported_errors.append(message)
            log.error(
                "Unsupported service discovery mechanism", scrape_pool=job, mechanism=mechanism, err=message
            )

    def start(self) -> None:
        for index, provider in enumerate(self.providers):
            self._tasks.append(asyncio.create_task(self._run(index, provider), name=f"sd {self.job} {index}"))

    async def _run(self, index: int, provider: Provider) -> None:
        def send(groups: list[TargetGroup]) -> None:
            self.metrics.received_updates.labels(MANAGER_NAME).inc()
            for group in groups:
                self._groups[(index, group.source)] = group
            self.metrics.discovered_targets.labels(self.job, MANAGER_NAME).set(
                sum(len(g.targets) for g in self._groups.values())
            )
            self.on_update()

        try:
            await provider.run(send)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a provider crashing must not take the others down; keep it visible
            provider.error = f"discovery failed: {exc}"
            log.error("Service discovery provider failed", scrape_pool=self.job, err=exc)

    def groups(self) -> list[TargetGroup]:
        """Every current target group, in provider then source order."""
        return list(self._groups.values())

    def errors(self) -> list[str]:
        """Unsupported mechanisms and the last error of each failing provider."""
        return [*self.unsupported_errors, *(p.error for p in self.providers if p.error)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        with contextlib.suppress(KeyError):
            self.metrics.discovered_targets.remove(self.job, MANAGER_NAME)
