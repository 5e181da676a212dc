"""Postings: sorted int64 series-id arrays per label pair, and matcher evaluation over them.

Selection follows Prometheus's ``PostingsForMatchers``: matchers that do not match the empty string
intersect the union of the postings of their matching values; matchers that match the empty string
(``a=""``, ``a!="x"``, ``a=~"x|"``, ``a!~"x"``) also select series without the label, so they subtract
the postings of the values they reject. With only such matchers the start set is every series.
Regex matchers are evaluated once per distinct label value.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from narthex.model.matcher import Matcher, MatchType

EMPTY = np.zeros(0, dtype=np.int64)


class PostingList:
    """A growable sorted int64 array (ids only ever appended in increasing order)."""

    __slots__ = ("_buf", "_n")

    def __init__(self) -> None:
        self._buf = np.empty(4, dtype=np.int64)
        self._n = 0

    def append(self, ref: int) -> None:
        if self._n == len(self._buf):
            self._buf = np.concatenate([self._buf, np.empty(len(self._buf), dtype=np.int64)])
        self._buf[self._n] = ref
        self._n += 1

    def extend(self, refs: np.ndarray) -> None:
        """Add distinct new ids (kept sorted even if they are not all larger than the last)."""
        end = self._n + len(refs)
        if end > len(self._buf):
            self._buf = np.concatenate([self._buf[: self._n], np.empty(end - self._n + 4, dtype=np.int64)])
        self._buf[self._n : end] = refs
        if (self._n and len(refs) and refs.min() < self._buf[self._n - 1]) or bool(np.any(np.diff(refs) < 0)):
            self._buf[:end].sort()
        self._n = end

    def remove(self, refs: np.ndarray) -> None:
        kept = np.setdiff1d(self.array(), refs, assume_unique=True)
        self._buf = np.concatenate([kept, np.empty(4, dtype=np.int64)])
        self._n = len(kept)

    def array(self) -> np.ndarray:
        return self._buf[: self._n]

    def __len__(self) -> int:
        return self._n


class IndexReader(Protocol):
    """What matcher evaluation needs from the head index or a block index."""

    def all_postings(self) -> np.ndarray: ...

    def postings(self, name: str, value: str) -> np.ndarray: ...

    def label_values_of(self, name: str) -> list[str]: ...


def union(arrays: list[np.ndarray]) -> np.ndarray:
    arrays = [a for a in arrays if len(a)]
    if not arrays:
        return EMPTY
    if len(arrays) == 1:
        return arrays[0]
    return np.unique(np.concatenate(arrays))


def _values_postings(ix: IndexReader, m: Matcher, want: bool) -> np.ndarray:
    """Union of postings of the label's values for which ``m.matches(value) == want``."""
    if m.type is MatchType.EQUAL and want:
        return ix.postings(m.name, m.value)
    if m.type is MatchType.NOT_EQUAL and not want:
        return ix.postings(m.name, m.value)
    return union([ix.postings(m.name, v) for v in ix.label_values_of(m.name) if m.matches(v) == want])


def select_postings(ix: IndexReader, matchers: list[Matcher]) -> np.ndarray:
    """Sorted ids of the series selected by all matchers."""
    empty = [m.matches_empty for m in matchers]
    positive = [m for m, e in zip(matchers, empty, strict=True) if not e]
    negative = [m for m, e in zip(matchers, empty, strict=True) if e]
    result: np.ndarray | None = None
    for m in positive:
        ids = _values_postings(ix, m, True)
        result = ids if result is None else np.intersect1d(result, ids, assume_unique=True)
        if len(result) == 0:
            return EMPTY
    if result is None:
        result = ix.all_postings()
    for m in negative:
        drop = _values_postings(ix, m, False)
        if len(drop):
            result = np.setdiff1d(result, drop, assume_unique=True)
        if len(result) == 0:
            return EMPTY
    return result
