"""Bytes on disk after backfilling the same OpenMetrics file with narthex and with promtool.

Size knobs: ``BENCH_DISK_TARGETS`` (47 series each, default 15 = 705 series), ``BENCH_DISK_HOURS``
(default 2), scrape interval 5 s with +-25 ms jitter: about 1M samples by default.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import (
    PYTHON,
    Row,
    dir_bytes,
    env_int,
    generate_openmetrics,
    print_table,
    run_measured,
    which,
)

# 2023-11-14T22:00:00Z, a 2h boundary: the default run fills exactly one block.
START_MS = 1_699_999_200_000


def _blocks_bytes(root: Path) -> int:
    """Bytes of the block directories only (promtool also leaves an empty wal/ and chunks_head/)."""
    return sum(dir_bytes(p) for p in root.iterdir() if p.is_dir() and len(p.name) == 26)


def main() -> int:
    targets = env_int("BENCH_DISK_TARGETS", 15)
    hours = env_int("BENCH_DISK_HOURS", 2)
    with tempfile.TemporaryDirectory(prefix="bench-disk-") as tmp:
        root = Path(tmp)
        src = root / "input.om"
        samples = generate_openmetrics(src, targets=targets, hours=hours, interval_s=5, start_ms=START_MS)
        print(f"input: {samples:,} samples, {src.stat().st_size:,} bytes of OpenMetrics")
        cmd = ["create-blocks-from", "openmetrics", "-q", str(src)]
        ours_s, ours_rss = run_measured([PYTHON, "-m", "narthex.cli.tsdb", *cmd, str(root / "narthex")])
        ours = _blocks_bytes(root / "narthex")
        promtool = which("promtool")
        ref = ref_s = ref_rss = None
        if promtool is None:
            print("promtool not installed: reference skipped")
        else:
            ref_s, ref_rss = run_measured([promtool, "tsdb", *cmd, str(root / "prom")])
            ref = _blocks_bytes(root / "prom")
        print_table(
            "create-blocks-from openmetrics",
            [
                Row("bytes on disk", ours, ref, "B", target="<= 1.0"),
                Row("bytes per sample", ours / samples, ref / samples if ref else None, "B"),
                Row("backfill wall time", ours_s, ref_s, "s"),
                Row("backfill peak RSS", ours_rss / 2**20, ref_rss / 2**20 if ref_rss else None, "MiB"),
            ],
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
