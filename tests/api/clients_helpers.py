"""Real servers for the client interop tests: Prometheus 2.42 and ``narthex serve`` on the same data.

The data is :func:`tests.api.test_prometheus_compat._series` (one hour at 15 s ending one to two
minutes ago): Prometheus gets it through ``promtool tsdb create-blocks-from openmetrics``, Narthex
through its TSDB appender (the WAL, replayed at start-up). Both run with the external labels
``dc="eu"`` and ``code="x"`` and no scrape targets.
"""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from narthex.tsdb import TSDBOptions, open_db
from tests.api.conftest import load
from tests.api.test_prometheus_compat import SPAN_MS, _series, write_openmetrics
from tests.server.harness import ServerProcess, free_port

GLOBAL = "global:\n  scrape_interval: 15s\n  external_labels:\n    dc: eu\n    code: x\n"


@dataclass
class Pair:
    """Prometheus and Narthex serving the same samples (``base_ms`` is the first sample's time)."""

    base_ms: int
    prometheus: str
    narthex: str
    data: list[tuple[dict[str, str], Any, Any]]


def wait_ready(url: str, proc: subprocess.Popen, log: pathlib.Path, timeout: float = 30.0) -> None:
    """Poll ``url/-/ready`` until it answers 200 (AssertionError with the log if it never does)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/-/ready", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{url} did not become ready:\n{log.read_text()}")
        time.sleep(0.1)


@contextlib.contextmanager
def prometheus(
    binary: str, root: pathlib.Path, config: str, tsdb: pathlib.Path, *flags: str
) -> Iterator[str]:
    """A Prometheus on a free port (its URL), stopped on exit."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "prometheus.yml").write_text(config)
    port = free_port()
    log_path = root / "prometheus.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={tsdb}",
             f"--web.listen-address=127.0.0.1:{port}", *flags],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc, log_path)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def narthex(root: pathlib.Path, data: list[tuple[dict[str, str], Any, Any]], config: str) -> Iterator[str]:
    """``narthex serve`` over ``data`` written through the appender (its URL), stopped on exit."""
    root.mkdir(parents=True, exist_ok=True)
    db = open_db(root / "data", TSDBOptions(background_compaction=False), CollectorRegistry())
    try:
        load(db, data)
    finally:
        db.close()
    (root / "prometheus.yml").write_text(config)
    server = ServerProcess(root)
    try:
        server.start()
        yield server.base()
    finally:
        server.stop()


@contextlib.contextmanager
def server_pair(prometheus_bin: str, promtool_bin: str, root: pathlib.Path) -> Iterator[Pair]:
    """Prometheus 2.42 (backfilled blocks) and Narthex (appended WAL) over identical samples."""
    now_ms = int(time.time() * 1000)
    base_ms = (now_ms - SPAN_MS - 60_000) // 60_000 * 60_000
    data = _series(base_ms)
    root.mkdir(parents=True, exist_ok=True)
    om = root / "data.om"
    write_openmetrics(om, data)
    blocks = root / "prometheus" / "tsdb"
    subprocess.run([promtool_bin, "tsdb", "create-blocks-from", "openmetrics", "-q", str(om), str(blocks)],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    with (
        prometheus(prometheus_bin, root / "prometheus", GLOBAL, blocks) as prom_url,
        narthex(root / "narthex", data, GLOBAL) as narthex_url,
    ):
        yield Pair(base_ms, prom_url, narthex_url, data)
