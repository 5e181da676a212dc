"""Property test: on mutated expositions the cached fast path and the full parser agree.

Either both refuse the body or both accept it with the same samples, whether the scrape cache is cold or
warmed up with the unmutated body (so that mutated lines hit cached series texts).
"""

from __future__ import annotations

import math
import random

import pytest

from narthex.model.exposition import NO_TIMESTAMP, ScrapeCache
from narthex.model.exposition_families import parse_families
from narthex.model.labels import Labels
from narthex.model.textparse import Format, ParseError
from tests.model.expo_gen import random_body, realistic_body

_NOISE = [" ", "  ", "\t", "_", "e", "E", "+", "-", ".", "#", "{", "}", '"', "\\", ",", "=", "x", "0", "9",
          "NaN", "Inf", "\r", "\0", "ü", "\n", " # {a=\"b\"} 1", " 123", " 1.5"]  # fmt: skip


def _mutate(rnd: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rnd.randint(1, 3)):
        pos = rnd.randrange(len(chars) + 1)
        op = rnd.random()
        if op < 0.4 and pos < len(chars):
            del chars[pos]
        elif op < 0.7 and pos < len(chars):
            chars[pos] = rnd.choice(_NOISE)
        else:
            chars.insert(pos, rnd.choice(_NOISE))
    return "".join(chars)


def _key(value: float) -> str:
    return "NaN" if math.isnan(value) else repr(value)


def _full(text: str, fmt: Format) -> dict[tuple[Labels, int | None], str] | None:
    try:
        families = parse_families(text, fmt, strict=False)
    except ParseError:
        return None
    out: dict[tuple[Labels, int | None], str] = {}
    for fam in families:
        for s in fam.samples:
            labels = tuple((k, v) for k, v in s.labels if v != "")
            out.setdefault((labels, s.timestamp_ms), _key(s.value))
    return out


def _cached(cache: ScrapeCache, names: dict[int, Labels], text: str, fmt: Format) -> dict | None:
    res = cache.scrape(text.encode("utf-8", "surrogateescape"), fmt)
    if res.error is not None:
        return None
    ts = res.timestamps.tolist() if res.timestamps is not None else [NO_TIMESTAMP] * len(res.refs)
    out = {}
    for ref, value, t in zip(res.refs.tolist(), res.values.tolist(), ts, strict=True):
        out.setdefault((names[ref], None if t == NO_TIMESTAMP else t), _key(value))
    return out


@pytest.mark.parametrize("fmt", [Format.TEXT, Format.OPENMETRICS])
def test_fast_path_agrees_with_full_parser(fmt: Format) -> None:
    rnd = random.Random(7)
    om = fmt is Format.OPENMETRICS
    bases = [realistic_body(60, openmetrics=om)] + [random_body(rnd, openmetrics=om)[0] for _ in range(10)]
    agreed = refused = 0
    for i in range(400):
        base = bases[i % len(bases)]
        text = _mutate(rnd, base)
        names: dict[int, Labels] = {}
        by_labels: dict[Labels, int] = {}

        def resolve(
            labels: Labels, names: dict[int, Labels] = names, by_labels: dict[Labels, int] = by_labels
        ) -> int:
            # Like a real resolver after relabeling: empty label values mean absent labels.
            labels = tuple((k, v) for k, v in labels if v != "")
            ref = by_labels.setdefault(labels, len(by_labels))
            names[ref] = labels
            return ref

        cache = ScrapeCache(resolve)
        if i % 2:
            cache.scrape(base.encode(), fmt)  # warm: mutated lines may hit cached series texts
        expected = _full(text, fmt)
        got = _cached(cache, names, text, fmt)
        assert got == expected, text
        agreed += expected is not None
        refused += expected is None
    assert agreed > 50 and refused > 50
