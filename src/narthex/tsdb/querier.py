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

    def _selected_labels(self, matchers: list[Matcher]) -> Iterator[Labels]:
        with self._head.lock:
            blocks = self._current_blocks()
            ids = select_postings(HeadIndex(self._head), matchers)
            labels = [self._head.labels_of(r) for r in ids.tolist()]
        yield from labels
        for block in blocks:
            ids = select_postings(block, matchers)
            yield from block.series_labels(ids)

    def label_names(self, matchers: list[Matcher] | None = None) -> list[str]:
        """Sorted label names (of the series matching ``matchers`` when given)."""
        names: set[str] = set()
        with self._head.lock:
            blocks = self._current_blocks()
            if not matchers:
                names.update(self._head.index)
            else:
                ids = select_postings(HeadIndex(self._head), matchers)
                for r in ids.tolist():
                    names.update(n for n, _ in self._head.labels_of(r))
        for block in blocks:
            if not matchers:
                names.update(block.label_names())
                continue
            ids = select_postings(block, matchers)
            if len(ids):
                name_ids = np.unique(block.label_pairs(ids)[:, 0])
                names.update(block.symbols[i] for i in name_ids.tolist())
        return sorted(names)

    def label_values(self, name: str, matchers: list[Matcher] | None = None) -> list[str]:
        """Sorted values of a label (restricted to series matching ``matchers`` when given)."""
        values: set[str] = set()
        if not matchers:
            with self._head.lock:
                blocks = self._current_blocks()
                values.update(self._head.index.get(name, {}))
            for block in blocks:
                values.update(block.label_values_of(name))
            return sorted(values)
        for labels in self._selected_labels(matchers):
            for n, v in labels:
                if n == name:
                    values.add(v)
        return sorted(values)

    def close(self) -> None:
        """Release the querier (it holds no resources beyond references)."""
