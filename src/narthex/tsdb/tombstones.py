"""Tombstones: per-series deleted time intervals, masked out on read and dropped by compaction.

A :class:`Tombstones` maps a series id (head ref or block series number) to sorted, disjoint,
non-adjacent inclusive ``(mint, maxt)`` intervals. Instances are treated as immutable once
published: :meth:`Tombstones.with_added` returns a new one, so readers never see a half-updated
set.

Block file ``<block>/tombstones`` (own format, little-endian): magic ``NRTXTMB1``, ``count u64``,
then ``refs i64[count]``, ``mint i64[count]``, ``maxt i64[count]`` (one row per interval), then
``crc32 u32`` (zlib) of everything before it. It is written to ``tombstones.tmp``, fsync'ed and
renamed over the old file.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

MAGIC = b"NRTXTMB1"
FILENAME = "tombstones"
_COUNT = struct.Struct("<Q")
_CRC = struct.Struct("<I")

Intervals = list[tuple[int, int]]


def add_interval(intervals: Intervals, mint: int, maxt: int) -> Intervals:
    """A new interval list with ``[mint, maxt]`` merged in (overlapping or adjacent ones fused)."""
    out: Intervals = []
    placed = False
    for a, b in intervals:
        if b < mint - 1:
            out.append((a, b))
        elif a > maxt + 1:
            if not placed:
                out.append((mint, maxt))
                placed = True
            out.append((a, b))
        else:
            mint, maxt = min(a, mint), max(b, maxt)
    if not placed:
        out.append((mint, maxt))
    return out


def covers(intervals: Intervals, mint: int, maxt: int) -> bool:
    """Whether the intervals cover all of ``[mint, maxt]``."""
    return any(a <= mint and b >= maxt for a, b in intervals)


class Tombstones:
    """Deleted intervals per series id (immutable once shared)."""

    __slots__ = ("_by_ref",)

    def __init__(self, by_ref: dict[int, Intervals] | None = None) -> None:
        self._by_ref: dict[int, Intervals] = by_ref or {}

    def __len__(self) -> int:
        return len(self._by_ref)

    def __bool__(self) -> bool:
        return bool(self._by_ref)

    def get(self, ref: int) -> Intervals:
        return self._by_ref.get(ref, [])

    def items(self) -> list[tuple[int, Intervals]]:
        return list(self._by_ref.items())

    def num_intervals(self) -> int:
        return sum(len(iv) for iv in self._by_ref.values())

    def with_added(self, refs: np.ndarray, mint: np.ndarray | int, maxt: np.ndarray | int) -> Tombstones:
        """A copy with ``[mint, maxt]`` (scalars or per-ref arrays) added for each ref."""
        by_ref = dict(self._by_ref)
        n = len(refs)
        lo = np.broadcast_to(np.asarray(mint, dtype=np.int64), (n,)).tolist()
        hi = np.broadcast_to(np.asarray(maxt, dtype=np.int64), (n,)).tolist()
        for r, a, b in zip(np.asarray(refs, dtype=np.int64).tolist(), lo, hi, strict=True):
            if a <= b:
                by_ref[r] = add_interval(by_ref.get(r, []), a, b)
        return Tombstones(by_ref)

    def filtered(self, keep_ref: np.ndarray | None = None, min_maxt: int | None = None) -> Tombstones:
        """A copy keeping only refs in ``keep_ref`` and intervals ending at or after ``min_maxt``."""
        keep = None if keep_ref is None else set(np.asarray(keep_ref).tolist())
        by_ref: dict[int, Intervals] = {}
        for r, ivs in self._by_ref.items():
            if keep is not None and r not in keep:
                continue
            if min_maxt is not None:
                ivs = [(a, b) for a, b in ivs if b >= min_maxt]
            if ivs:
                by_ref[r] = ivs
        return Tombstones(by_ref)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All intervals as ``(refs, mint, maxt)`` int64 arrays, sorted by ref then time."""
        rows = [(r, a, b) for r in sorted(self._by_ref) for a, b in self._by_ref[r]]
        if not rows:
            e = np.zeros(0, dtype=np.int64)
            return e, e.copy(), e.copy()
        arr = np.asarray(rows, dtype=np.int64)
        return arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy()

    @classmethod
    def from_arrays(cls, refs: np.ndarray, mint: np.ndarray, maxt: np.ndarray) -> Tombstones:
        return cls().with_added(refs, mint, maxt)

    def keep_mask(self, ids: np.ndarray, t: np.ndarray, offsets: np.ndarray) -> np.ndarray | None:
        """Boolean mask of the samples to keep (``None``: keep all) of series data read for ``ids``.

        Series ``i`` (id ``ids[i]``) owns ``t[offsets[i]:offsets[i + 1]]``, sorted by time.
        """
        if not self._by_ref or len(t) == 0:
            return None
        mask: np.ndarray | None = None
        off = offsets.tolist()
        for i, r in enumerate(np.asarray(ids).tolist()):
            ivs = self._by_ref.get(r)
            if not ivs or off[i] == off[i + 1]:
                continue
            seg = t[off[i] : off[i + 1]]
            for a, b in ivs:
                lo = int(np.searchsorted(seg, a, "left"))
                hi = int(np.searchsorted(seg, b, "right"))
                if hi > lo:
                    if mask is None:
                        mask = np.ones(len(t), dtype=bool)
                    mask[off[i] + lo : off[i] + hi] = False
        return mask


def read_file(block_dir: Path) -> Tombstones:
    """The tombstones of a block directory (empty when it has no ``tombstones`` file)."""
    path = block_dir / FILENAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Tombstones()
    head = len(MAGIC) + _COUNT.size
    if len(data) < head + _CRC.size or data[: len(MAGIC)] != MAGIC:
        raise ValueError(f"{path}: not a narthex tombstones file")
    (count,) = _COUNT.unpack_from(data, len(MAGIC))
    if len(data) != head + 24 * count + _CRC.size:
        raise ValueError(f"{path}: wrong length")
    (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(data[: -_CRC.size]) != crc:
        raise ValueError(f"{path}: checksum mismatch")
    cols = np.frombuffer(data, dtype="<i8", count=3 * count, offset=head).astype(np.int64).reshape(3, count)
    return Tombstones.from_arrays(cols[0], cols[1], cols[2])


def write_file(block_dir: Path, stones: Tombstones) -> None:
    """Atomically replace the block's ``tombstones`` file (removed when ``stones`` is empty)."""
    path = block_dir / FILENAME
    if not stones:
        path.unlink(missing_ok=True)
        return
    refs, mint, maxt = stones.arrays()
    body = b"".join((MAGIC, _COUNT.pack(len(refs)), *(a.astype("<i8").tobytes() for a in (refs, mint, maxt))))
    tmp = block_dir / (FILENAME + ".tmp")
    with open(tmp, "wb") as f:
        f.write(body + _CRC.pack(zlib.crc32(body)))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(block_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
