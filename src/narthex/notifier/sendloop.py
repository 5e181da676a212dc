"""One Alertmanager's queue and send loop (``notifier/sendloop.go``).

The queue holds at most ``queue_capacity`` alerts (the oldest are dropped); batches of at most
``batch_size`` alerts are POSTed as JSON. A failed request is not retried: its alerts count as errors
and as dropped, and the rule manager resends still-active alerts after the resend delay.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from narthex import __version__
from narthex.notifier.alert import NotifierAlert, to_api_v2
from narthex.notifier.metrics import NotifierMetrics
from narthex.scrape.client import ClientSettings, go_request_error
from narthex.util.log import get_logger

log = get_logger("notifier")

USER_AGENT = f"Narthex/{__version__}"


@dataclass
class NotifierOptions:
    queue_capacity: int = 10_000
    batch_size: int = 256
    drain_on_shutdown: bool = True


class BadStatusError(Exception):
    """The Alertmanager answered with a non-2xx status."""


def _go_status(status: int, reason: str | None) -> str:
    return f"{status} {reason}" if reason else str(status)


class SendLoop:
    """Queue and sender of one Alertmanager URL; runs on the event loop."""

    def __init__(
        self,
        url: str,
        settings: ClientSettings,
        timeout_s: float,
        opts: NotifierOptions,
        metrics: NotifierMetrics,
        session: Callable[[], aiohttp.ClientSession],
    ) -> None:
        self.url = url
        self.settings = settings
        self.timeout_s = timeout_s
        self.opts = opts
        self.metrics = metrics
        self.session = session
        self.queue: deque[NotifierAlert] = deque()
        self._has_work = asyncio.Event()
        self._stopped = False
        self._task: asyncio.Task[None] | None = None
        metrics.init_alertmanager(url)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"notifier {self.url}")

    def add(self, alerts: list[NotifierAlert]) -> None:
        """Enqueue alerts, dropping the oldest when the queue would exceed its capacity."""
        if self._stopped:
            return
        capacity = self.opts.queue_capacity
        dropped = 0
        excess = len(alerts) - capacity
        if excess > 0:
            log.warn("Alert batch larger than queue capacity, dropping alerts", count=excess)
            dropped += excess
            alerts = alerts[excess:]
        overflow = len(self.queue) + len(alerts) - capacity
        if overflow > 0:
            log.warn("Alert notification queue full, dropping alerts", count=overflow)
            dropped += overflow
            for _ in range(overflow):
                self.queue.popleft()
        self.queue.extend(alerts)
        self._has_work.set()
        self.metrics.queue_length.labels(self.url).set(len(self.queue))
        if dropped:
            self.metrics.dropped.labels(self.url).inc(dropped)

    def next_batch(self) -> list[NotifierAlert]:
        n = min(len(self.queue), self.opts.batch_size)
        batch = [self.queue.popleft() for _ in range(n)]
        self.metrics.queue_length.labels(self.url).set(len(self.queue))
        return batch

    async def send_one_batch(self) -> None:
        alerts = self.next_batch()
        if not await self.send_all(alerts):
            self.metrics.dropped.labels(self.url).inc(len(alerts))

    async def _loop(self) -> None:
        while not self._stopped:
            await self._has_work.wait()
            self._has_work.clear()
            if self._stopped:
                return
            await self.send_one_batch()
            if self.queue:
                self._has_work.set()

    async def send_all(self, alerts: list[NotifierAlert]) -> bool:
        """POST one batch; True on a 2xx answer."""
        if not alerts:
            return True
        begin = time.monotonic()
        payload = json.dumps(to_api_v2(alerts)).encode()
        try:
            await asyncio.wait_for(self._post(payload), self.timeout_s)
        except BadStatusError as exc:
            err = str(exc)
        except Exception as exc:  # connection, timeout or credential errors are reported alike
            err = go_request_error(self.url, exc).replace('Get "', 'Post "', 1)
        else:
            err = ""
        if err:
            log.error("Error sending alerts", alertmanager=self.url, count=len(alerts), err=err)
            self.metrics.errors.labels(self.url).inc(len(alerts))
            return False
        elapsed = time.monotonic() - begin
        self.metrics.latency.observe(self.url, elapsed)
        self.metrics.latency_histogram.labels(self.url).observe(elapsed)
        self.metrics.sent.labels(self.url).inc(len(alerts))
        return True

    async def _post(self, payload: bytes) -> None:
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
        headers.update(self.settings.headers())
        async with self.session().post(
            self.url, data=payload, headers=headers, **self.settings.request_kwargs()
        ) as resp:
            await resp.read()
            if resp.status // 100 != 2:
                raise BadStatusError(f"bad response status {_go_status(resp.status, resp.reason)}")

    async def stop(self, drain: bool) -> None:
        """Stop the loop; send what is queued first when ``drain``."""
        self._stopped = True
        self._has_work.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if drain:
            while self.queue:
                await self.send_one_batch()
        elif self.queue:
            log.warn(
                "Alert notification queue not drained on shutdown, dropping alerts", count=len(self.queue)
            )
            self.metrics.dropped.labels(self.url).inc(len(self.queue))
            self.queue.clear()
        self.metrics.remove_alertmanager(self.url)
