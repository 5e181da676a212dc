"""Cardinality statistics of the head for ``/api/v1/status/tsdb``."""

from __future__ import annotations

import heapq

from narthex.model.labels import METRIC_NAME
from narthex.tsdb.head import INT64_MAX, INT64_MIN, Head


def _top(items: dict[str, int], limit: int) -> list[dict]:
    best = heapq.nsmallest(limit, items.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"name": k, "value": v} for k, v in best]


def _varint_len(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def _label_size(name: str, value: str) -> int:
    """Bytes of one label in a series' label set: length-prefixed UTF-8 name and value."""
    nb, vb = len(name.encode("utf-8")), len(value.encode("utf-8"))
    return nb + vb + _varint_len(nb) + _varint_len(vb)


def head_stats(head: Head) -> dict:
    """``headStats`` as Prometheus reports it."""
    with head.lock:
        empty = head.min_time == INT64_MAX and head.max_time == INT64_MIN
        return {
            "numSeries": head.num_series,
            "chunkCount": head.num_chunks,
            "minTime": 0 if empty else head.min_time,
            "maxTime": 0 if empty else head.max_time,
            "numLabelPairs": sum(len(values) for values in head.index.values()),
        }


def tsdb_status(head: Head, limit: int = 10) -> dict:
    """Head stats plus the top-``limit`` cardinality lists of Prometheus's TSDB status page."""
    with head.lock:
        by_metric = {v: len(p) for v, p in head.index.get(METRIC_NAME, {}).items()}
        value_count = {name: len(values) for name, values in head.index.items()}
        memory = {
            name: sum(_label_size(name, v) * len(p) for v, p in values.items())
            for name, values in head.index.items()
        }
        pairs = {f"{name}={v}": len(p) for name, values in head.index.items() for v, p in values.items()}
    return {
        "headStats": head_stats(head),
        "seriesCountByMetricName": _top(by_metric, limit),
        "labelValueCountByLabelName": _top(value_count, limit),
        "memoryInBytesByLabelName": _top(memory, limit),
        "seriesCountByLabelValuePair": _top(pairs, limit),
    }
