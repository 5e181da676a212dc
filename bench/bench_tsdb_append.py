"""Samples/s through the Appender: N series x S scrape batches (one commit per scrape), WAL on.

Reference: ``promtool tsdb bench write`` (Prometheus's own head-append benchmark: one commit per
1000-series shard per scrape, WAL on) on the same label sets, restricted to one core
(``GOMAXPROCS=1`` and ``taskset``); it runs scrapes in multiples of 100.
Knobs: ``BENCH_APPEND_SERIES`` (default 100000), ``BENCH_APPEND_SCRAPES`` (default 120).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from bench.common import Row, bench_labels, env_int, print_table, timed, which, write_labels_file
from narthex.tsdb import TSDBOptions, open_db


def narthex_append(
    root: Path, n: int, scrapes: int, interval_ms: int = 15_000
) -> tuple[float, float, int, list[float]]:
    """(seconds creating series, seconds appending, samples appended, seconds per commit)."""
    db = open_db(root, TSDBOptions(background_compaction=False), registry=CollectorRegistry())
    try:
        labels = bench_labels(n)
        with timed() as create_s:
            app = db.appender()
            refs = np.fromiter((app.series_ref(lb) for lb in labels), dtype=np.int64, count=n)
            app.commit()
        rng = np.random.default_rng(1)
        values = rng.integers(0, 1_000_000, n).astype(np.float64)
        incs = rng.integers(0, 100, (scrapes, n)).astype(np.float64)
        appended = 0
        per_commit = []
        with timed() as append_s:
            for k in range(scrapes):
                with timed() as one:
                    values += incs[k]
                    app = db.appender()
                    app.append_batch(refs, 1_700_000_000_000 + k * interval_ms, values)
                    appended += app.commit().appended
                per_commit.append(one())
        return create_s(), append_s(), appended, per_commit
    finally:
        db.close()


def promtool_append(root: Path, n: int, scrapes: int) -> float | None:
    """samples/s reported by ``promtool tsdb bench write`` on one core, or None without promtool."""
    promtool = which("promtool")
    if promtool is None:
        return None
    labels_file = root / "labels.json"
    write_labels_file(labels_file, n)
    cmd = [
        promtool,
        "tsdb",
        "bench",
        "write",
        f"--metrics={n}",
        f"--scrapes={scrapes}",
        f"--out={root / 'promtool'}",
        str(labels_file),
    ]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    env = {**os.environ, "GOMAXPROCS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, cwd=root)
    m = re.search(r"samples/sec: ([0-9.e+]+)", res.stdout)
    shutil.rmtree(root / "promtool", ignore_errors=True)
    return float(m.group(1)) if m else None


def main() -> int:
    n = env_int("BENCH_APPEND_SERIES", 100_000)
    scrapes = env_int("BENCH_APPEND_SCRAPES", 120)
    with tempfile.TemporaryDirectory(prefix="bench-append-") as tmp:
        root = Path(tmp)
        create_s, append_s, appended, per_commit = narthex_append(root / "narthex", n, scrapes)
        ref_scrapes = max(100, round(scrapes / 100) * 100)
        ref = promtool_append(root, n, ref_scrapes)
    ours = appended / append_s
    steady = n / float(np.median(per_commit))
    print(
        f"{n:,} series x {scrapes} scrapes = {appended:,} samples in {append_s:.2f} s "
        f"(series creation {create_s:.2f} s, {n / create_s:,.0f} series/s); "
        f"promtool: {n:,} series x {ref_scrapes} scrapes, GOMAXPROCS=1"
    )
    slow = sorted(per_commit)[-3:]
    print(
        f"narthex commits: first {per_commit[0]:.3f} s (writes the series records), median "
        f"{np.median(per_commit) * 1000:.1f} ms, slowest {', '.join(f'{x:.3f}' for x in slow)} s"
    )
    print_table(
        "head append (one core)",
        [
            Row(
                "append throughput, whole run",
                ours / 1e6,
                ref / 1e6 if ref else None,
                "M samples/s",
                lower_is_better=False,
                target=">= 2M/s",
            ),
            Row(
                "append throughput, median commit",
                steady / 1e6,
                ref / 1e6 if ref else None,
                "M samples/s",
                lower_is_better=False,
                target=">= 2M/s",
            ),
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
