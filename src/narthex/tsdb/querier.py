"""Read path: select series by matchers over the head and the blocks overlapping a time range."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from narthex.model.labels import Labels
from narthex.model.matcher import Matcher
from narthex.tsdb.block import Block
from narthex.tsdb.chunks import ChunkCodec
from narthex.tsdb.head import EMPTY, Head, SeriesData, concat
from narthex.tsdb.postings import select_postings
from narthex.tsdb.tombstones import Tombstones

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@dataclass(slots=True)
class Series:
    """One series' samples in the queried range: int64 ms timestamps and float64 values."""

    labels: Labels
    timestamps: np.ndarray
    values: np.ndarray


@dataclass(slots=True)
class FlatSelection:
    """Selected series as flat arrays (what the PromQL engine's ``select_flat`` expects).

    Series ``i`` (labels ``labels[i]``, sorted) has samples ``[offsets[i]:offsets[i+1]]`` of ``t``
    and ``v``; every series has at least one sample. ``st`` (start timestamps) is always None.
    """

    labels: list[Labels]
    t: np.ndarray
    v: np.ndarray
    offsets: np.ndarray
    st: None = None


def _nonempty(data: SeriesData) -> SeriesData:
    """``data`` without its series that have no sample (the sample arrays are unchanged)."""
    counts = np.diff(data.offsets)
    has = counts > 0
    if has.all():
        return data
    idx = np.flatnonzero(has)
    offsets = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(counts[idx], out=offsets[1:])
    labels = data.labels
    return SeriesData([labels[i] for i in idx.tolist()], data.t, data.v, offsets)


def _gather(data: SeriesData, order: np.ndarray) -> SeriesData:
    """The series ``order[0], order[1], ...`` of ``data``, in that order."""
    counts = np.diff(data.offsets)[order]
    starts = data.offsets[:-1][order]
    take = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
    offsets = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    labels = data.labels
    return SeriesData([labels[i] for i in order.tolist()], data.t[take], data.v[take], offsets)


def _merge_parts(parts: list[SeriesData]) -> SeriesData:
    """Series of several parts (each without empty series) merged by labels, sorted by labels.

    Samples of a series present in several parts are merged by time; on equal timestamps the
    earlier part wins (as :func:`~narthex.tsdb.head.merge_samples`).
    """
    labels = [lb for p in parts for lb in p.labels]
    uniq = sorted(set(labels))
    rank = {lb: i for i, lb in enumerate(uniq)}
    group = np.fromiter((rank[lb] for lb in labels), dtype=np.int64, count=len(labels))
    whole = SeriesData(
        labels,
        concat([p.t for p in parts], np.int64),
        concat([p.v for p in parts], np.float64),
        _concat_offsets(parts),
    )
    # Pieces grouped by series; within a series they stay in part order.
    order = np.argsort(group, kind="stable")
    merged = _gather(whole, order)
    t, v = merged.t, merged.v
    sg = np.repeat(group[order], np.diff(merged.offsets))
    same = sg[1:] == sg[:-1]
    bad = same & (t[1:] <= t[:-1])
    if bad.any():
        # Sort (stably) and de-duplicate the samples of the series whose pieces overlap.
        sub = np.flatnonzero(np.isin(sg, np.unique(sg[1:][bad])))
        perm = np.arange(len(t))
        perm[sub] = sub[np.lexsort((t[sub], sg[sub]))]
        t, v = t[perm], v[perm]
        keep = np.r_[True, ~(same & (t[1:] == t[:-1]))]
        t, v, sg = t[keep], v[keep], sg[keep]
    offsets = np.zeros(len(uniq) + 1, dtype=np.int64)
    np.cumsum(np.bincount(sg, minlength=len(uniq)), out=offsets[1:])
    return SeriesData(uniq, t, v, offsets)


def _concat_offsets(parts: list[SeriesData]) -> np.ndarray:
    """Offsets of the concatenation of the parts' series."""
    out = [np.zeros(1, dtype=np.int64)]
    base = 0
    for p in parts:
        out.append(p.offsets[1:] + base)
        base += len(p.t)
    return np.concatenate(out)


