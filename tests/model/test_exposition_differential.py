"""Differential tests: on generated inputs our (labels, value) pairs equal prometheus_client's parsers'.

prometheus_client is only an oracle here; Narthex never parses with it.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_oracle
from prometheus_client.parser import text_string_to_metric_families as text_oracle

from narthex.model.exposition import ScrapeCache
from narthex.model.exposition_families import parse_families
from narthex.model.textparse import Format
from tests.model.expo_gen import random_body, realistic_body

Pair = tuple[tuple[tuple[str, str], ...], str]


def _value_key(value: float) -> str:
    return "NaN" if math.isnan(value) else repr(float(value))


def _oracle(text: str, fmt: Format) -> Counter[Pair]:
    parse = om_oracle if fmt is Format.OPENMETRICS else text_oracle
    out: Counter[Pair] = Counter()
    for family in parse(text):
        for s in family.samples:
            labels = tuple(sorted({**s.labels, "__name__": s.name}.items()))
            out[(labels, _value_key(s.value))] += 1
    return out


def _ours(text: str, fmt: Format) -> Counter[Pair]:
    out: Counter[Pair] = Counter()
    for family in parse_families(text, fmt):
        for s in family.samples:
            out[(s.labels, _value_key(s.value))] += 1
    return out


def _ours_cached(text: str, fmt: Format) -> Counter[Pair]:
    """Through the scrape cache, twice (the second time every series is a cache hit)."""
    seen: dict[int, tuple[tuple[str, str], ...]] = {}

    def resolve(labels: tuple[tuple[str, str], ...]) -> int:
        seen[len(seen)] = labels
        return len(seen) - 1

    cache = ScrapeCache(resolve)
    result: Counter[Pair] = Counter()
    for _ in range(2):
        res = cache.scrape(text.encode(), fmt)
        assert res.error is None, res.error
        result = Counter(
            (seen[int(r)], _value_key(float(v))) for r, v in zip(res.refs, res.values, strict=True)
        )
    return result


@pytest.mark.parametrize("fmt", [Format.TEXT, Format.OPENMETRICS])
def test_random_bodies_match_prometheus_client(fmt: Format) -> None:
    rnd = random.Random(20261121)
    for _ in range(150):
        text, expected = random_body(rnd, openmetrics=fmt is Format.OPENMETRICS)
        oracle = _oracle(text, fmt)
        assert _ours(text, fmt) == oracle, text
        assert _ours_cached(text, fmt) == oracle, text
        assert sum(oracle.values()) == len(expected)


@pytest.mark.parametrize("fmt", [Format.TEXT, Format.OPENMETRICS])
def test_realistic_body_matches_prometheus_client(fmt: Format) -> None:
    text = realistic_body(2000, openmetrics=fmt is Format.OPENMETRICS)
    oracle = _oracle(text, fmt)
    assert sum(oracle.values()) >= 2000
    assert _ours(text, fmt) == oracle
    assert _ours_cached(text, fmt) == oracle


def test_timestamps_match_prometheus_client() -> None:
    text = 'a{x="1"} 1 1700000000123\nb 2 5\nc 3\n'
    oracle = {s.name: s.timestamp for f in text_oracle(text) for s in f.samples}
    ours = {s.name: s.timestamp_ms for f in parse_families(text) for s in f.samples}
    assert {k: None if v is None else round(float(v) * 1000) for k, v in oracle.items()} == ours
