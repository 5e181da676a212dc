"""The query runner: cheap query shapes run inline, others (and overruns) in a worker thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from narthex.promql.value import QueryCanceledError
from narthex.web.api.runner import QueryRunner


def _never_gone() -> bool:
    return False


def _run(runner: QueryRunner, shape: object, func, slot_free=lambda: True):
    return asyncio.run(runner.run(shape, func, _never_gone, slot_free))


def _where(cancel: object) -> str:
    return "worker" if isinstance(cancel, threading.Event) else "inline"


def test_a_cheap_shape_runs_inline_from_its_second_run() -> None:
    runner = QueryRunner()
    assert _run(runner, "up", lambda cancel: threading.current_thread().name) != threading.main_thread().name
    assert _run(runner, "up", lambda cancel: threading.current_thread().name) == threading.main_thread().name
    assert (runner.worker_runs, runner.inline_runs) == (1, 1)


def test_an_expensive_shape_stays_in_a_worker() -> None:
    runner = QueryRunner(inline_cpu_s=0.001)

    def busy(cancel: object) -> str:
        end = time.thread_time() + 0.01
        while time.thread_time() < end:
            pass
        return _where(cancel)

    assert [_run(runner, "q", busy) for _ in range(3)] == ["worker"] * 3


def test_shapes_are_told_apart() -> None:
    runner = QueryRunner()
    _run(runner, ("query", "up", 0), _where)
    assert _run(runner, ("query_range", "up", 3600_000), _where) == "worker"
    assert _run(runner, ("query", "up", 0), _where) == "inline"


def test_an_inline_run_over_its_budget_is_rerun_in_a_worker() -> None:
    runner = QueryRunner(abort_after_s=0.005)
    _run(runner, "q", _where)  # learnt as cheap
    calls = []

    def slow_now(cancel: object) -> str:
        calls.append(_where(cancel))
        end = time.thread_time() + 0.01
        while time.thread_time() < end:
            pass
        if cancel.is_set():  # the engine polls its cancel flag between nodes
            raise QueryCanceledError()
        return _where(cancel)

    assert _run(runner, "q", slow_now) == "worker"
    assert calls == ["inline", "worker"]
    assert runner.aborted_inline == 1
    assert _run(runner, "q", _where) == "worker"  # its cost was learnt


def test_errors_of_an_inline_run_propagate() -> None:
    runner = QueryRunner()
    _run(runner, "q", _where)

    def fails(cancel: object) -> None:
        raise QueryCanceledError()

    with pytest.raises(QueryCanceledError):
        _run(runner, "q", fails)
    assert runner.aborted_inline == 0


def test_no_inline_run_without_a_free_engine_slot() -> None:
    runner = QueryRunner()
    _run(runner, "q", _where)
    assert _run(runner, "q", _where, slot_free=lambda: False) == "worker"


def test_a_worker_run_is_cancelled_when_the_client_goes_away() -> None:
    runner = QueryRunner()
    seen = []

    def waits(cancel: threading.Event) -> bool:
        seen.append(cancel.wait(5))
        return seen[-1]

    began = time.monotonic()
    assert asyncio.run(runner.run("q", waits, lambda: True)) is True
    assert time.monotonic() - began < 2
