"""Fixtures: DBs opened on private metric registries with compaction driven by the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from narthex.model.labels import Labels, labels_from_dict
from narthex.tsdb import DB, TSDBOptions, open_db

STALE_NAN = np.array([0x7FF0000000000002], dtype=np.uint64).view(np.float64)[0]


def lbl(name: str, **labels: str) -> Labels:
    return labels_from_dict({"__name__": name, **labels})


@pytest.fixture
def open_test_db(tmp_path: Path) -> Iterator[Callable[..., DB]]:
    opened: list[DB] = []

    def _open(path: Path | None = None, **opts) -> DB:
        opts.setdefault("background_compaction", False)
        db = open_db(str(path or tmp_path / "data"), TSDBOptions(**opts), registry=CollectorRegistry())
        db.head.freeze_batch = 8  # exercise compressed head chunks in every test
        opened.append(db)
        return db

    yield _open
    for db in opened:
        db.close()


def add(db: DB, labels: list[Labels], t: int | np.ndarray, values) -> object:
    """Append one batch for the given series and commit it."""
    app = db.appender()
    refs = np.array([app.series_ref(lb) for lb in labels], dtype=np.int64)
    app.append_batch(refs, t, np.asarray(values, dtype=np.float64))
    return app.commit()


def fill(db: DB, labels: list[Labels], start: int, end: int, step: int, value_fn=None) -> None:
    """One commit per scrape, ``start <= t < end``; values default to ``t / 1000 + series index``."""
    app = db.appender()
    refs = np.array([app.series_ref(lb) for lb in labels], dtype=np.int64)
    app.rollback()
    offsets = np.arange(len(labels), dtype=np.float64)
    for t in range(start, end, step):
        app = db.appender()
        vals = value_fn(t, offsets) if value_fn else t / 1000 + offsets
        app.append_batch(refs, t, vals)
        app.commit()


def select_all(db: DB, mint: int = -(2**62), maxt: int = 2**62, **match: str):
    from narthex.model.matcher import Matcher, MatchType

    matchers = [Matcher(MatchType.EQUAL, k, v) for k, v in match.items()]
    if not matchers:
        matchers = [Matcher(MatchType.REGEX, "__name__", ".+")]
    return db.querier(mint, maxt).select(matchers)
