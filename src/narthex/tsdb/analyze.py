"""Block cardinality analysis, as ``promtool tsdb analyze`` (Prometheus 2.42) prints it."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from narthex.tsdb.block import Block
from narthex.tsdb.gofmt import format_go_duration

_MAX_SAMPLES_PER_CHUNK = 120


def _top(items: dict[str, int], limit: int) -> list[str]:
    """``"<count> <key>"`` lines, largest first (ties by key, for a stable output)."""
    ranked = sorted(items.items(), key=lambda kv: (-kv[1], kv[0]))[: max(limit, 0)]
    return [f"{count} {key}" for key, count in ranked]


def analyze_block(block: Block, limit: int = 20, extended: bool = False) -> str:
    """The report for one block: churn, label pair and label name cardinality, top metric names."""
    meta = block.meta
    ix = block._ix
    span = meta.max_time - meta.min_time
    ids = block.all_postings()
    labels = block.series_labels(ids)
    coff = ix["series_chunk_off"]
    first_mint = ix["chunk_mint"][coff[:-1]] if len(ids) else np.zeros(0, dtype=np.int64)
    last_maxt = ix["chunk_maxt"][coff[1:] - 1] if len(ids) else np.zeros(0, dtype=np.int64)
    uncovered = (span - (last_maxt - first_mint)).tolist()

    names_uncovered: Counter[str] = Counter()
    pairs_uncovered: Counter[str] = Counter()
    pairs_count: Counter[str] = Counter()
    values_of: dict[str, set[str]] = {}
    entries = 0
    for lset, unc in zip(labels, uncovered, strict=True):
        for name, value in lset:
            key = f"{name}={value}"
            names_uncovered[name] += unc
            pairs_uncovered[key] += unc
            pairs_count[key] += 1
            values_of.setdefault(name, set()).add(value)
            entries += 1

    def per_span(counter: Counter[str]) -> dict[str, int]:
        return {k: int(float(m) / float(span)) if span else 0 for k, m in counter.items()}

    out = [
        f"Block ID: {meta.ulid}",
        f"Duration: {format_go_duration(span * 1_000_000)}",
        f"Series: {meta.num_series}",
        f"Label names: {len(values_of)}",
        f"Postings (unique label pairs): {len(pairs_uncovered)}",
        f"Postings entries (total label pairs): {entries}",
        "",
        "Label pairs most involved in churning:",
        *_top(per_span(pairs_uncovered), limit),
        "",
        "Label names most involved in churning:",
        *_top(per_span(names_uncovered), limit),
        "",
        "Most common label pairs:",
        *_top(dict(pairs_count), limit),
        "",
        "Label names with highest cumulative label value length:",
        *_top(
            {n: sum(len(v.encode("utf-8", "surrogateescape")) for v in vs) for n, vs in values_of.items()},
            limit,
        ),
        "",
        "Highest cardinality labels:",
        *_top({n: len(vs) for n, vs in values_of.items()}, limit),
        "",
        "Highest cardinality metric names:",
        *_top(dict(Counter(dict(lset).get("__name__", "") for lset in labels)), limit),
    ]
    if extended:
        out.extend(_fullness(ix["chunk_count"]))
    return "\n".join(out) + "\n"


def _fullness(counts: np.ndarray) -> list[str]:
    """The 2.42 ``--extended`` chunk fullness histogram (10 buckets of 10%)."""
    buckets = [0] * 10
    for n in counts.tolist():
        size = min(float(n), _MAX_SAMPLES_PER_CHUNK)
        buckets[math.ceil(10 * size / _MAX_SAMPLES_PER_CHUNK) - 1] += 1
    total = max(len(counts), 1)
    lines = ["", "Compaction analysis:", "Fullness: Amount of samples in chunks (100% is 120 samples)"]
    for i, c in enumerate(buckets):
        lines.append(f"{(i + 1) * 10:7d}%: " + "#" * (100 * c // total))
    return lines
