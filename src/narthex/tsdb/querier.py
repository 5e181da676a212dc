"""Read path: select series by matchers over the head and the blocks overlapping a time range."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from narthex.model.labels import Labels
from narthex.model.matcher import Matcher
from narthex.tsdb.block import Block
from narthex.tsdb.chunks import ChunkCodec
from narthex.tsdb.head import EMPTY, Head, SeriesData, merge_samples
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

    def _parts(self, matchers: list[Matcher]) -> Iterator[SeriesData]:
        with self._head.lock:
            blocks = self._current_blocks()
            ids = select_postings(HeadIndex(self._head), matchers)
            head_data = self._head.read(ids, self.mint, self.maxt) if len(ids) else None
        for block in blocks:
            ids = select_postings(block, matchers)
            if len(ids):
                yield block.read(ids, self.mint, self.maxt, self._codec)
        if head_data is not None:
            yield head_data

    def select(self, matchers: list[Matcher]) -> list[Series]:
        """Series matching all matchers with at least one sample in range, sorted by labels."""
        runs: dict[Labels, list[tuple[np.ndarray, np.ndarray]]] = {}
        for part in self._parts(matchers):
            off = part.offsets.tolist()
            for i, labels in enumerate(part.labels):
                a, b = off[i], off[i + 1]
                if b > a:
                    runs.setdefault(labels, []).append((part.t[a:b], part.v[a:b]))
        out = []
        for labels in sorted(runs):
            pieces = runs[labels]
            if len(pieces) == 1:
                t, v = pieces[0]
            else:
                t, v = merge_samples([p[0] for p in pieces], [p[1] for p in pieces])
            out.append(Series(labels, t, v))
        return out

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
