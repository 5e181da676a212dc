"""Reading a whole 2h block: N series into numpy arrays (in process), and the same read through a
PromQL query on ``narthex serve`` vs Prometheus 2.42 serving the same data.

The data is one OpenMetrics file (N series x 2h, 30 s interval with +-25 ms jitter) backfilled by
each engine's own ``create-blocks-from openmetrics``. The server query is
``sum(count_over_time({__name__=~"bench_metric_.+"}[2h]))`` at the end of the block: it decodes
every sample but returns one number (checked against the sample count), so JSON encoding does not
dominate.
Knobs: ``BENCH_SELECT_SERIES`` (default 10000), ``BENCH_SELECT_INTERVAL`` seconds (default 30).
"""

from __future__ import annotations

import json
import random
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry

from bench.common import (
    PYTHON,
    Row,
    bench_labels,
    env_int,
    free_port,
    print_table,
    start,
    stop,
    timed,
    wait_http,
    which,
)
from narthex.model.matcher import Matcher, MatchType
from narthex.tsdb import TSDBOptions, open_db

START_MS = 1_699_999_200_000  # a 2h boundary
SPAN_MS = 2 * 3_600_000
QUERY = 'sum(count_over_time({__name__=~"bench_metric_.+"}[2h]))'


def write_input(path: Path, n: int, interval_s: int) -> int:
    rng = random.Random(5)
    steps = SPAN_MS // (interval_s * 1000)
    count = 0
    with open(path, "w") as f:
        for i, lb in enumerate(bench_labels(n)):
            d = dict(lb)
            name = d.pop("__name__")
            d["id"] = str(i)  # unique without the name, so count_over_time() keeps series apart
            series = name + "{" + ",".join(f'{k}="{v}"' for k, v in d.items()) + "} "
            phase = rng.randrange(interval_s * 1000 - 50) + 25
            value = rng.randrange(10_000)
            lines = []
            for k in range(steps):
                t = START_MS + phase + k * interval_s * 1000 + rng.randint(-25, 25)
                value += rng.randrange(100)
                lines.append(f"{series}{value} {t // 1000}.{t % 1000:03d}\n")
            f.write("".join(lines))
            count += steps
        f.write("# EOF\n")
    return count


def _query(port: int, samples: int) -> float:
    """Seconds for the query (best of 3); checks every sample is counted."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(
        {"query": QUERY, "time": f"{(START_MS + SPAN_MS - 1) / 1000:.3f}"}
    )
    best = float("inf")
    for _ in range(3):
        try:
            with timed() as took, urllib.request.urlopen(url, timeout=600) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"query failed: {err.code} {err.read()[:300]!r}") from None
        best = min(best, took())
    assert float(body["data"]["result"][0]["value"][1]) == samples, body
    return best


def _serve(cmd: list[str], port: int, log: Path, samples: int) -> float:
    proc = start(cmd, log=log)
    try:
        wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=300, proc=proc)
        return _query(port, samples)
    finally:
        stop(proc)


def main() -> int:
    n = env_int("BENCH_SELECT_SERIES", 10_000)
    interval = env_int("BENCH_SELECT_INTERVAL", 30)
    with tempfile.TemporaryDirectory(prefix="bench-select-") as tmp:
        root = Path(tmp)
        src = root / "input.om"
        samples = write_input(src, n, interval)
        subprocess.run(
            [
                PYTHON,
                "-m",
                "narthex.cli.tsdb",
                "create-blocks-from",
                "openmetrics",
                "-q",
                str(src),
                str(root / "narthex"),
            ],
            check=True,
        )
        db = open_db(root / "narthex", TSDBOptions(background_compaction=False), registry=CollectorRegistry())
        matchers = [Matcher(MatchType.REGEX, "__name__", "bench_metric_.+")]
        best = float("inf")
        for _ in range(3):
            with timed() as took:
                got = db.querier(START_MS, START_MS + SPAN_MS).select(matchers)
            best = min(best, took())
        assert len(got) == n and sum(len(s.timestamps) for s in got) == samples
        db.close()
        config = root / "config.yml"
        config.write_text("global:\n  scrape_interval: 1h\n")
        port = free_port()
        ours_q = _serve(
            [
                PYTHON,
                "-m",
                "narthex",
                "serve",
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'narthex'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            port,
            root / "narthex.log",
            samples,
        )
        ref_q = None
        prometheus, promtool = which("prometheus"), which("promtool")
        if prometheus and promtool:
            subprocess.run(
                [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(src), str(root / "prom")],
                check=True,
            )
            port = free_port()
            ref_q = _serve(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={root / 'prom'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                port,
                root / "prom.log",
                samples,
            )
        else:
            print("prometheus/promtool not installed: reference skipped")
    print(f"{n:,} series x 2h ({samples:,} samples) in one block")
    print_table(
        "select from a block",
        [
            Row("select into numpy (in process)", best, None, "s"),
            Row("select throughput (in process)", samples / best / 1e6, None, "M samples/s", False),
            Row("query sum(count_over_time(...[2h])) via HTTP", ours_q, ref_q, "s"),
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
