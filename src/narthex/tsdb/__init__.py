"""Embedded time-series database: numpy head + WAL + immutable compressed blocks."""

from narthex.tsdb.appender import Appender
from narthex.tsdb.db import DB, open_db
from narthex.tsdb.errors import (
    ERR_DUPLICATE,
    ERR_NOT_FOUND,
    ERR_OUT_OF_BOUNDS,
    ERR_OUT_OF_ORDER,
    ERR_TOO_OLD,
    CommitResult,
    LockError,
)
from narthex.tsdb.options import TSDBOptions
from narthex.tsdb.querier import Querier, Series

__all__ = [
    "DB",
    "ERR_DUPLICATE",
    "ERR_NOT_FOUND",
    "ERR_OUT_OF_BOUNDS",
    "ERR_OUT_OF_ORDER",
    "ERR_TOO_OLD",
    "Appender",
    "CommitResult",
    "LockError",
    "Querier",
    "Series",
    "TSDBOptions",
    "open_db",
]
