"""WAL record payloads: series definitions and sample batches (one type byte + body).

Sample batches are stored as three raw little-endian numpy arrays (refs int64, timestamps int64,
value bits float64), never as per-sample objects, zstd-compressed (level -1, a fast level) as one
frame: the type byte then has :data:`COMPRESSED` set. Series records are columnar and compressed
the same way; the uncompressed per-pair series layout of earlier versions is still read. Type
bytes leave room for other sample kinds.
"""

from __future__ import annotations

import itertools
import struct
import threading
from dataclasses import dataclass

import numpy as np
import zstandard

from narthex.model.labels import Labels

REC_SERIES = 1
REC_SAMPLES = 2
REC_OOO_SAMPLES = 3
# 4..15 reserved for native histogram samples.
REC_TOMBSTONES = 16
COMPRESSED = 0x80
KNOWN_TYPES = frozenset({REC_SERIES, REC_SAMPLES, REC_OOO_SAMPLES, REC_SAMPLES | COMPRESSED})
KNOWN_TYPES = KNOWN_TYPES | {REC_OOO_SAMPLES | COMPRESSED, REC_SERIES | COMPRESSED}
KNOWN_TYPES = KNOWN_TYPES | {REC_TOMBSTONES | COMPRESSED}
_local = threading.local()


def _zstd() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    pair = getattr(_local, "zstd", None)
    if pair is None:
        pair = (zstandard.ZstdCompressor(level=-1), zstandard.ZstdDecompressor())
        _local.zstd = pair
    return pair


_U32 = struct.Struct("<I")
_SERIES_HEAD = struct.Struct("<qH")
_STR_LEN = struct.Struct("<I")
_HEADER = struct.Struct("<III")


@dataclass(slots=True)
class TombstoneBatch:
    """Deleted intervals of one record: ``[mint[i], maxt[i]]`` of series ``refs[i]``."""

    refs: np.ndarray
    mint: np.ndarray
    maxt: np.ndarray


@dataclass(slots=True)
class SampleBatch:
    """Committed samples of one record: parallel arrays."""

    refs: np.ndarray
    t: np.ndarray
    v: np.ndarray


def encode_series(entries: list[tuple[int, Labels]]) -> bytes:
    """A compressed series record (columnar, with a record-local symbol table).

    Body after the type byte, one zstd frame: ``count u32, nsym u32, npairs_total u32``, then
    ``refs i64[count]``, ``npairs u16[count]``, ``pairs u32[2 * npairs_total]`` (name and value
    symbol ids), ``symlen u32[nsym]`` and the UTF-8 symbols back to back. Python work is a
    C-level dict lookup per label pair; everything else is array operations.
    """
    all_pairs = list(itertools.chain.from_iterable(labels for _ref, labels in entries))
    pair_id = {pair: i for i, pair in enumerate(dict.fromkeys(all_pairs))}
    ids: dict[str, int] = {}
    pair_syms = np.array(
        [(ids.setdefault(name, len(ids)), ids.setdefault(value, len(ids))) for name, value in pair_id],
        dtype="<u4",
    ).reshape(-1, 2)
    flat = pair_syms[np.fromiter(map(pair_id.__getitem__, all_pairs), dtype=np.int64, count=len(all_pairs))]
    symbols = [text.encode("utf-8") for text in ids]
    refs = np.fromiter((ref for ref, _labels in entries), dtype="<i8", count=len(entries))
    npairs = np.fromiter(map(len, (labels for _ref, labels in entries)), dtype="<u2", count=len(entries))
    raw = b"".join(
        (
            _HEADER.pack(len(entries), len(symbols), len(all_pairs)),
            refs.tobytes(),
            npairs.tobytes(),
            flat.tobytes(),
            np.fromiter(map(len, symbols), dtype="<u4", count=len(symbols)).tobytes(),
            *symbols,
        )
    )
    return bytes([REC_SERIES | COMPRESSED]) + _zstd()[0].compress(raw)


def decode_series(body: memoryview | bytes) -> list[tuple[int, Labels]]:
    """Series of a record: the compressed columnar layout or the original per-pair one."""
    if body[0] & COMPRESSED:
        cols = decode_series_columns(body)
        return list(zip(cols.refs, cols.labels, strict=True))
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


