"""WAL record payloads: series definitions and sample batches (one type byte + body).

Sample batches are stored as three raw little-endian numpy arrays (refs int64, timestamps int64,
value bits float64), never as per-sample objects, zstd-compressed (level 1) as one frame: the
type byte then has :data:`COMPRESSED` set. Type bytes leave room for other sample kinds.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass

import numpy as np
import zstandard

from narthex.model.labels import Labels

REC_SERIES = 1
REC_SAMPLES = 2
REC_OOO_SAMPLES = 3
# 4.. reserved for native histogram samples.
COMPRESSED = 0x80
KNOWN_TYPES = frozenset({REC_SERIES, REC_SAMPLES, REC_OOO_SAMPLES, REC_SAMPLES | COMPRESSED})
KNOWN_TYPES = KNOWN_TYPES | {REC_OOO_SAMPLES | COMPRESSED}
_local = threading.local()


def _zstd() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    pair = getattr(_local, "zstd", None)
    if pair is None:
        pair = (zstandard.ZstdCompressor(level=1), zstandard.ZstdDecompressor())
        _local.zstd = pair
    return pair


_U32 = struct.Struct("<I")
_SERIES_HEAD = struct.Struct("<qH")
_STR_LEN = struct.Struct("<I")


@dataclass(slots=True)
class SampleBatch:
    """Committed samples of one record: parallel arrays."""

    refs: np.ndarray
    t: np.ndarray
    v: np.ndarray


def encode_series(entries: list[tuple[int, Labels]]) -> bytes:
    """A series record: ``count u32`` then per series ``ref i64, pairs u16, (len u32 + utf-8)*``."""
    parts = [bytes([REC_SERIES]), _U32.pack(len(entries))]
    for ref, labels in entries:
        parts.append(_SERIES_HEAD.pack(ref, len(labels)))
        for name, value in labels:
            for text in (name, value):
                raw = text.encode("utf-8")
                parts.append(_STR_LEN.pack(len(raw)))
                parts.append(raw)
    return b"".join(parts)


def decode_series(body: memoryview | bytes) -> list[tuple[int, Labels]]:
    buf = bytes(body)
    (count,) = _U32.unpack_from(buf, 1)
    pos = 5
    out: list[tuple[int, Labels]] = []
    for _ in range(count):
        ref, npairs = _SERIES_HEAD.unpack_from(buf, pos)
        pos += _SERIES_HEAD.size
        pairs = []
        for _ in range(npairs):
            (ln,) = _STR_LEN.unpack_from(buf, pos)
            name = buf[pos + 4 : pos + 4 + ln].decode("utf-8")
            pos += 4 + ln
            (lv,) = _STR_LEN.unpack_from(buf, pos)
            value = buf[pos + 4 : pos + 4 + lv].decode("utf-8")
            pos += 4 + lv
            pairs.append((name, value))
        out.append((ref, tuple(pairs)))
    if pos != len(buf):
        raise ValueError("trailing bytes in series record")
    return out


def record_type(body: memoryview | bytes) -> int:
    """The record type without the compression flag."""
    return body[0] & ~COMPRESSED


def encode_samples(refs: np.ndarray, t: np.ndarray, v: np.ndarray, kind: int = REC_SAMPLES) -> bytes:
    """A sample-batch record: ``count u32`` then the three arrays back to back, compressed."""
    n = len(refs)
    raw = b"".join(
        (
            _U32.pack(n),
            np.ascontiguousarray(refs, dtype="<i8").tobytes(),
            np.ascontiguousarray(t, dtype="<i8").tobytes(),
            np.ascontiguousarray(v, dtype="<f8").view("<u8").tobytes(),
        )
    )
    return bytes([kind | COMPRESSED]) + _zstd()[0].compress(raw)


def decode_samples(body: memoryview | bytes) -> SampleBatch:
    raw = body[1:]
    if body[0] & COMPRESSED:
        raw = _zstd()[1].decompress(raw)
    (n,) = _U32.unpack_from(raw, 0)
    if len(raw) != 4 + 24 * n:
        raise ValueError("sample record has the wrong length")
    refs = np.frombuffer(raw, dtype="<i8", count=n, offset=4).astype(np.int64)
    t = np.frombuffer(raw, dtype="<i8", count=n, offset=4 + 8 * n).astype(np.int64)
    v = np.frombuffer(raw, dtype="<u8", count=n, offset=4 + 16 * n).astype(np.uint64).view(np.float64)
    return SampleBatch(refs, t, v)
