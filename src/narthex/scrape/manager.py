"""The scrape manager: one discovery and one scrape pool per job of the applied config.

On reload, jobs whose config is unchanged keep their loops and caches; changed jobs reload their pool
(and restart discovery when their SD sections changed); removed jobs stop. Discovery updates reach a
pool at most every ``update_delay_s`` (the first one at once). Target state, dropped targets, metadata
and discovery errors are exposed for the API.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from narthex.config import Config
from narthex.config.model import ScrapeConfig
from narthex.discovery.file import WATCH_INTERVAL_S
from narthex.discovery.manager import JobDiscovery, sd_fingerprint
from narthex.discovery.metrics import DiscoveryMetrics
from narthex.model.exposition import MetricMetadata
from narthex.scrape.failure_log import FailureLog, open_failure_logs
from narthex.scrape.metrics import ScrapeMetrics
from narthex.scrape.pool import ScrapePool, config_dump
from narthex.scrape.target import DroppedTarget, Target, fnv64a
from narthex.util.log import get_logger

log = get_logger("scrape manager")

DISCOVERY_UPDATE_DELAY_S = 5.0


@dataclass
class PoolStatus:
    """A job's settings and the discovery problems that leave some of its targets unavailable."""

    job: str
    interval_ms: int
    timeout_ms: int
    mechanisms: list[str]
    discovery_errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Job:
    pool: ScrapePool
    discovery: JobDiscovery
    sync_handle: asyncio.TimerHandle | None = None
    syncing: asyncio.Task[None] | None = None
    dirty: bool = False
    last_sync: float = float("-inf")