@dataclass(slots=True)
class SeriesColumns:
    """Series of a record: ``labels[i]`` is made of ``pairs[pair_idx[offsets[i]:offsets[i + 1]]]``."""

    refs: list[int]
    labels: list[Labels]
    pairs: list[tuple[str, str]]
    pair_idx: np.ndarray
    offsets: np.ndarray


def decode_series_columns(
    body: memoryview | bytes, intern: dict[tuple[str, str], tuple[str, str]] | None = None
) -> SeriesColumns:
    """Decode a series record; label pairs are looked up in (and added to) ``intern`` once each."""
    intern = {} if intern is None else intern
    if not body[0] & COMPRESSED:
        entries = decode_series(body)
        keys = [pair for _ref, labels in entries for pair in labels]
        ids = {pair: i for i, pair in enumerate(dict.fromkeys(keys))}
        pairs = [intern.setdefault(pair, pair) for pair in ids]
        pair_idx = np.fromiter(map(ids.__getitem__, keys), dtype=np.int64, count=len(keys))
        counts = np.fromiter((len(labels) for _ref, labels in entries), dtype=np.int64, count=len(entries))
        offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
        by_pos = [pairs[i] for i in pair_idx.tolist()]
        bounds = offsets.tolist()
        labels = [tuple(by_pos[bounds[i] : bounds[i + 1]]) for i in range(len(entries))]
        return SeriesColumns([ref for ref, _labels in entries], labels, pairs, pair_idx, offsets)
    raw = _zstd()[1].decompress(body[1:])
    count, nsym, total = _HEADER.unpack_from(raw, 0)
    pos = _HEADER.size
    refs = np.frombuffer(raw, dtype="<i8", count=count, offset=pos).tolist()
    pos += 8 * count
    npairs = np.frombuffer(raw, dtype="<u2", count=count, offset=pos)
    pos += 2 * count
    flat = np.frombuffer(raw, dtype="<u4", count=2 * total, offset=pos).astype(np.int64)
    pos += 8 * total
    lens = np.frombuffer(raw, dtype="<u4", count=nsym, offset=pos).astype(np.int64)
    pos += 4 * nsym
    ends = (pos + np.cumsum(lens)).tolist()
    if int(npairs.sum(dtype=np.int64)) != total or (ends[-1] if ends else pos) != len(raw):
        raise ValueError("series record has the wrong length")
    if total and int(flat.max()) >= nsym:
        raise ValueError("series record refers to an unknown symbol")
    starts = [pos, *ends[:-1]][:nsym]
    symbols = [raw[a:b].decode("utf-8") for a, b in zip(starts, ends, strict=True)]
    width = max(nsym, 1)
    uniq, pair_idx = np.unique(flat[0::2] * width + flat[1::2], return_inverse=True)
    pairs = [
        intern.setdefault(p, p) for p in ((symbols[k // width], symbols[k % width]) for k in uniq.tolist())
    ]
    by_pos = [pairs[i] for i in pair_idx.tolist()]
    offsets = np.r_[0, np.cumsum(npairs, dtype=np.int64)].astype(np.int64)
    bounds = offsets.tolist()
    labels = [tuple(by_pos[bounds[i] : bounds[i + 1]]) for i in range(count)]
    return SeriesColumns(refs, labels, pairs, pair_idx.astype(np.int64), offsets)


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


def encode_tombstones(refs: np.ndarray, mint: np.ndarray, maxt: np.ndarray) -> bytes:
    """A tombstone record: ``count u32`` then refs, mint and maxt as int64 arrays, compressed."""
    raw = b"".join(
        (
            _U32.pack(len(refs)),
            *(np.ascontiguousarray(a, dtype="<i8").tobytes() for a in (refs, mint, maxt)),
        )
    )
    return bytes([REC_TOMBSTONES | COMPRESSED]) + _zstd()[0].compress(raw)


def decode_tombstones(body: memoryview | bytes) -> TombstoneBatch:
    raw = _zstd()[1].decompress(body[1:])
    (n,) = _U32.unpack_from(raw, 0)
    if len(raw) != 4 + 24 * n:
        raise ValueError("tombstone record has the wrong length")
    cols = np.frombuffer(raw, dtype="<i8", count=3 * n, offset=4).astype(np.int64).reshape(3, n)
    return TombstoneBatch(cols[0], cols[1], cols[2])
