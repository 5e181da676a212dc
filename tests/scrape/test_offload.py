"""Expensive scrapes (many new series) are ingested off the event loop, with the same outcome."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

import narthex.scrape.loop as scrape_loop
from tests.scrape.helpers import is_stale, new_db, series

T1, T2, T3 = 1_700_000_000.0, 1_700_000_005.0, 1_700_000_010.0


def body(n: int, version: int = 0, start: int = 0) -> str:
    lines = ["# HELP many_total Many series.", "# TYPE many_total counter"]
    lines += [f'many_total{{i="{i}",kind="k{i % 7}"}} {i + version}' for i in range(start, start + n)]
    return "\n".join(lines) + "\n"


@pytest.fixture
def inline_only(monkeypatch):
    """Every scrape's ingest stays on the event loop (the behaviour before offloading)."""
    monkeypatch.setattr(scrape_loop.ScrapeLoop, "_offload", lambda self, body: False)


@pytest.fixture
def always_offload(monkeypatch):
    monkeypatch.setattr(scrape_loop.ScrapeLoop, "_offload", lambda self, body: bool(body))


async def max_loop_lag(work) -> tuple[float, int]:
    """Run ``work`` while a 1 ms periodic callback measures how late the event loop runs it."""
    lags: list[float] = []
    done = False

    async def ticker() -> None:
        while not done:
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - t0 - 0.001)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    lags.clear()
    try:
        await work
    finally:
        done = True
        await tick
    return max(lags, default=0.0), len(lags)


async def test_first_scrape_of_many_series_keeps_event_loop_responsive(db, exporter, make_loop):
    n = 20_000
    exporter.set("/metrics", body(n))
    loop = make_loop(exporter.address)
    start = time.perf_counter()
    lag, ticks = await max_loop_lag(loop.scrape_and_report(T1))
    took = time.perf_counter() - start
    assert loop.offloaded == 1
    assert len(series(db, __name__="many_total")) == n
    # Inline, the loop would not run any callback for the whole parse + append (~1 s here).
    assert ticks > 10
    assert lag < max(0.25, took / 4), (lag, took)
    # Once the series are cached, scrapes are cheap and stay inline.
    exporter.set("/metrics", body(200))
    await loop.scrape_and_report(T2)
    exporter.set("/metrics", body(200, 1))
    await loop.scrape_and_report(T3)
    before = loop.offloaded
    await loop.scrape_and_report(T3 + 5)
    assert loop.offloaded == before


async def test_offload_decision(make_loop):
    loop = make_loop("127.0.0.1:1")
    assert not loop._offload(b"")
    assert not loop._offload(b"x" * 100)  # cold cache, but a small body
    assert loop._offload(b"x" * scrape_loop.OFFLOAD_COLD_BODY_BYTES)
    loop.cache._slots["x"] = 0
    loop._last_series_added, loop._last_body_len = 1000, 50_000
    assert loop._offload(b"x" * 50_000)  # the previous scrape added many series
    loop._last_series_added = 0
    assert not loop._offload(b"x" * 50_000)
    assert loop._offload(b"x" * 70_000)  # the body grew a lot
    loop._last_ingest_s = 0.05
    assert loop._offload(b"x" * 50_000)  # the previous scrape was expensive anyway


def snapshot(db) -> dict:
    out = {}
    for labels, (t, v) in series(db).items():
        if dict(labels)["__name__"] == "scrape_duration_seconds":
            v = np.zeros(len(v))
        out[labels] = (t.tolist(), np.asarray(v).view(np.uint64).tolist())
    return out


SCRAPES = [
    (T1, body(3000)),
    (T2, body(2000, 1, start=1500)),  # 1,500 series gone (stale markers), 500 new
    (T3, "garbage{\n"),  # a failed scrape: everything stale
    (T3 + 5, body(3000, 2)),
]


async def run_scrapes(db, exporter, make_loop) -> tuple[dict, int]:
    loop = make_loop(exporter.address)
    loop.db = lambda: db
    for ts, text in SCRAPES:
        exporter.set("/metrics", text)
        await loop.scrape_and_report(ts)
    return snapshot(db), loop.offloaded


@pytest.mark.parametrize("mode", ["inline_only", "always_offload"])
async def test_same_samples_and_series_as_inline(mode, request, exporter, make_loop, tmp_path, monkeypatch):
    request.getfixturevalue(mode)
    db = new_db(str(tmp_path / mode))
    try:
        got, offloaded = await run_scrapes(db, exporter, make_loop)
    finally:
        db.close()
    assert offloaded == (0 if mode == "inline_only" else len(SCRAPES))
    monkeypatch.undo()
    monkeypatch.setattr(scrape_loop.ScrapeLoop, "_offload", lambda self, body: False)
    ref_db = new_db(str(tmp_path / "reference"))
    try:
        want, _ = await run_scrapes(ref_db, exporter, make_loop)
    finally:
        ref_db.close()
    assert got == want
    names = {dict(labels)["__name__"] for labels in got}
    assert {"many_total", "up", "scrape_series_added"} <= names
    assert len([k for k in got if dict(k)["__name__"] == "many_total"]) == 3500


class Gate:
    """Holds the worker inside a scrape's parse until released."""

    def __init__(self, loop) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        parse = loop._parse

        def gated(body: bytes, ctype: str):
            self.entered.set()
            assert self.release.wait(10)
            return parse(body, ctype)

        loop._parse = gated


async def test_cancel_while_ingesting_in_thread_commits_exactly_once(db, exporter, make_loop):
    exporter.set("/metrics", body(5000))
    loop = make_loop(exporter.address)
    gate = Gate(loop)
    task = asyncio.create_task(loop.scrape_and_report(T1))
    assert await asyncio.to_thread(gate.entered.wait, 10)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # the task waits for the worker: nothing is written after it ends
    gate.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    found = series(db, __name__="many_total")
    assert len(found) == 5000
    assert all(list(t) == [T1 * 1000] for t, _ in found.values())
    assert loop.target.health == "up"
    assert len(loop.cache) == 5000


async def test_cancel_before_worker_starts_abandons_scrape(db, exporter, make_loop):
    exporter.set("/metrics", body(5000))
    loop = make_loop(exporter.address)
    busy = threading.Event()
    blocker = scrape_loop.ingest_executor().submit(busy.wait, 10)
    try:
        task = asyncio.create_task(loop.scrape_and_report(T1))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        busy.set()
        blocker.result()
    assert series(db) == {}
    assert len(loop.cache) == 0


async def test_stop_during_threaded_scrape_still_writes_end_of_run_staleness(db, exporter, make_loop):
    exporter.set("/metrics", body(3000))
    loop = make_loop(exporter.address)
    gate = Gate(loop)
    loop.target.offset_s = lambda interval, seed: 0.0
    loop.start()
    assert await asyncio.to_thread(gate.entered.wait, 10)
    stopping = asyncio.create_task(loop.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()
    gate.release.set()
    await stopping
    assert loop.task is not None
    await asyncio.wait_for(loop.task, 5)
    found = series(db, __name__="many_total")
    assert len(found) == 3000
    for _, v in found.values():
        assert len(v) == 2 and not is_stale(v[:1]).any() and is_stale(v[1:]).all()
    _, v = next(iter(series(db, __name__="up").values()))
    assert list(v[:1]) == [1] and is_stale(v[1:]).all()
