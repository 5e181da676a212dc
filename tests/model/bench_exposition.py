"""Scrape parser throughput: ``.venv/bin/python -m tests.model.bench_exposition [n_series] [repeats]``.

Body: counters with 4 labels, gauges with 3 labels and 12-bucket histograms with _sum/_count (as in
shared/reference/python-deps.md section 3). Reports samples/s for the first scrape (every series a cache
miss: label parsing + resolve callback) and for later scrapes (same series, new values: cache hits),
best of ``repeats``, body given as bytes (decoding included).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from expo_gen import realistic_body

from narthex.model.exposition import Format, ScrapeCache
from narthex.model.labels import Labels


def bench(n_series: int, repeats: int, fmt: Format) -> tuple[int, float, float]:
    om = fmt is Format.OPENMETRICS
    bodies = [realistic_body(n_series, openmetrics=om, tick=t).encode() for t in range(repeats + 1)]
    first = float("inf")
    total = 0
    for _ in range(repeats):
        refs: dict[Labels, int] = {}
        cache = ScrapeCache(lambda labels, refs=refs: refs.setdefault(labels, len(refs)))  # type: ignore[misc]
        start = time.perf_counter()
        res = cache.scrape(bodies[0], fmt)
        first = min(first, time.perf_counter() - start)
        assert res.error is None, res.error
        total = res.total
    cached = float("inf")
    for body in bodies[1:]:
        start = time.perf_counter()
        res = cache.scrape(body, fmt)
        cached = min(cached, time.perf_counter() - start)
        assert res.error is None and res.series_added == 0
    return total, first, cached


def main() -> None:
    n_series = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    for fmt in (Format.TEXT, Format.OPENMETRICS):
        total, first, cached = bench(n_series, repeats, fmt)
        print(
            f"{fmt.name:11s} {total} samples: first scrape {total / first:>11,.0f} samples/s "
            f"({first * 1e3:6.1f} ms) | cached {total / cached:>11,.0f} samples/s ({cached * 1e3:5.1f} ms)"
        )
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        return
    text = realistic_body(n_series)
    start = time.perf_counter()
    count = sum(len(f.samples) for f in text_string_to_metric_families(text))
    elapsed = time.perf_counter() - start
    print(
        f"reference: prometheus_client text parser {count / elapsed:,.0f} samples/s ({elapsed * 1e3:.1f} ms)"
    )


if __name__ == "__main__":
    main()
