"""Where rule results go: a small appender interface over the TSDB or an in-memory storage."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from narthex.model.labels import Labels
from narthex.promql.storage import MemoryStorage, Querier


class RuleAppender(Protocol):
    def append(self, labels: Labels, t: int, v: float) -> None: ...

    def commit(self) -> None: ...


class RuleStorage(Protocol):
    """Queryable and appendable storage for rule evaluation."""

    def querier(self, mint: int, maxt: int) -> Querier: ...

    def rule_appender(self) -> RuleAppender: ...


class _TSDBAppender:
    def __init__(self, db: Any) -> None:
        self._db = db
        self._labels: list[Labels] = []
        self._t: list[int] = []
        self._v: list[float] = []

    def append(self, labels: Labels, t: int, v: float) -> None:
        self._labels.append(labels)
        self._t.append(t)
        self._v.append(v)

    def commit(self) -> None:
        if not self._labels:
            return
        app = self._db.appender()
        try:
            refs = np.array([app.series_ref(lbls) for lbls in self._labels], dtype=np.int64)
            app.append_batch(refs, np.array(self._t, dtype=np.int64), np.array(self._v, dtype=np.float64))
        except Exception:
            app.rollback()
            raise
        app.commit()


class TSDBRuleStorage:
    """The TSDB (``narthex.tsdb.DB``) as rule storage: one appender commit per call to ``commit``."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def querier(self, mint: int, maxt: int) -> Querier:
        return self.db.querier(mint, maxt)

    def rule_appender(self) -> RuleAppender:
        return _TSDBAppender(self.db)


class _MemoryAppender:
    def __init__(self, storage: MemoryStorage) -> None:
        self._storage = storage
        self._pending: list[tuple[Labels, int, float]] = []

    def append(self, labels: Labels, t: int, v: float) -> None:
        self._pending.append((labels, t, v))

    def commit(self) -> None:
        for labels, t, v in self._pending:
            self._storage.add(labels, t, v)
        self._pending = []


class MemoryRuleStorage:
    """A :class:`MemoryStorage` as rule storage (tests and ``test rules``)."""

    def __init__(self, storage: MemoryStorage | None = None) -> None:
        self.storage = storage or MemoryStorage()

    def querier(self, mint: int, maxt: int) -> Querier:
        return self.storage.querier(mint, maxt)

    def rule_appender(self) -> RuleAppender:
        return _MemoryAppender(self.storage)
