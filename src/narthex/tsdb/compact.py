"""Leveled compaction planning (as Prometheus's ``LeveledCompactor``) and block merging."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from narthex.model.labels import Labels
from narthex.tsdb.block import Block, BlockMeta, BlockWriter
from narthex.tsdb.chunks import ChunkCodec
from narthex.tsdb.head import INT64_MAX, INT64_MIN, SeriesData
from narthex.tsdb.ulid import new_ulid


def _split_by_range(metas: list[BlockMeta], width: int) -> list[list[BlockMeta]]:
    """Group consecutive blocks that fall within the same aligned window of ``width``."""
    groups: list[list[BlockMeta]] = []
    i = 0
    while i < len(metas):
        start = (metas[i].min_time // width) * width
        if metas[i].max_time > start + width:
            i += 1
            continue
        group = []
        while i < len(metas) and metas[i].max_time <= start + width:
            group.append(metas[i])
            i += 1
        if group:
            groups.append(group)
    return groups


def _overlapping(metas: list[BlockMeta]) -> list[BlockMeta]:
    """The first run of blocks whose time ranges overlap (input sorted by min time)."""
    group: list[BlockMeta] = []
    global_max = INT64_MIN
    for m in metas:
        if group and m.min_time < global_max:
            group.append(m)
        elif len(group) > 1:
            return group
        else:
            group = [m]
        global_max = max(global_max, m.max_time)
    return group if len(group) > 1 else []


def plan(metas: list[BlockMeta], ranges: list[int]) -> list[BlockMeta]:
    """Blocks to compact next into one, or ``[]``.

    Overlapping blocks first; otherwise, ignoring the newest block, the first aligned group at
    the next level up that spans its whole range or lies before the newest remaining block;
    otherwise a block with many tombstones, rewritten alone.
    """
    metas = sorted(metas, key=lambda m: m.min_time)
    over = _overlapping(metas)
    if over:
        return over
    metas = metas[:-1]
    if not metas:
        return []
    if len(ranges) >= 2:
        high = metas[-1].min_time
        for width in ranges[1:]:
            for group in _split_by_range(metas, width):
                mint, maxt = group[0].min_time, group[-1].max_time
                if (maxt - mint == width or maxt <= high) and len(group) > 1:
                    return group
    return _with_tombstones(metas, ranges)


def _with_tombstones(metas: list[BlockMeta], ranges: list[int]) -> list[BlockMeta]:
    """A block worth rewriting alone for its tombstones, newest first, as upstream.

    Blocks at least ``ranges[len // 2]`` wide qualify with tombstones for more than 5% of their
    series; smaller ones only when there are at least as many tombstones as series.
    """
    for m in reversed(metas):
        if not ranges or m.max_time - m.min_time < ranges[len(ranges) // 2]:
            if m.num_tombstones and m.num_tombstones >= m.num_series:
                return [m]
            break
        if m.num_tombstones / (m.num_series + 1) > 0.05:
            return [m]
    return []


def merge_series(parts: list[SeriesData]) -> SeriesData:
    """Merge series data from several sources by labels; equal timestamps keep the first source."""
    all_labels = sorted({lb for p in parts for lb in p.labels})
    gid = {lb: i for i, lb in enumerate(all_labels)}
    keys, ts, vs, src = [], [], [], []
    for k, p in enumerate(parts):
        ids = np.fromiter((gid[lb] for lb in p.labels), dtype=np.int64, count=len(p.labels))
        keys.append(np.repeat(ids, np.diff(p.offsets)))
        ts.append(p.t)
        vs.append(p.v)
        src.append(np.full(len(p.t), k, dtype=np.int64))
    key = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
    t = np.concatenate(ts) if ts else np.zeros(0, dtype=np.int64)
    v = np.concatenate(vs) if vs else np.zeros(0, dtype=np.float64)
    order = np.lexsort((np.concatenate(src) if src else key, t, key))
    key, t, v = key[order], t[order], v[order]
    if len(t) > 1:
        keep = np.r_[True, (key[1:] != key[:-1]) | (t[1:] != t[:-1])]
        key, t, v = key[keep], t[keep], v[keep]
    counts = np.bincount(key, minlength=len(all_labels))
    present = np.flatnonzero(counts)
    offsets = np.zeros(len(present) + 1, dtype=np.int64)
    np.cumsum(counts[present], out=offsets[1:])
    labels: list[Labels] = [all_labels[i] for i in present.tolist()]
    return SeriesData(labels, t, v, offsets)


def compacted_meta(metas: list[BlockMeta]) -> BlockMeta:
    """The meta of the block that replaces ``metas``."""
    sources = sorted({s for m in metas for s in m.sources})
    return BlockMeta(
        ulid=new_ulid(),
        min_time=min(m.min_time for m in metas),
        max_time=max(m.max_time for m in metas),
        level=max(m.level for m in metas) + 1,
        sources=sources,
        parents=[{"ulid": m.ulid, "minTime": m.min_time, "maxTime": m.max_time} for m in metas],
    )


def write_compacted(
    root: Path, blocks: list[Block], meta: BlockMeta, codec: ChunkCodec, batch: int = 10_000
) -> Path:
    """Merge the blocks into a new block, ``batch`` series at a time to bound memory."""
    lookups = []
    for b in blocks:
        ids = b.all_postings()
        lookups.append(dict(zip(b.series_labels(ids, cache=False), ids.tolist(), strict=True)))
    all_labels = sorted(set().union(*lookups))
    writer = BlockWriter(root, meta.ulid, codec)
    try:
        for i in range(0, len(all_labels), batch):
            wanted = all_labels[i : i + batch]
            parts = []
            for block, lookup in zip(blocks, lookups, strict=True):
                ids = np.array(sorted(lookup[lb] for lb in wanted if lb in lookup), dtype=np.int64)
                if len(ids):
                    parts.append(block.read(ids, INT64_MIN, INT64_MAX, codec, use_cache=False))
            writer.add(merge_series(parts))
        return writer.finish(meta)
    except BaseException:
        writer.abort()
        raise
