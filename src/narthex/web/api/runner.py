"""Where a query evaluates: inline on the event loop when it is known to be cheap, else in a thread.

Python threads share one interpreter lock. Handing a query of a millisecond to a worker thread
costs more than the query under concurrent load: the loop thread and the workers queue for the
lock at every switch (measured: 2.5 ms per cheap query alone, 4.8 ms with six threads). So the
runner remembers, per query shape (endpoint, text, range and step), the CPU time its last run took.
A shape whose last run stayed under ``inline_cpu_s`` of CPU runs inline; the engine polls a budget
at every node and, once ``abort_after_s`` of wall time is spent, gives up so that the query is rerun
in a worker.
Unknown or expensive shapes run in a worker thread, where a client that goes away cancels them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from narthex.promql.value import QueryCanceledError

INLINE_CPU_S = 0.003  # a shape whose last run took at most this much CPU runs inline
ABORT_AFTER_S = 0.010  # an inline run still going after this long is rerun in a worker
CLIENT_CHECK_S = 0.2  # how often a worker run looks whether its client went away
MAX_SHAPES = 10_000


class _Budget:
    """A cancel flag for inline runs: set once the time budget is spent (the engine polls it)."""

    __slots__ = ("_until",)

    def __init__(self, seconds: float) -> None:
        self._until = time.perf_counter() + seconds

    def is_set(self) -> bool:
        return time.perf_counter() > self._until


class _OverBudget(Exception):
    """An inline run was aborted by its budget (not by the client)."""


class QueryRunner:
    """Runs ``func(cancel=...)`` inline or in the default executor, learning each shape's cost."""

    def __init__(self, inline_cpu_s: float = INLINE_CPU_S, abort_after_s: float = ABORT_AFTER_S) -> None:
        self.inline_cpu_s = inline_cpu_s
        self.abort_after_s = abort_after_s
        self._cost: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = threading.Lock()
        self.inline_runs = 0
        self.worker_runs = 0
        self.aborted_inline = 0

    def _last_cost(self, shape: Hashable) -> float | None:
        with self._lock:
            return self._cost.get(shape)

    def _record(self, shape: Hashable, seconds: float) -> None:
        with self._lock:
            self._cost[shape] = seconds
            self._cost.move_to_end(shape)
            while len(self._cost) > MAX_SHAPES:
                self._cost.popitem(last=False)

    async def run(
        self,
        shape: Hashable,
        func: Callable[..., Any],
        client_gone: Callable[[], bool],
        slot_free: Callable[[], bool] = lambda: True,
    ) -> Any:
        """The result of ``func(cancel=flag)``; exceptions from ``func`` propagate unchanged.

        ``slot_free`` tells whether the engine's concurrency gate has a free slot now: an inline run
        must never wait for one (that would block the loop), so without one it goes to a worker.
        """
        cost = self._last_cost(shape)
        if cost is not None and cost <= self.inline_cpu_s and slot_free():
            try:
                return self._inline(shape, func)
            except _OverBudget:
                self.aborted_inline += 1
        return await self._in_worker(shape, func, client_gone)

    def _inline(self, shape: Hashable, func: Callable[..., Any]) -> Any:
        budget = _Budget(self.abort_after_s)
        began = time.thread_time()  # as in workers: time spent waiting for the lock is not the query's
        try:
            result = func(cancel=budget)
        except QueryCanceledError:
            if budget.is_set():
                self._record(shape, max(time.thread_time() - began, self.abort_after_s))
                raise _OverBudget() from None
            raise
        self._record(shape, time.thread_time() - began)
        self.inline_runs += 1
        return result

    async def _in_worker(
        self, shape: Hashable, func: Callable[..., Any], client_gone: Callable[[], bool]
    ) -> Any:
        cancel = threading.Event()

        def timed() -> Any:
            began = time.thread_time()  # CPU of this thread: waiting for the interpreter lock is not counted
            try:
                return func(cancel=cancel)
            finally:
                self._record(shape, time.thread_time() - began)

        self.worker_runs += 1
        task = asyncio.ensure_future(asyncio.to_thread(timed))
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=CLIENT_CHECK_S)
                if not task.done() and client_gone():
                    cancel.set()
        except asyncio.CancelledError:
            cancel.set()
            raise
        return task.result()
