"""The scrape loop of one target (``scrapeLoop``): an asyncio task scraping every interval.

Each scrape is one appender transaction: the samples the :class:`ScrapeCache` produced (numpy arrays),
staleness markers for series that disappeared (or for every series of the last scrape when the scrape
failed), and the synthetic series ``up``, ``scrape_duration_seconds``, ``scrape_samples_scraped``,
``scrape_samples_post_metric_relabeling`` and ``scrape_series_added``. When a loop stops for good its
series are marked stale after two more intervals, unless the target came back (``endOfRunStaleness``).

Parsing, appending and committing a scrape normally run inline on the event loop: with the series
texts cached that costs little, less than a hop to another thread. A scrape expected to be expensive
(the target's cache is cold, its previous scrape added many series or took long, or its body grew a
lot) runs that part in a worker thread instead, so that the other targets' scrapes and the HTTP API
keep their timing while a target's series are created (at start-up every target's first scrape does
that). The loop awaits the worker, so its cache and labeler are still used by one thread at a time;
the TSDB appender is lock-protected and the self-metrics touched there are thread-safe.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from narthex.model.exposition import (
    NO_TIMESTAMP,
    ContentTypeError,
    ScrapeCache,
    ScrapeResult,
    select_format,
)
from narthex.model.labels import Labels
from narthex.scrape.failure_log import FailureLog
from narthex.scrape.fetch import ScrapeFailure, Scraper
from narthex.scrape.metrics import ScrapeMetrics
from narthex.scrape.sample_labels import LabelLimitError, SampleLabeler, report_labels
from narthex.scrape.target import Target
from narthex.tsdb import ERR_DUPLICATE, ERR_NOT_FOUND, ERR_OUT_OF_BOUNDS, ERR_OUT_OF_ORDER, ERR_TOO_OLD
from narthex.util.log import get_logger

log = get_logger("scrape")

STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN = float(np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0])
REPORT_SERIES = (
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
)
EXTRA_REPORT_SERIES = ("scrape_timeout_seconds", "scrape_sample_limit", "scrape_body_size_bytes")
TIMESTAMP_TOLERANCE_S = 0.002
SAMPLE_LIMIT_ERROR = "sample limit exceeded"
# When a scrape's parse + append + commit leaves the event loop (see the module docstring).
OFFLOAD_COLD_BODY_BYTES = 8192  # body of a target with an empty cache (about 90 series)
OFFLOAD_SERIES_ADDED = 100  # series the previous scrape added
OFFLOAD_INGEST_SECONDS = 0.010  # CPU of the previous ingest (a cached 1,000-series scrape: ~2.5 ms)
OFFLOAD_BODY_GROWTH_BYTES = 8192  # body larger than the previous one by this much
# One worker: the work holds the GIL, so more threads would not go faster, and every extra thread
# competing for the GIL would shrink the event loop's share of it.
_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def ingest_executor() -> concurrent.futures.ThreadPoolExecutor:
    """The worker thread expensive scrapes are parsed and appended in (created on first use)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="scrape-ingest")
        return _executor


