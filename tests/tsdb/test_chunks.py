"""Chunk codec: bit-exact round trips and compression on realistic data."""

from __future__ import annotations

import numpy as np

from narthex.tsdb.chunks import CHUNK_SAMPLES, ChunkCodec, split_runs


def _roundtrip(t: np.ndarray, v: np.ndarray, offsets: np.ndarray) -> int:
    codec = ChunkCodec()
    _series, starts, counts = split_runs(offsets)
    payloads = codec.encode(t, v, starts, counts)
    t2, v2 = codec.decode(payloads, counts)
    np.testing.assert_array_equal(t2, t)
    np.testing.assert_array_equal(v2.view(np.uint64), v.view(np.uint64))
    return sum(len(p) for p in payloads)


def test_split_runs():
    series, starts, counts = split_runs(np.array([0, 1, 1, 250, 370]))
    assert series.tolist() == [0, 2, 2, 2, 3]
    assert starts.tolist() == [0, 1, 121, 241, 250]
    assert counts.tolist() == [1, 120, 120, 9, 120]


def test_bit_exact_including_nan_payloads_and_extremes():
    rng = np.random.default_rng(7)
    n = 1000
    t = np.sort(rng.integers(-(2**62), 2**62, n))
    bits = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, n, dtype=np.uint64)
    specials = [
        0x7FF0000000000002,
        0x7FF8000000000001,
        0xFFF8000000000000,
        0x8000000000000000,
        0x7FF0000000000000,
    ]
    bits[: len(specials)] = specials
    _roundtrip(t, bits.view(np.float64), np.array([0, 1, 119, 120, 121, 500, n]))


def test_compression_on_realistic_series():
    rng = np.random.default_rng(1)
    n_series, n = 200, 2 * CHUNK_SAMPLES
    base = 1_700_000_000_000 + np.arange(n) * 15_000
    t = np.concatenate([base + rng.integers(-5, 6, n) for _ in range(n_series)])
    gauge = np.concatenate(
        [50 + 10 * np.sin(np.arange(n) / 50) + rng.normal(0, 0.05, n) for _ in range(n_series)]
    )
    counter = np.concatenate([np.cumsum(rng.poisson(40, n)).astype(float) for _ in range(n_series)])
    offsets = np.arange(n_series + 1) * n
    assert _roundtrip(t, gauge, offsets) / len(t) < 8.5
    assert _roundtrip(t, counter, offsets) / len(t) < 3.5
    regular = np.tile(base, n_series)
    assert _roundtrip(regular, np.ones(len(t)), offsets) / len(t) < 0.6