class HeadIndex:
    """The head's label index seen through the :class:`IndexReader` protocol (call under lock)."""

    def __init__(self, head: Head) -> None:
        self._head = head

    def all_postings(self) -> np.ndarray:
        return self._head.alive_refs()

    def postings(self, name: str, value: str) -> np.ndarray:
        plist = self._head.index.get(name, {}).get(value)
        return plist.array().copy() if plist is not None else EMPTY

    def label_values_of(self, name: str) -> list[str]:
        return list(self._head.index.get(name, {}))

    @property
    def tombstones(self) -> Tombstones:
        return self._head.tombstones


class Querier:
    """Reads the data in ``[mint, maxt]`` (inclusive, ms).

    Each call takes the current block list and reads the head under the head lock; since a head
    cut publishes its block before truncating the head, every call sees each sample at least once
    (duplicates from the hand-over are merged away).
    """

    def __init__(self, head: Head, blocks: Callable[[], list[Block]], mint: int, maxt: int) -> None:
        self.mint = mint
        self.maxt = maxt
        self._head = head
        self._blocks_fn = blocks
        self._codec = ChunkCodec()

    def _current_blocks(self) -> list[Block]:
        return [b for b in self._blocks_fn() if b.meta.min_time <= self.maxt and b.meta.max_time > self.mint]

    def _parts(self, matchers: list[Matcher]) -> Iterator[tuple[SeriesData, bool]]:
        """Each block's data, then the head's, with whether the part's series are in label order.

        Block series are numbered in label order and postings are sorted; the head's are not.
        """
        with self._head.lock:
            blocks = self._current_blocks()
            ids = select_postings(HeadIndex(self._head), matchers)
            head_data = self._head.read(ids, self.mint, self.maxt) if len(ids) else None
        for block in blocks:
            ids = select_postings(block, matchers)
            if len(ids):
                yield block.read(ids, self.mint, self.maxt, self._codec), True
        if head_data is not None:
            yield head_data, False

    def select(self, matchers: list[Matcher]) -> list[Series]:
        """Series matching all matchers with at least one sample in range, sorted by labels."""
        flat = self.select_flat(matchers)
        off = flat.offsets.tolist()
        return [
            Series(labels, flat.t[off[i] : off[i + 1]], flat.v[off[i] : off[i + 1]])
            for i, labels in enumerate(flat.labels)
        ]

    def select_flat(self, matchers: list[Matcher]) -> FlatSelection:
        """The selected series as flat arrays, without per-series work when one part has data.

        Blocks and head are merged per series by timestamp (equal timestamps: the earlier part).
        """
        parts = []
        for part, sorted_ in self._parts(matchers):
            part = _nonempty(part)
            if len(part):
                parts.append((part, sorted_))
        if not parts:
            return FlatSelection([], np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(1, dtype=np.int64))
        if len(parts) == 1:
            data, sorted_ = parts[0]
            if not sorted_:
                labels = data.labels
                order = sorted(range(len(labels)), key=labels.__getitem__)
                data = _gather(data, np.asarray(order, dtype=np.int64))
        else:
            data = _merge_parts([p for p, _ in parts])
        return FlatSelection(data.labels, data.t, data.v, data.offsets)

    def _dead(self, ix: HeadIndex | Block, ids: np.ndarray | None = None) -> np.ndarray:
        """Series of ``ix`` (among ``ids``, default all) with tombstones and no sample left in range.

        For the head, call under the head lock.
        """
        stones = ix.tombstones
        if not stones:
            return EMPTY
        cand = np.fromiter(sorted(r for r, _ in stones.items()), dtype=np.int64)
        if ids is not None:
            cand = np.intersect1d(cand, ids, assume_unique=True)
        else:
            cand = np.intersect1d(cand, ix.all_postings(), assume_unique=True)
        if len(cand) == 0:
            return EMPTY
        if isinstance(ix, Block):
            data = ix.read(cand, self.mint, self.maxt, self._codec)
        else:
            data = self._head.read(cand, self.mint, self.maxt)
        return cand[np.diff(data.offsets) == 0]

    def _live_ids(self, ix: HeadIndex | Block, matchers: list[Matcher]) -> np.ndarray:
        ids = select_postings(ix, matchers)
        dead = self._dead(ix, ids) if len(ids) else EMPTY
        return np.setdiff1d(ids, dead, assume_unique=True) if len(dead) else ids

    @staticmethod
    def _live_values(ix: HeadIndex | Block, name: str, dead: np.ndarray) -> list[str]:
        """Values of ``name`` (all of them when ``dead`` is empty) held by a series not in ``dead``."""
        values = ix.label_values_of(name)
        if not len(dead):
            return values
        return [v for v in values if len(np.setdiff1d(ix.postings(name, v), dead, assume_unique=True))]

    def series_labels(self, matchers: list[Matcher]) -> list[Labels]:
        """Sorted label sets of the series matching ``matchers`` with data in range (the series API).

        As upstream's metadata-only select, a series counts when one of its chunks (head pieces)
        overlaps the range, and no sample is read; series whose samples in range are all deleted
        do not count.
        """
        found: set[Labels] = set()
        with self._head.lock:
            blocks = self._current_blocks()
            ids = self._live_ids(HeadIndex(self._head), matchers)
            ids = ids[self._head.overlapping(ids, self.mint, self.maxt)]
            found.update(self._head.labels_of(r) for r in ids.tolist())
        for block in blocks:
            ids = self._live_ids(block, matchers)
            found.update(block.series_labels(ids[block.overlapping(ids, self.mint, self.maxt)]))
        return sorted(found)

    def _selected_labels(self, matchers: list[Matcher]) -> Iterator[Labels]:
        with self._head.lock:
            blocks = self._current_blocks()
            ids = self._live_ids(HeadIndex(self._head), matchers)
            labels = [self._head.labels_of(r) for r in ids.tolist()]
        yield from labels
        for block in blocks:
            yield from block.series_labels(self._live_ids(block, matchers))

    def label_names(self, matchers: list[Matcher] | None = None) -> list[str]:
        """Sorted label names (of the series matching ``matchers`` when given).

        Series whose samples in range are all deleted do not count.
        """
        names: set[str] = set()
        with self._head.lock:
            blocks = self._current_blocks()
            hix = HeadIndex(self._head)
            if not matchers:
                dead = self._dead(hix)
                names.update(n for n in self._head.index if not len(dead) or self._live_values(hix, n, dead))
            else:
                ids = self._live_ids(hix, matchers)
                for r in ids.tolist():
                    names.update(n for n, _ in self._head.labels_of(r))
        for block in blocks:
            if not matchers:
                dead = self._dead(block)
                live = (n for n in block.label_names() if not len(dead) or self._live_values(block, n, dead))
                names.update(live)
                continue
            ids = self._live_ids(block, matchers)
            if len(ids):
                name_ids = np.unique(block.label_pairs(ids)[:, 0])
                names.update(block.symbols[i] for i in name_ids.tolist())
        return sorted(names)

    def label_values(self, name: str, matchers: list[Matcher] | None = None) -> list[str]:
        """Sorted values of a label (restricted to series matching ``matchers`` when given).

        Series whose samples in range are all deleted do not count.
        """
        values: set[str] = set()
        if not matchers:
            with self._head.lock:
                blocks = self._current_blocks()
                hix = HeadIndex(self._head)
                values.update(self._live_values(hix, name, self._dead(hix)))
            for block in blocks:
                values.update(self._live_values(block, name, self._dead(block)))
            return sorted(values)
        for labels in self._selected_labels(matchers):
            for n, v in labels:
                if n == name:
                    values.add(v)
        return sorted(values)

    def close(self) -> None:
        """Release the querier (it holds no resources beyond references)."""
