"""Appenders: collect sample batches and make them visible atomically on commit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from narthex.model.labels import Labels
from narthex.tsdb.errors import CommitResult

if TYPE_CHECKING:
    from narthex.tsdb.db import DB


class Appender:
    """A transaction: nothing appended is visible (or logged) before :meth:`commit`."""

    def __init__(self, db: DB) -> None:
        self._db = db
        self._refs: list[np.ndarray] = []
        self._t: list[np.ndarray] = []
        self._v: list[np.ndarray] = []
        self.created: set[int] = set()
        with db.head.lock:
            db.head.protected.append(self.created)
        self._done = False

    def series_ref(self, labels: Labels) -> int:
        """The int ref of a series (created if unknown); one dict lookup for known series."""
        head = self._db.head
        ref = head.series_by_labels.get(labels)
        if ref is not None:
            return ref
        with head.lock:
            ref, created = head.get_or_create(labels)
            if created:
                self.created.add(ref)  # kept from garbage collection until commit or rollback
        return ref

    def append_batch(self, refs: np.ndarray, t: int | np.ndarray, values: np.ndarray) -> None:
        """Queue samples: ``refs[i]`` gets ``values[i]`` at ``t`` (a scalar or one per sample)."""
        if self._done:
            raise RuntimeError("appender already committed or rolled back")
        refs = np.asarray(refs, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        ts = np.full(len(refs), int(t), dtype=np.int64) if np.ndim(t) == 0 else np.asarray(t, dtype=np.int64)
        if not (len(refs) == len(ts) == len(values)):
            raise ValueError("refs, timestamps and values must have the same length")
        self._refs.append(refs)
        self._t.append(ts)
        self._v.append(values)

    def commit(self) -> CommitResult:
        """Validate, log to the WAL, then publish; rejected samples are counted per kind."""
        if self._done:
            raise RuntimeError("appender already committed or rolled back")
        try:
            if not self._refs:
                return CommitResult()
            refs = np.concatenate(self._refs)
            t = np.concatenate(self._t)
            v = np.concatenate(self._v)
            return self._db._commit(refs, t, v)
        finally:
            self._finish()

    def rollback(self) -> None:
        """Drop everything queued."""
        self._finish()

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._refs, self._t, self._v = [], [], []
            head = self._db.head
            with head.lock:
                for i, s in enumerate(head.protected):
                    if s is self.created:
                        del head.protected[i]
                        break