class ScrapeManager:
    """Runs discovery and scraping for every job; ``db()`` returns the open TSDB."""

    name = "scrape"

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        db: Callable[[], Any] | None = None,
        *,
        update_delay_s: float = DISCOVERY_UPDATE_DELAY_S,
        file_watch_interval_s: float = WATCH_INTERVAL_S,
    ) -> None:
        self.metrics = ScrapeMetrics(registry)
        self.sd_metrics = DiscoveryMetrics(registry)
        self.metrics.set_cache_entries(self._metadata_counts)
        self._db = db
        self.update_delay_s = update_delay_s
        self.file_watch_interval_s = file_watch_interval_s
        self.jobs: dict[str, _Job] = {}
        self.offset_seed = 0
        self._session: aiohttp.ClientSession | None = None
        self._failure_logs: dict[str, FailureLog] = {}
        self._started = False

    # Plumbing ---------------------------------------------------------------------------------------
    def _get_db(self) -> Any:
        if self._db is None:
            raise RuntimeError("the scrape manager has no storage")
        db = self._db()
        if db is None:
            raise RuntimeError("storage is not open")
        return db

    def session(self) -> aiohttp.ClientSession:
        """The one HTTP session all scrapes and HTTP SD requests share."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60)
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
            )
        return self._session

    @property
    def pools(self) -> dict[str, ScrapePool]:
        return {name: job.pool for name, job in self.jobs.items()}

    # Lifecycle --------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Begin scraping (targets discovered so far are synced at once)."""
        self._started = True
        for name in self.jobs:
            self._schedule_sync(name, immediate=True)

    async def apply_config(self, config: Config) -> None:
        self.offset_seed = _offset_seed(config.global_config.external_labels)
        wanted: dict[str, ScrapeConfig] = {cfg.job_name: cfg for cfg in config.scrape_configs}
        failure_logs = open_failure_logs({cfg.scrape_failure_log_file for cfg in wanted.values()})
        old_logs, self._failure_logs = self._failure_logs, failure_logs
        for name in [n for n in self.jobs if n not in wanted]:
            await self._remove_job(name)
        failed = False
        for name, cfg in wanted.items():
            job = self.jobs.get(name)
            if job is None:
                self._add_job(cfg)
                continue
            if sd_fingerprint(job.pool.config) != sd_fingerprint(cfg):
                await job.discovery.stop()
                job.discovery = self._new_discovery(cfg)
                job.discovery.start()
                self._schedule_sync(name)
            job.pool.failure_log = failure_logs.get(cfg.scrape_failure_log_file)
            if config_dump(job.pool.config) != config_dump(cfg):
                try:
                    await job.pool.reload(cfg)
                except (ValueError, OSError) as exc:  # a pool refusing its config fails the reload only
                    log.error("error reloading scrape pool", scrape_pool=name, err=exc)
                    failed = True
        for old in old_logs.values():
            old.close()
        if failed:
            raise RuntimeError("failed to apply the new configuration")

    def _new_discovery(self, cfg: ScrapeConfig) -> JobDiscovery:
        name = cfg.job_name
        return JobDiscovery(
            name,
            cfg,
            self.session,
            self.sd_metrics,
            lambda: self._schedule_sync(name),
            self.file_watch_interval_s,
        )

    def _add_job(self, cfg: ScrapeConfig) -> None:
        self.metrics.pools.inc()
        try:
            pool = ScrapePool(cfg, self.session, self._get_db, self.metrics, self.offset_seed)
        except (ValueError, OSError) as exc:  # unusable client settings (certificates...), bad rules
            self.metrics.pools_failed.inc()
            log.error("error creating new scrape pool", scrape_pool=cfg.job_name, err=exc)
            return
        pool.failure_log = self._failure_logs.get(cfg.scrape_failure_log_file)
        job = _Job(pool, self._new_discovery(cfg))
        self.jobs[cfg.job_name] = job
        job.discovery.start()

    async def _remove_job(self, name: str) -> None:
        job = self.jobs.pop(name)
        if job.sync_handle is not None:
            job.sync_handle.cancel()
        if job.syncing is not None:
            job.syncing.cancel()
        await job.discovery.stop()
        await job.pool.stop()

    async def stop(self) -> None:
        for name in list(self.jobs):
            await self._remove_job(name)
        self._started = False
        for failure_log in self._failure_logs.values():
            failure_log.close()
        self._failure_logs = {}
        if self._session is not None:
            await self._session.close()
            self._session = None

    # Discovery -> pools -----------------------------------------------------------------------------
    def _schedule_sync(self, name: str, immediate: bool = False) -> None:
        job = self.jobs.get(name)
        if job is None or not self._started:
            return
        job.dirty = True
        if job.sync_handle is not None or (job.syncing is not None and not job.syncing.done()):
            return
        delay = 0.0 if immediate else max(0.0, job.last_sync + self.update_delay_s - time.monotonic())
        loop = asyncio.get_running_loop()
        job.sync_handle = loop.call_later(delay, self._start_sync, name)

    def _start_sync(self, name: str) -> None:
        job = self.jobs.get(name)
        if job is None:
            return
        job.sync_handle = None
        job.syncing = asyncio.create_task(self._sync(name, job), name=f"sync {name}")

    async def _sync(self, name: str, job: _Job) -> None:
        job.dirty = False
        job.last_sync = time.monotonic()
        self.sd_metrics.updates.labels("scrape").inc()
        try:
            await job.pool.sync(job.discovery.groups())
        except Exception as exc:  # keep the other jobs and later syncs going; show the reason
            log.error("Syncing scrape pool failed", scrape_pool=name, err=exc)
        job.syncing = None
        if job.dirty:
            self._schedule_sync(name)

    async def wait_synced(self) -> None:
        """Wait until no sync is pending (for tests and start-up ordering)."""
        while any(j.sync_handle is not None or j.syncing is not None for j in self.jobs.values()):
            await asyncio.sleep(0.01)

    # State for the API ------------------------------------------------------------------------------
    def pool_status(self, name: str) -> PoolStatus:
        job = self.jobs[name]
        cfg = job.pool.config
        return PoolStatus(
            name, cfg.scrape_interval, cfg.scrape_timeout, cfg.sd_mechanisms(), job.discovery.errors()
        )

    def discovery_errors(self) -> dict[str, list[str]]:
        """Per job, the discovery problems (unimplemented mechanisms, failing SD sources), if any."""
        errors = {name: job.discovery.errors() for name, job in self.jobs.items()}
        return {name: errs for name, errs in errors.items() if errs}

    def active_targets(self) -> dict[str, list[Target]]:
        return {name: job.pool.active_targets() for name, job in self.jobs.items()}

    def dropped_targets(self) -> dict[str, list[DroppedTarget]]:
        return {name: list(job.pool.dropped) for name, job in self.jobs.items()}

    def dropped_target_counts(self) -> dict[str, int]:
        return {name: job.pool.dropped_count for name, job in self.jobs.items()}

    def target_metadata(self) -> list[tuple[Target, dict[str, MetricMetadata]]]:
        """Each active target with its metadata by metric family (``/api/v1/targets/metadata``)."""
        return [
            (loop.target, loop.cache.metadata)
            for job in self.jobs.values()
            for loop in job.pool.loops.values()
        ]

    def metadata(self) -> dict[str, list[MetricMetadata]]:
        """Distinct metadata per metric family across all targets (``/api/v1/metadata``)."""
        out: dict[str, list[MetricMetadata]] = {}
        for _, md in self.target_metadata():
            for metric, entry in md.items():
                entries = out.setdefault(metric, [])
                if entry not in entries:
                    entries.append(entry)
        return out

    def _metadata_counts(self) -> dict[str, int]:
        return {
            name: sum(len(loop.cache.metadata) for loop in job.pool.loops.values())
            for name, job in self.jobs.items()
        }


def _offset_seed(external_labels: dict[str, str]) -> int:
    """Spreads the same targets differently on different servers (hostname and external labels)."""
    text = socket.gethostname() + "".join(f"{k}\xff{v}\xff" for k, v in sorted(external_labels.items()))
    return fnv64a(text.encode("utf-8", "surrogateescape"))
