"""Head memory per active series and WAL replay time after ``kill -9``, narthex vs Prometheus 2.42.

Method (the same for both; Prometheus 2.42 has no remote-write receiver by default):

1. Fill a TSDB with N series x 100 samples (30 s apart, all in the head) through each engine's own
   appender with the WAL on: ``promtool tsdb bench write`` for Prometheus (its input format; it runs
   scrapes in multiples of 100), the narthex Appender in a subprocess that then SIGKILLs itself.
2. Start the server on that directory (no scrape targets); time until ``/-/ready`` answers 200 (the
   WAL replay), wait 3 s, read its RSS; ``kill -9`` it.
3. Start it again and time ``/-/ready``: the restart after ``kill -9``.

Memory per series = (RSS with the N series - RSS of the same server on an empty directory) / N.
Knob: ``BENCH_HEAD_SERIES`` (default 200000; 1000000 is the headline size, ~5x the run time).
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import (
    PYTHON,
    REPO,
    Row,
    env_int,
    free_port,
    print_table,
    rss_bytes,
    start,
    stop,
    wait_http,
    which,
    write_labels_file,
)

SCRAPES = 100
FILL_NARTHEX = """
import os, signal, sys, time
import numpy as np
from prometheus_client import CollectorRegistry
from bench.common import bench_labels
from narthex.tsdb import TSDBOptions, open_db

n, scrapes = int(sys.argv[2]), int(sys.argv[3])
db = open_db(sys.argv[1], TSDBOptions(background_compaction=False), registry=CollectorRegistry())
app = db.appender()
refs = np.fromiter((app.series_ref(lb) for lb in bench_labels(n)), dtype=np.int64, count=n)
app.commit()
values = np.full(n, 123456789.0)
start = time.perf_counter()
for k in range(1, scrapes + 1):  # promtool bench write: t = k * 30s, value += 1000 per scrape
    values += 1000
    app = db.appender()
    app.append_batch(refs, k * 30_000, values)
    app.commit()
print(f"narthex fill: {n * scrapes / (time.perf_counter() - start):,.0f} samples/s", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
CONFIG = "global:\n  scrape_interval: 1h\n"


def _serve_cmd(kind: str, binary: str, data: Path, config: Path, port: int) -> list[str]:
    base = [
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    if kind == "prometheus":
        return [binary, *base]
    return [PYTHON, "-m", "narthex", "serve", *base]


def _boot(cmd: list[str], port: int, log: Path, settle: float) -> tuple[float, int, subprocess.Popen]:
    """Start, time until ready, wait ``settle`` s, read RSS; returns (ready s, RSS, process)."""
    t0 = time.perf_counter()
    proc = start(cmd, log=log)
    wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=900, proc=proc)
    ready = time.perf_counter() - t0
    time.sleep(settle)
    return ready, rss_bytes(proc.pid), proc


def measure(kind: str, binary: str, data: Path, root: Path) -> dict[str, float]:
    config = root / "config.yml"
    config.write_text(CONFIG)
    out: dict[str, float] = {}
    port = free_port()
    out["ready_empty"], out["rss_empty"], proc = _boot(
        _serve_cmd(kind, binary, root / f"{kind}-empty", config, port), port, root / f"{kind}-empty.log", 3.0
    )
    stop(proc)
    port = free_port()
    out["ready_first"], out["rss"], proc = _boot(
        _serve_cmd(kind, binary, data, config, port), port, root / f"{kind}-1.log", 3.0
    )
    stop(proc, signal.SIGKILL)
    port = free_port()
    out["ready_restart"], _rss, proc = _boot(
        _serve_cmd(kind, binary, data, config, port), port, root / f"{kind}-2.log", 0.0
    )
    stop(proc)
    return out


def main() -> int:
    n = env_int("BENCH_HEAD_SERIES", 200_000)
    with tempfile.TemporaryDirectory(prefix="bench-head-") as tmp:
        root = Path(tmp)
        subprocess.run(
            [PYTHON, "-c", FILL_NARTHEX, str(root / "narthex"), str(n), str(SCRAPES)], check=False, cwd=REPO
        )
        ours = measure("narthex", "", root / "narthex", root)
        ref: dict[str, float] | None = None
        prometheus, promtool = which("prometheus"), which("promtool")
        if prometheus and promtool:
            write_labels_file(root / "labels.json", n)
            subprocess.run(
                [
                    promtool,
                    "tsdb",
                    "bench",
                    "write",
                    f"--metrics={n}",
                    f"--scrapes={SCRAPES}",
                    f"--out={root / 'prom'}",
                    str(root / "labels.json"),
                ],
                check=True,
                capture_output=True,
                cwd=root,
            )
            ref = measure("prometheus", prometheus, root / "prom" / "storage", root)
        else:
            print("prometheus/promtool not installed: reference skipped")

    def per_series(m: dict[str, float]) -> float:
        return (m["rss"] - m["rss_empty"]) / n

    print(
        f"{n:,} series x {SCRAPES} samples in the head (WAL only); RSS empty server: narthex "
        f"{ours['rss_empty'] / 2**20:.0f} MiB, prometheus "
        f"{(ref['rss_empty'] / 2**20) if ref else float('nan'):.0f} MiB"
    )
    print_table(
        f"head memory and WAL replay, {n:,} series",
        [
            Row("RSS per head series", per_series(ours), per_series(ref) if ref else None, "B"),
            Row(
                "RSS with the series loaded", ours["rss"] / 2**20, ref["rss"] / 2**20 if ref else None, "MiB"
            ),
            Row(
                "start on an empty directory to ready",
                ours["ready_empty"],
                ref["ready_empty"] if ref else None,
                "s",
            ),
            Row(
                "first start (WAL replay) to ready",
                ours["ready_first"],
                ref["ready_first"] if ref else None,
                "s",
            ),
            Row(
                "restart after kill -9 to ready",
                ours["ready_restart"],
                ref["ready_restart"] if ref else None,
                "s",
            ),
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