def stale_values(n: int) -> np.ndarray:
    """``n`` staleness markers (NaN with Prometheus's StaleNaN bits)."""
    return np.full(n, STALE_NAN_BITS, dtype=np.uint64).view(np.float64)


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` for whole-millisecond durations: ``15s``, ``1m0s``, ``1.5s``."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    out = f"{secs}s"
    if hours or minutes:
        out = f"{minutes}m{out}"
    if hours:
        out = f"{hours}h{out}"
    return out


@dataclass(slots=True)
class LoopSettings:
    """What a pool's config tells its loops besides the target itself."""

    honor_labels: bool
    honor_timestamps: bool
    track_timestamps_staleness: bool
    sample_limit: int
    label_limits: tuple[int, int, int]
    legacy_names: bool
    fallback_protocol: str
    extra_metrics: bool
    metric_rules: list[Any]
    make_scraper: Callable[[Target], Scraper]
    failure_log: FailureLog | None = None


class ScrapeLoop:
    """Scrapes one target until stopped. ``db()`` returns the open TSDB."""

    def __init__(
        self,
        target: Target,
        settings: LoopSettings,
        db: Callable[[], Any],
        metrics: ScrapeMetrics,
        offset_seed: int = 0,
        cache: ScrapeCache | None = None,
    ) -> None:
        self.target = target
        self.settings = settings
        self.db = db
        self.metrics = metrics
        self.offset_seed = offset_seed
        self.interval_s = target.interval_ms / 1000
        self.timeout_s = target.timeout_ms / 1000
        self.scraper = settings.make_scraper(target)
        self.labeler = SampleLabeler(
            target.public_labels,
            settings.honor_labels,
            settings.metric_rules,
            settings.legacy_names,
            *settings.label_limits,
        )
        if cache is None:
            cache = ScrapeCache(
                self._resolve,
                honor_timestamps=settings.honor_timestamps,
                track_timestamps_staleness=settings.track_timestamps_staleness,
                sample_limit=settings.sample_limit,
            )
        else:
            cache.resolve = self._resolve
            cache.sample_limit = settings.sample_limit
        self.cache = cache
        self.forced_error: str | None = None
        self.end_of_run_staleness = True
        self.last_start: float | None = None  # monotonic start of the last scrape
        self._report_names = REPORT_SERIES + (EXTRA_REPORT_SERIES if settings.extra_metrics else ())
        self._report_refs: np.ndarray | None = None
        self._app: Any = None
        self._successful_count = 0
        self._stop = asyncio.Event()
        self._stopped = asyncio.Event()
        self._next_tick = 0.0
        self.task: asyncio.Task[None] | None = None
        # What the previous scrape's ingest cost, to decide where the next one runs.
        self._last_series_added = 0
        self._last_ingest_s = 0.0
        self._last_body_len = 0
        self.offloaded = 0  # scrapes ingested in the worker thread

    # Series resolution ------------------------------------------------------------------------------
    def _resolve(self, exposed: Labels) -> int | None:
        try:
            lset = self.labeler(exposed)
        except LabelLimitError:
            self.metrics.pool_exceeded_label_limits.inc()
            raise
        if lset is None:
            return None
        return self._app.series_ref(lset)

    def _report_series_refs(self, app: Any) -> np.ndarray:
        if self._report_refs is None:
            refs = [app.series_ref(report_labels(n, self.target.public_labels)) for n in self._report_names]
            self._report_refs = np.array(refs, dtype=np.int64)
        return self._report_refs

    # Running ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"scrape {self.target.url}")

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; True when stopped."""
        if seconds <= 0:
            return self._stop.is_set()
        try:
            async with asyncio.timeout(seconds):
                await self._stop.wait()
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        try:
            await self._scrape_until_stopped()
        finally:
            self._stopped.set()
        if self.end_of_run_staleness and self.last_start is not None:
            try:
                await self._end_of_run_staleness()
            except Exception as exc:  # storage may have gone away meanwhile
                log.warn(
                    "Stale append failed",
                    scrape_pool=self.target.scrape_pool,
                    target=self.target.url,
                    err=exc,
                )

    async def _scrape_until_stopped(self) -> None:
        interval = self.interval_s
        if await self._sleep(self.target.offset_s(interval, self.offset_seed)):
            return
        aligned = time.time()
        self._next_tick = time.monotonic() + interval
        tolerance = min(interval / 100, TIMESTAMP_TOLERANCE_S)
        while not self._stop.is_set():
            scrape_time = time.time()
            while scrape_time - aligned >= interval:
                aligned += interval
            if scrape_time - aligned <= tolerance:
                scrape_time = aligned
            try:
                await self.scrape_and_report(scrape_time)
            except Exception as exc:  # e.g. storage closed or full: keep the loop alive, say why
                log.error(
                    "Scrape and report failed",
                    scrape_pool=self.target.scrape_pool,
                    target=self.target.url,
                    err=exc,
                )
            if await self._wait_tick():
                return

    async def _wait_tick(self) -> bool:
        """Wait for the next tick as a Go ticker delivers it (one missed tick fires at once)."""
        now = time.monotonic()
        if now >= self._next_tick:
            missed = int((now - self._next_tick) // self.interval_s) + 1
            self._next_tick += missed * self.interval_s
            return self._stop.is_set()
        stopped = await self._sleep(self._next_tick - now)
        self._next_tick += self.interval_s
        return stopped

    async def stop(self, end_of_run_staleness: bool = True) -> None:
        """Stop scraping (a scrape in flight completes); staleness markers may follow later."""
        if not end_of_run_staleness:
            self.end_of_run_staleness = False
        self._stop.set()
        if self.task is not None:
            await self._stopped.wait()

    def cancel(self) -> None:
        """Stop at once, writing nothing more (shutdown or pool removal)."""
        self.end_of_run_staleness = False
        self._stop.set()
        if self.task is not None:
            self.task.cancel()

    # One scrape -------------------------------------------------------------------------------------
    async def scrape_and_report(self, scrape_time: float) -> None:
        """Scrape once and append everything at ``scrape_time`` (wall-clock seconds)."""
        start = time.monotonic()
        if self.last_start is not None:
            self.metrics.interval_length.observe(go_duration(self.interval_s), start - self.last_start)
        self.last_start = start
        error: str | None = None
        bytes_read = 0
        if self.forced_error is not None:
            error = self.forced_error
            body: bytes = b""
            ctype = ""
        else:
            try:
                body, ctype = await self.scraper.fetch()
                bytes_read = len(body)
            except ScrapeFailure as exc:
                error = str(exc)
                body, ctype = b"", ""
                if exc.body_size_limit:
                    bytes_read = -1
                    self.metrics.exceeded_body_size_limit.inc()
                if self.settings.failure_log is not None:
                    self.settings.failure_log.write(self.target.url, error)
                log.debug(
                    "Scrape failed", scrape_pool=self.target.scrape_pool, target=self.target.url, err=error
                )
        if self._offload(body):
            (result, committed, error, duration), cancelled = await self._ingest_in_thread(
                body, ctype, error, scrape_time, start, bytes_read
            )
        else:
            result, committed, error, duration = self._ingest(
                body, ctype, error, scrape_time, start, bytes_read
            )
            cancelled = False
        self._account(committed.rejected, result)
        self._maybe_flush(error is None)
        self.target.report(scrape_time, duration, error)
        if cancelled:
            raise asyncio.CancelledError

    def _offload(self, body: bytes) -> bool:
        """Whether this scrape's ingest is expected to be expensive enough for the worker thread."""
        if not body:
            return False
        if not len(self.cache):
            return len(body) >= OFFLOAD_COLD_BODY_BYTES
        return (
            self._last_series_added >= OFFLOAD_SERIES_ADDED
            or self._last_ingest_s >= OFFLOAD_INGEST_SECONDS
            or len(body) - self._last_body_len >= OFFLOAD_BODY_GROWTH_BYTES
        )

    async def _ingest_in_thread(self, *args: Any) -> tuple[tuple[ScrapeResult, Any, str | None, float], bool]:
        """:meth:`_ingest` in the worker thread; also says whether this task was cancelled meanwhile.

        Cancelled before the worker started it, the scrape is abandoned with nothing touched (as a
        cancel during the fetch). Once started it cannot be interrupted: it is awaited to the end, so
        that it is committed exactly once and nothing is written after the loop's task has finished.
        """
        self.offloaded += 1
        job = ingest_executor().submit(self._ingest, *args)
        waiter = asyncio.wrap_future(job)
        try:
            return await asyncio.shield(waiter), False
        except asyncio.CancelledError:
            if job.cancel():
                raise
        while True:
            try:
                return await asyncio.shield(waiter), True
            except asyncio.CancelledError:
                if waiter.done() and waiter.cancelled():
                    raise

    def _ingest(
        self, body: bytes, ctype: str, error: str | None, scrape_time: float, start: float, bytes_read: int
    ) -> tuple[ScrapeResult, Any, str | None, float]:
        """Parse, append and commit one scrape (inline or in the worker thread)."""
        cpu0 = time.thread_time()
        app = self.db().appender()
        self._app = app
        try:
            result = self._parse(body, ctype) if error is None else self.cache.scrape(b"")
            if error is None:
                error = result.error
            ts_ms = round(scrape_time * 1000)
            self._append(app, result, ts_ms)
            duration = time.monotonic() - start
            values = [
                1.0 if error is None else 0.0,
                duration,
                float(result.total),
                float(result.added),
                float(result.series_added),
            ]
            if self.settings.extra_metrics:
                values += [self.timeout_s, float(self.settings.sample_limit), float(bytes_read)]
            app.append_batch(self._report_series_refs(app), ts_ms, np.array(values, dtype=np.float64))
            committed = app.commit()
        except BaseException:
            app.rollback()
            raise
        finally:
            self._app = None
            self._last_ingest_s = time.thread_time() - cpu0
        self._last_series_added = result.series_added
        if body:
            self._last_body_len = len(body)
        return result, committed, error, duration

    def _parse(self, body: bytes, ctype: str) -> ScrapeResult:
        if not body:
            return self.cache.scrape(b"")
        try:
            fmt, _ = select_format(ctype, self.settings.fallback_protocol)
        except ContentTypeError as exc:
            log.error(
                "Failed to determine correct type of scrape target.",
                content_type=ctype,
                fallback_media_type=self.settings.fallback_protocol,
                err=exc,
            )
            result = self.cache.scrape(b"")
            result.error = str(exc)
            return result
        result = self.cache.scrape(body, fmt)
        if result.error == SAMPLE_LIMIT_ERROR:
            self.metrics.exceeded_sample_limit.inc()
        return result

    def _append(self, app: Any, result: ScrapeResult, ts_ms: int) -> None:
        if result.error is None and len(result.refs):
            t: int | np.ndarray = ts_ms
            if result.timestamps is not None:
                t = np.where(result.timestamps == NO_TIMESTAMP, ts_ms, result.timestamps)
            app.append_batch(result.refs, t, result.values)
        if len(result.stale_refs):
            app.append_batch(result.stale_refs, ts_ms, stale_values(len(result.stale_refs)))

    def _account(self, rejected: dict[str, int], result: ScrapeResult) -> None:
        pool = self.target.scrape_pool
        duplicates = result.duplicates + rejected.get(ERR_DUPLICATE, 0)
        if n := rejected.get(ERR_OUT_OF_ORDER, 0):
            self.metrics.sample_out_of_order.inc(n)
            log.warn(
                "Error on ingesting out-of-order samples",
                scrape_pool=pool,
                target=self.target.url,
                num_dropped=n,
            )
        if duplicates:
            self.metrics.sample_duplicate.inc(duplicates)
            log.warn(
                "Error on ingesting samples with different value but same timestamp",
                scrape_pool=pool,
                target=self.target.url,
                num_dropped=duplicates,
            )
        if n := rejected.get(ERR_OUT_OF_BOUNDS, 0) + rejected.get(ERR_TOO_OLD, 0):
            self.metrics.sample_out_of_bounds.inc(n)
            log.warn(
                "Error on ingesting samples that are too old or are too far into the future",
                scrape_pool=pool,
                target=self.target.url,
                num_dropped=n,
            )
        if rejected.get(ERR_NOT_FOUND, 0):
            # Series the cache knew were garbage-collected by the head: resolve everything afresh.
            self.cache.clear()
            self._report_refs = None

    def _maybe_flush(self, success: bool) -> None:
        """``iterDone``'s forced flush: failing scrapes must not grow the cache without bound."""
        count = len(self.cache)
        if success:
            self._successful_count = count
        elif count > self._successful_count * 2 + 1000:
            self.metrics.cache_flush_forced.inc()
            self.cache.clear()

    async def _end_of_run_staleness(self) -> None:
        """Two intervals (and 10%) after the loop stopped, mark all its series stale."""
        interval = self.interval_s
        await self._tick_sleep()
        stale_time = time.time()
        await self._tick_sleep()
        await asyncio.sleep(interval / 10)
        if not self.end_of_run_staleness:
            return
        app = self.db().appender()
        self._app = app
        try:
            result = self.cache.scrape(b"")
            ts_ms = round(stale_time * 1000)
            self._append(app, result, ts_ms)
            refs = self._report_series_refs(app)
            app.append_batch(refs, ts_ms, stale_values(len(refs)))
            app.commit()
        except BaseException:
            app.rollback()
            raise
        finally:
            self._app = None

    async def _tick_sleep(self) -> None:
        now = time.monotonic()
        while self._next_tick <= now:
            self._next_tick += self.interval_s
        await asyncio.sleep(self._next_tick - now)
        self._next_tick += self.interval_s
