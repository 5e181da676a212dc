"""One ``alerting.alertmanagers`` entry: its discovered Alertmanagers and their send loops."""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

from narthex.config.model import AlertmanagerConfig
from narthex.discovery.manager import JobDiscovery
from narthex.discovery.metrics import DiscoveryMetrics
from narthex.discovery.targetgroup import TargetGroup
from narthex.model.relabel import RelabelRule, relabel
from narthex.notifier.alert import NotifierAlert, relabel_alerts
from narthex.notifier.metrics import NotifierMetrics
from narthex.notifier.sendloop import NotifierOptions, SendLoop
from narthex.scrape.client import ClientSettings
from narthex.scrape.target import relabel_rules
from narthex.util.log import get_logger

log = get_logger("notifier")

ADDRESS_LABEL = "__address__"
SCHEME_LABEL = "__scheme__"
PATH_LABEL = "__alerts_path__"


def post_path(prefix: str, api_version: str) -> str:
    """``/<prefix>/api/v2/alerts`` with the prefix's slashes normalised."""
    return posixpath.normpath(posixpath.join("/", prefix.lstrip("/"), f"api/{api_version}/alerts")).replace(
        "//", "/"
    )


def am_url(labels: dict[str, str]) -> str:
    return f"{labels.get(SCHEME_LABEL, '')}://{labels.get(ADDRESS_LABEL, '')}{labels.get(PATH_LABEL, '')}"


def alertmanagers_from_group(
    group: TargetGroup, cfg: AlertmanagerConfig, rules: list[RelabelRule]
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(active, dropped) Alertmanager label sets of one target group after relabeling."""
    active, dropped = [], []
    for target in group.targets:
        labels = dict(target)
        labels[SCHEME_LABEL] = cfg.scheme
        labels[PATH_LABEL] = post_path(cfg.path_prefix, cfg.api_version)
        for name, value in group.labels.items():
            labels.setdefault(name, value)
        pre = {k: v for k, v in labels.items() if v != ""}
        result = relabel(pre, rules)
        if result is None:
            dropped.append(pre)
            continue
        out = dict(result)
        if "/" in out.get(ADDRESS_LABEL, ""):
            raise ValueError(f'"{out[ADDRESS_LABEL]}" is not a valid hostname')
        active.append(out)
    return active, dropped


class AlertmanagerSet:
    """Discovery, relabeling and send loops of one Alertmanager config (``config-N``)."""

    def __init__(
        self,
        key: str,
        cfg: AlertmanagerConfig,
        opts: NotifierOptions,
        metrics: NotifierMetrics,
        session: Callable[[], aiohttp.ClientSession],
    ) -> None:
        self.key = key
        self.cfg = cfg
        self.opts = opts
        self.metrics = metrics
        self.session = session
        self.settings = ClientSettings(cfg)
        self.target_rules = relabel_rules(cfg.relabel_configs)
        self.alert_rules = relabel_rules(cfg.alert_relabel_configs)
        self.active: list[dict[str, str]] = []
        self.dropped: list[dict[str, str]] = []
        self.loops: dict[str, SendLoop] = {}
        self.discovery: JobDiscovery | None = None
        self.running = False

    def config_hash(self) -> str:
        return self.cfg.model_dump_json()

    def start(self) -> None:
        self.running = True
        self.discovery = JobDiscovery(
            self.key, self.cfg, self.session, DiscoveryMetrics(None), self._on_update
        )
        self.discovery.start()
        for loop in self.loops.values():
            loop.start()

    def _on_update(self) -> None:
        assert self.discovery is not None
        self.sync(self.discovery.groups())

    def sync(self, groups: list[TargetGroup]) -> None:
        """Take a new set of target groups: add send loops for new URLs, stop those of vanished ones."""
        active: list[dict[str, str]] = []
        dropped: list[dict[str, str]] = []
        for group in groups:
            try:
                a, d = alertmanagers_from_group(group, self.cfg, self.target_rules)
            except ValueError as exc:
                log.error("Creating discovered Alertmanagers failed", err=exc)
                continue
            active.extend(a)
            dropped.extend(d)
        seen: dict[str, dict[str, str]] = {}
        for labels in active:
            seen.setdefault(am_url(labels), labels)
        self.active = list(seen.values())
        self.dropped = dropped
        for url in seen:
            if url not in self.loops:
                loop = SendLoop(
                    url, self.settings, self.cfg.timeout / 1000, self.opts, self.metrics, self.session
                )
                self.loops[url] = loop
                if self.running:
                    loop.start()
        for url in [u for u in self.loops if u not in seen]:
            loop = self.loops.pop(url)
            _spawn(loop.stop(drain=False))

    def send(self, alerts: list[NotifierAlert]) -> None:
        if self.alert_rules:
            alerts = relabel_alerts(self.alert_rules, {}, alerts)
            if not alerts:
                return
        for loop in self.loops.values():
            loop.add(alerts)

    def take_over(self, old: AlertmanagerSet) -> None:
        """Keep the running discovery and send loops of an identical previous config."""
        self.active, self.dropped, self.loops = old.active, old.dropped, old.loops
        self.discovery, self.running = old.discovery, old.running
        if self.discovery is not None:
            self.discovery.on_update = self._on_update

    async def stop(self, drain: bool) -> None:
        self.running = False
        if self.discovery is not None:
            await self.discovery.stop()
            self.discovery = None
        for loop in list(self.loops.values()):
            await loop.stop(drain)
        self.loops = {}

    def active_urls(self) -> list[str]:
        return [am_url(labels) for labels in self.active]

    def dropped_urls(self) -> list[str]:
        return [am_url(labels) for labels in self.dropped]


_background: set[asyncio.Task[None]] = set()


def _spawn(coro: Coroutine[Any, Any, None]) -> None:
    """Run a clean-up coroutine in the background, keeping a reference until it is done."""
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
