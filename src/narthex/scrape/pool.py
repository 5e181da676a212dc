"""A scrape pool (``scrapePool``): one job's targets and their loops.

``sync`` turns target groups into targets (relabeling, dropped targets, failures), starts loops for new
targets and stops those of vanished ones (whose series go stale after two intervals). ``reload``
applies a changed job config: every loop restarts, keeping its cache when the change cannot affect
series (only interval, timeout, sample limit or HTTP client settings differ).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from narthex.config.model import ScrapeConfig
from narthex.discovery.targetgroup import TargetGroup
from narthex.model.exposition import ScrapeCache, accept_encoding_header, accept_header
from narthex.scrape.client import ClientSettings
from narthex.scrape.failure_log import FailureLog
from narthex.scrape.fetch import Scraper
from narthex.scrape.loop import LoopSettings, ScrapeLoop, go_duration
from narthex.scrape.metrics import ScrapeMetrics
from narthex.scrape.target import DroppedTarget, Target, relabel_rules, targets_from_group
from narthex.util.log import get_logger

log = get_logger("scrape")

_CACHE_NEUTRAL_FIELDS = frozenset(
    {
        "scrape_interval",
        "scrape_timeout",
        "sample_limit",
        "basic_auth",
        "authorization",
        "oauth2",
        "bearer_token",
        "bearer_token_file",
        "tls_config",
        "follow_redirects",
        "enable_http2",
        "http_headers",
        "proxy_url",
        "no_proxy",
        "proxy_from_environment",
        "proxy_connect_header",
    }
)


def config_dump(cfg: ScrapeConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json")


def reusable_cache(old: ScrapeConfig | None, new: ScrapeConfig) -> bool:
    """``reusableCache``: equal configs once the fields that cannot change series are ignored."""
    if old is None:
        return False
    a, b = config_dump(old), config_dump(new)
    return {k: v for k, v in a.items() if k not in _CACHE_NEUTRAL_FIELDS} == {
        k: v for k, v in b.items() if k not in _CACHE_NEUTRAL_FIELDS
    }


class ScrapePool:
    """The targets and loops of one scrape job."""

    def __init__(
        self,
        cfg: ScrapeConfig,
        session: Callable[[], aiohttp.ClientSession],
        db: Callable[[], Any],
        metrics: ScrapeMetrics,
        offset_seed: int = 0,
    ) -> None:
        self.session = session
        self.db = db
        self.metrics = metrics
        self.offset_seed = offset_seed
        self.config = cfg
        self.loops: dict[tuple[Any, str], ScrapeLoop] = {}
        self.dropped: list[DroppedTarget] = []
        self.dropped_count = 0
        self.sync_errors: list[str] = []
        self._groups: list[TargetGroup] = []
        self._carried_caches: dict[tuple[Any, str], ScrapeCache] = {}  # by Target.cache_key
        self._retiring: set[asyncio.Task[None]] = set()
        self._failure_log: FailureLog | None = None
        self._configure(cfg)
        metrics.pool_target_limit.labels(cfg.job_name).set(cfg.target_limit)

    @property
    def failure_log(self) -> FailureLog | None:
        return self._failure_log

    @failure_log.setter
    def failure_log(self, value: FailureLog | None) -> None:
        """Where this job's failed scrapes are logged (``scrape_failure_log_file``); None: nowhere."""
        self._failure_log = value
        self.settings.failure_log = value

    @property
    def job(self) -> str:
        return self.config.job_name

    def _configure(self, cfg: ScrapeConfig) -> None:
        self.config = cfg
        self.rules = relabel_rules(cfg.relabel_configs)
        client = ClientSettings(cfg)
        accept = accept_header(cfg.scrape_protocols or (), cfg.metric_name_escaping_scheme or "allow-utf-8")
        accept_encoding = accept_encoding_header(cfg.enable_compression)

        def make_scraper(target: Target) -> Scraper:
            return Scraper(
                self.session,
                target.url,
                client,
                accept,
                accept_encoding,
                target.timeout_ms / 1000,
                cfg.body_size_limit,
            )

        self.settings = LoopSettings(
            honor_labels=cfg.honor_labels,
            honor_timestamps=cfg.honor_timestamps,
            track_timestamps_staleness=cfg.track_timestamps_staleness,
            sample_limit=cfg.sample_limit,
            label_limits=(cfg.label_limit, cfg.label_name_length_limit, cfg.label_value_length_limit),
            legacy_names=cfg.metric_name_validation_scheme == "legacy",
            fallback_protocol=cfg.fallback_scrape_protocol,
            extra_metrics=bool(cfg.extra_scrape_metrics),
            metric_rules=relabel_rules(cfg.metric_relabel_configs),
            make_scraper=make_scraper,
            failure_log=self._failure_log,
        )

    def _new_loop(self, target: Target, cache: ScrapeCache | None = None) -> ScrapeLoop:
        return ScrapeLoop(target, self.settings, self.db, self.metrics, self.offset_seed, cache)

    # Targets ----------------------------------------------------------------------------------------
    async def sync(self, groups: list[TargetGroup]) -> None:
        """Apply the current target groups of the job."""
        start = time.monotonic()
        self._groups = groups
        cfg = self.config
        active: list[Target] = []
        dropped: list[DroppedTarget] = []
        errors: list[str] = []
        for group in groups:
            targets, drops, failures = targets_from_group(group, cfg, self.rules)
            active.extend(targets)
            dropped.extend(drops)
            errors.extend(failures)
        for err in errors:
            log.error("Creating target failed", scrape_pool=self.job, err=err)
        self.metrics.sync_failed.labels(self.job).inc(len(errors))
        self.sync_errors = errors
        keep = cfg.keep_dropped_targets
        self.dropped = dropped[:keep] if keep else dropped
        self.dropped_count = len(dropped)
        await self._sync_targets(active)
        self.metrics.sync_length.observe(self.job, time.monotonic() - start)
        self.metrics.pool_syncs.labels(self.job).inc()

    async def _sync_targets(self, targets: list[Target]) -> None:
        wanted: dict[tuple[Any, str], Target] = {}
        for target in targets:
            wanted.setdefault(target.key, target)
        stopping = [loop for key, loop in self.loops.items() if key not in wanted]
        self.loops = {key: loop for key, loop in self.loops.items() if key in wanted}
        new: list[ScrapeLoop] = []
        for key, target in wanted.items():
            loop = self.loops.get(key)
            if loop is None:
                self.loops[key] = loop = self._new_loop(
                    target, self._carried_caches.pop(target.cache_key, None)
                )
                new.append(loop)
            else:
                loop.target.discovered = target.discovered
        self.metrics.pool_targets.labels(self.job).set(len(self.loops))
        forced = self._target_limit_error()
        for loop in self.loops.values():
            loop.forced_error = forced
        for loop in new:
            loop.start()
        await asyncio.gather(*(loop.stop() for loop in stopping))
        for loop in stopping:
            self._retire(loop)

    def _target_limit_error(self) -> str | None:
        limit = self.config.target_limit
        if limit and len(self.loops) > limit:
            self.metrics.pool_exceeded_target_limit.inc()
            return f"target_limit exceeded (number of targets: {len(self.loops)}, limit: {limit})"
        return None

    # Config -----------------------------------------------------------------------------------------
    async def reload(self, cfg: ScrapeConfig) -> None:
        """Apply a changed config: restart every loop (keeping caches when they stay valid)."""
        self.metrics.pool_reloads.inc()
        start = time.monotonic()
        reuse = reusable_cache(self.config, cfg)
        try:
            self._configure(cfg)
        except (ValueError, OSError):
            self.metrics.pool_reloads_failed.inc()
            raise
        self.metrics.pool_target_limit.labels(cfg.job_name).set(cfg.target_limit)
        old_loops, self.loops = self.loops, {}
        if reuse:
            self._carried_caches = {loop.target.cache_key: loop.cache for loop in old_loops.values()}
        await asyncio.gather(*(loop.stop(end_of_run_staleness=not reuse) for loop in old_loops.values()))
        for loop in old_loops.values():
            self._retire(loop)
        await self.sync(self._groups)
        self._carried_caches.clear()
        self.metrics.reload_length.observe(go_duration(cfg.scrape_interval / 1000), time.monotonic() - start)

    def _retire(self, loop: ScrapeLoop) -> None:
        """Keep a stopped loop's task (it may still write staleness markers) until it finishes."""
        if loop.task is not None and not loop.task.done():
            self._retiring.add(loop.task)
            loop.task.add_done_callback(self._retiring.discard)

    async def stop(self) -> None:
        """Stop every loop at once, without staleness markers (as Prometheus stops a removed or closing
        pool). A scrape in flight is abandoned before anything of it is appended."""
        loops = list(self.loops.values())
        for loop in loops:
            loop.cancel()
        tasks = [loop.task for loop in loops if loop.task is not None] + list(self._retiring)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.loops = {}
        for gauge in (self.metrics.pool_targets, self.metrics.pool_target_limit):
            with contextlib.suppress(KeyError):
                gauge.remove(self.job)

    # State ------------------------------------------------------------------------------------------
    def active_targets(self) -> list[Target]:
        return [loop.target for loop in self.loops.values()]

    def loop_tasks(self) -> list[asyncio.Task[None]]:
        return [loop.task for loop in self.loops.values() if loop.task is not None]
