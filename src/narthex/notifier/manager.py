"""The notifier component: relabels alerts and hands them to every configured Alertmanager set.

:meth:`Notifier.send` may be called from any thread (rule groups evaluate in worker threads); the
alerts are moved onto the event loop before they are queued.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import aiohttp
from prometheus_client import CollectorRegistry

from narthex.model.relabel import RelabelRule
from narthex.notifier.alert import NotifierAlert, relabel_alerts
from narthex.notifier.alertmanager_set import AlertmanagerSet
from narthex.notifier.metrics import NotifierMetrics
from narthex.notifier.sendloop import NotifierOptions
from narthex.scrape.target import relabel_rules
from narthex.util.log import get_logger

if TYPE_CHECKING:
    from narthex.config import Config

log = get_logger("notifier")


class Notifier:
    """Server component ``notifier``."""

    name = "notifier"

    def __init__(
        self, options: NotifierOptions | None = None, registry: CollectorRegistry | None = None
    ) -> None:
        self.opts = options or NotifierOptions()
        self.metrics = NotifierMetrics(registry, self.opts.queue_capacity, self._discovered)
        self.sets: dict[str, AlertmanagerSet] = {}
        self.external_labels: dict[str, str] = {}
        self.relabel: list[RelabelRule] = []
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._started = False
        self._stopping = False

    @classmethod
    def from_server_options(cls, server_options: Any, registry: CollectorRegistry) -> Notifier:
        return cls(
            NotifierOptions(
                queue_capacity=int(server_options["alertmanager.notification-queue-capacity"]),
                batch_size=int(server_options["alertmanager.notification-batch-size"]),
                drain_on_shutdown=bool(server_options["alertmanager.drain-notification-queue-on-shutdown"]),
            ),
            registry,
        )

    def _discovered(self) -> int:
        with self._lock:
            return sum(len(s.active) for s in self.sets.values())

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    # -- component lifecycle ----------------------------------------------------------------------

    async def apply_config(self, config: Config) -> None:
        self._loop = asyncio.get_running_loop()
        alerting = config.alerting
        external = dict(config.global_config.external_labels)
        relabel = relabel_rules(alerting.alert_relabel_configs) if alerting else []
        new_sets: dict[str, AlertmanagerSet] = {}
        old_by_hash = {s.config_hash(): s for s in self.sets.values()}
        for index, am_cfg in enumerate(alerting.alertmanagers if alerting else []):
            key = f"config-{index}"
            am_set = AlertmanagerSet(key, am_cfg, self.opts, self.metrics, self.session)
            old = old_by_hash.pop(am_set.config_hash(), None)
            if old is not None:
                am_set.take_over(old)
            elif self._started:
                am_set.start()
            new_sets[key] = am_set
        for old in old_by_hash.values():
            await old.stop(drain=False)
        with self._lock:
            self.sets = new_sets
            self.external_labels = external
            self.relabel = relabel

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started = True
        for am_set in self.sets.values():
            if not am_set.running:
                am_set.start()

    async def stop(self) -> None:
        log.info("Stopping notification manager...")
        self._stopping = True
        for am_set in self.sets.values():
            await am_set.stop(self.opts.drain_on_shutdown)
        if self._session is not None:
            await self._session.close()
            self._session = None
        log.info("Notification manager stopped")

    # -- sending ----------------------------------------------------------------------------------

    def send(self, alerts: list[NotifierAlert]) -> None:
        """Queue alerts for every Alertmanager (thread-safe)."""
        if self._stopping or not alerts:
            return
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop:
            try:
                loop.call_soon_threadsafe(self._send_now, list(alerts))
            except RuntimeError:  # the event loop is closed: the server is shutting down
                log.debug("Dropping alerts sent after shutdown", count=len(alerts))
        else:
            self._send_now(list(alerts))

    def _send_now(self, alerts: list[NotifierAlert]) -> None:
        with self._lock:
            relabelled = relabel_alerts(self.relabel, self.external_labels, alerts)
            sets = list(self.sets.values())
        if not relabelled:
            return
        for am_set in sets:
            am_set.send(relabelled)

    # -- views ------------------------------------------------------------------------------------

    def alertmanagers(self) -> list[str]:
        """URLs of the active Alertmanagers (``/api/v1/alertmanagers`` activeAlertmanagers)."""
        return [url for s in self.sets.values() for url in s.active_urls()]

    def dropped_alertmanagers(self) -> list[str]:
        return [url for s in self.sets.values() for url in s.dropped_urls()]

    def alertmanagers_payload(self) -> dict[str, list[dict[str, str]]]:
        """The ``data`` of ``GET /api/v1/alertmanagers``."""
        return {
            "activeAlertmanagers": [{"url": u} for u in self.alertmanagers()],
            "droppedAlertmanagers": [{"url": u} for u in self.dropped_alertmanagers()],
        }
