"""Block chunk encoding: up to 120 samples per chunk, transformed and compressed in batches.

Per chunk of ``n`` samples the raw payload is ``16 * n`` bytes:

* timestamps: ``[t0, t1 - t0, dod2, ..., dod(n-1)]`` (delta-of-delta), zigzag-mapped to uint64;
* values: float64 bits XOR'd with the previous sample's bits (first sample verbatim);
* both arrays byte-shuffled (all byte-0s, then all byte-1s, ...), timestamps first,

then compressed with zstd level 3 (no frame checksum or content size). The transforms run on
2-D ``[chunks, 120]`` arrays at once; only the zstd call is per chunk. Decoding is the inverse
(cumulative sums and a cumulative XOR), bit-exact for every float64 including NaN payloads.
"""

from __future__ import annotations

import numpy as np
import zstandard

CHUNK_SAMPLES = 120
_COLS = np.arange(CHUNK_SAMPLES)


class ChunkCodec:
    """Reusable zstd contexts (not thread-safe: one codec per thread or under a lock)."""

    def __init__(self, level: int = 3) -> None:
        self._level = level
        self._c: zstandard.ZstdCompressor | None = None
        self._d: zstandard.ZstdDecompressor | None = None

    @property
    def _cctx(self) -> zstandard.ZstdCompressor:
        """The compression context, made on first use (most codecs only ever decode, or nothing)."""
        if self._c is None:
            self._c = zstandard.ZstdCompressor(
                level=self._level, write_content_size=False, write_checksum=False
            )
        return self._c

    @property
    def _dctx(self) -> zstandard.ZstdDecompressor:
        if self._d is None:
            self._d = zstandard.ZstdDecompressor()
        return self._d

    def encode(self, t: np.ndarray, v: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> list[bytes]:
        """Compressed chunks for the sample runs ``t[starts[i]:starts[i]+counts[i]]`` (1..120 each)."""
        nchunks = len(starts)
        if nchunks == 0:
            return []
        valid = _COLS[None, :] < counts[:, None]
        idx = np.where(valid, starts[:, None] + _COLS[None, :], 0)
        tt = np.where(valid, t[idx], 0)
        bits = np.where(valid, v.view(np.uint64)[idx], np.uint64(0))
        dod = tt.copy()
        dod[:, 1:] = tt[:, 1:] - tt[:, :-1]
        dod[:, 2:] = dod[:, 2:] - dod[:, 1:-1].copy()
        dod[~valid] = 0
        zig = ((dod << 1) ^ (dod >> 63)).view(np.uint64)
        xor = bits.copy()
        xor[:, 1:] ^= bits[:, :-1]
        xor[~valid] = 0
        # [chunks, 120, 8] bytes -> [chunks, 8, 120]: byte shuffle per chunk.
        zb = zig.astype("<u8").view(np.uint8).reshape(nchunks, CHUNK_SAMPLES, 8).transpose(0, 2, 1)
        xb = xor.astype("<u8").view(np.uint8).reshape(nchunks, CHUNK_SAMPLES, 8).transpose(0, 2, 1)
        out = []
        compress = self._cctx.compress
        for i, n in enumerate(counts.tolist()):
            raw = np.concatenate([zb[i, :, :n], xb[i, :, :n]], axis=0).tobytes()
            out.append(compress(raw))
        return out

    def decode(self, payloads: list[bytes | memoryview], counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat timestamps and values of the chunks, concatenated in order."""
        nchunks = len(payloads)
        if nchunks == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        decompress = self._dctx.decompress
        count_list = counts.tolist()
        raws = [decompress(p, max_output_size=16 * n) for p, n in zip(payloads, count_list, strict=True)]
        if any(len(r) != 16 * n for r, n in zip(raws, count_list, strict=True)):
            raise ValueError("corrupt chunk: wrong decoded size")
        full = counts == CHUNK_SAMPLES
        if full.all():
            buf = np.frombuffer(b"".join(raws), dtype=np.uint8).reshape(nchunks, 16, CHUNK_SAMPLES)
        else:
            buf = np.zeros((nchunks, 16, CHUNK_SAMPLES), dtype=np.uint8)
            full_idx = np.flatnonzero(full)
            if len(full_idx):
                joined = b"".join(raws[i] for i in full_idx.tolist())
                buf[full_idx] = np.frombuffer(joined, dtype=np.uint8).reshape(-1, 16, CHUNK_SAMPLES)
            for i in np.flatnonzero(~full).tolist():
                n = count_list[i]
                buf[i, :, :n] = np.frombuffer(raws[i], dtype=np.uint8).reshape(16, n)
        zig = np.ascontiguousarray(buf[:, :8, :].transpose(0, 2, 1)).view("<u8").reshape(nchunks, -1)
        xor = np.ascontiguousarray(buf[:, 8:, :].transpose(0, 2, 1)).view("<u8").reshape(nchunks, -1)
        zig = zig.astype(np.uint64)
        dod = ((zig >> np.uint64(1)) ^ (np.uint64(0) - (zig & np.uint64(1)))).view(np.int64)
        deltas = np.cumsum(dod[:, 1:], axis=1)
        tt = np.empty_like(dod)
        tt[:, 0] = dod[:, 0]
        tt[:, 1:] = dod[:, :1] + np.cumsum(deltas, axis=1)
        bits = np.bitwise_xor.accumulate(xor.astype(np.uint64), axis=1)
        valid = _COLS[None, :] < counts[:, None]
        return tt[valid], bits[valid].view(np.float64)


def split_runs(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chunk runs of per-series sample ranges: (series index, start, count) per chunk."""
    lengths = np.diff(offsets)
    per_series = (lengths + CHUNK_SAMPLES - 1) // CHUNK_SAMPLES
    series = np.repeat(np.arange(len(lengths)), per_series)
    first_chunk = np.repeat(np.cumsum(per_series) - per_series, per_series)
    k = np.arange(len(series)) - first_chunk
    starts = offsets[:-1][series] + k * CHUNK_SAMPLES
    counts = np.minimum(CHUNK_SAMPLES, offsets[1:][series] - starts)
    return series, starts.astype(np.int64), counts.astype(np.int64)
