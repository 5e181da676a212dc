"""PromQL values: the typed query results, the engine's columnar blocks and the query errors.

Results (what :class:`~narthex.promql.engine.Engine` returns) follow Prometheus's shapes: a
:class:`Matrix` of series with their own timestamps, a :class:`Vector` of samples at one time, a
:class:`Scalar` or a :class:`String`. Inside the engine an instant vector over all steps of a query is a
:class:`VecBlock`: one row per series, one column per step, with a presence mask.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from narthex.model.labels import METRIC_NAME, Labels

STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]

# Labels removed when a function or operator drops the metric name (upstream's metadata labels).
METADATA_LABELS = frozenset({METRIC_NAME, "__type__", "__unit__"})


def is_stale(values: np.ndarray) -> np.ndarray:
    """Elementwise: whether each float is the staleness marker (compared by bit pattern)."""
    return np.asarray(values, dtype=np.float64).view(np.uint64) == np.uint64(STALE_NAN_BITS)


def drop_metadata(labels: Labels) -> Labels:
    """The label set without ``__name__``, ``__type__`` and ``__unit__``."""
    return tuple([p for p in labels if p[0] not in METADATA_LABELS])


def drop_metadata_all(labels: list[Labels]) -> list[Labels]:
    """:func:`drop_metadata` of every label set; a sorted set that starts with ``__name__`` and
    has no other metadata label (the next name sorts after ``__unit__``) just loses its head."""
    meta = METADATA_LABELS
    return [
        x[1:]
        if x and x[0][0] == METRIC_NAME and (len(x) == 1 or x[1][0] > "__unit__")
        else tuple([p for p in x if p[0] not in meta])
        for x in labels
    ]


def labels_string(labels: Labels) -> str:
    """Prometheus's ``labels.Labels.String()`` as its error messages use it: ``{__name__="x", a="b"}``."""
    from narthex.model.labels import is_valid_legacy_label_name
    from narthex.promql.lexer import go_quote

    return (
        "{"
        + ", ".join(f"{k if is_valid_legacy_label_name(k) else go_quote(k)}={go_quote(v)}" for k, v in labels)
        + "}"
    )


def format_labels(labels: Labels) -> str:
    """A series as the promqltest format writes it: ``name{a="b"}`` or ``{a="b"}``."""
    from narthex.promql.lexer import go_quote

    name = ""
    parts = []
    for k, v in labels:
        if k == METRIC_NAME:
            name = v
            continue
        parts.append(f"{k}={go_quote(v)}")
    return f"{name}{{{', '.join(parts)}}}"


# ---------------------------------------------------------------------------------------------
# Errors.


class PromQLError(Exception):
    """Base class of query errors; ``error_type`` is the HTTP API's ``errorType``."""

    error_type = "execution"


class BadDataError(PromQLError):
    """The query does not parse or has invalid parameters."""

    error_type = "bad_data"


class ExecutionError(PromQLError):
    """A runtime failure (duplicate label sets, many-to-many matching, invalid arguments...)."""

    error_type = "execution"


class TooManySamplesError(ExecutionError):
    def __init__(self) -> None:
        super().__init__("query processing would load too many samples into memory in query execution")


class QueryTimeoutError(PromQLError):
    """The query ran out of time; ``message`` replaces the default text (upstream reports a timeout
    while queued as Go's bare ``context deadline exceeded``)."""

    error_type = "timeout"

    def __init__(self, where: str = "expression evaluation", *, message: str | None = None) -> None:
        super().__init__(message or f"query timed out in {where}")


class QueryCanceledError(PromQLError):
    """The query was canceled; ``message`` replaces the default text (``context canceled``)."""

    error_type = "canceled"

    def __init__(self, where: str = "expression evaluation", *, message: str | None = None) -> None:
        super().__init__(message or f"query was canceled in {where}")


# ---------------------------------------------------------------------------------------------
# Results.


@dataclass(slots=True)
class Series:
    """One series of a matrix result: labels, int64 ms timestamps and float64 values."""

    labels: Labels
    timestamps: np.ndarray
    values: np.ndarray

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter((self.labels, self.timestamps, self.values))


@dataclass(slots=True)
class Sample:
    labels: Labels
    timestamp: int
    value: float


@dataclass(slots=True)
class Matrix:
    series: list[Series]

    def __len__(self) -> int:
        return len(self.series)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.series)


@dataclass(slots=True)
class Vector:
    samples: list[Sample]

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.samples)


@dataclass(slots=True)
class Scalar:
    timestamp: int
    value: float


@dataclass(slots=True)
class String:
    timestamp: int
    value: str


Value = Matrix | Vector | Scalar | String


@dataclass(slots=True)
class Result:
    """A query's value with its warning and info annotations (with ``(line:col)`` positions when the
    engine knows the query text)."""

    value: Value
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    queue_s: float = 0.0  # time spent waiting for a slot of the engine's concurrency gate

    @property
    def type(self) -> str:
        return {Matrix: "matrix", Vector: "vector", Scalar: "scalar", String: "string"}[type(self.value)]


# ---------------------------------------------------------------------------------------------
# Engine-internal columnar values.


@dataclass(slots=True)
class VecBlock:
    """An instant vector at every step: ``values``/``present`` are (series x steps).

    ``drop_name`` marks rows whose metric name is to be removed at the end (delayed name removal).
    Row order is the order of an instant query's result (sort, topk...). ``sample_ts`` and
    ``sample_st`` hold the selected samples' timestamps and start timestamps for ``timestamp()`` and
    ``start_timestamp()``.
    """

    labels: list[Labels]
    values: np.ndarray
    present: np.ndarray
    drop_name: np.ndarray
    sample_ts: np.ndarray | None = None
    sample_st: np.ndarray | None = None

    @staticmethod
    def empty(steps: int) -> VecBlock:
        return VecBlock([], np.zeros((0, steps)), np.zeros((0, steps), dtype=bool), np.zeros(0, dtype=bool))

    def __len__(self) -> int:
        return len(self.labels)

    def select_rows(self, rows: np.ndarray | list[int]) -> VecBlock:
        rows = np.asarray(rows, dtype=np.int64)
        return VecBlock(
            [self.labels[i] for i in rows.tolist()],
            self.values[rows],
            self.present[rows],
            self.drop_name[rows],
            self.sample_ts[rows] if self.sample_ts is not None else None,
            self.sample_st[rows] if self.sample_st is not None else None,
        )

    def compact(self) -> VecBlock:
        """Drop rows without any present sample."""
        keep = self.present.any(axis=1)
        if keep.all():
            return self
        return self.select_rows(np.nonzero(keep)[0])


@dataclass(slots=True)
class ScalarBlock:
    """A scalar at every step."""

    values: np.ndarray


@dataclass(slots=True)
class StringValue:
    value: str


@dataclass(slots=True)
class RangeBlock:
    """Range vectors at every step: flattened samples plus per-series offsets and per-step windows.

    Series ``i`` owns samples ``offsets[i]:offsets[i+1]`` of ``t``/``v``; at step ``k`` its window is
    samples ``lo[i, k]:hi[i, k]``. ``ref`` (steps,) is the window's right edge and ``range_ms`` its
    length (windows are left-open). ``st`` holds the samples' start timestamps (0 unknown) when the
    storage has them.
    """

    labels: list[Labels]
    t: np.ndarray
    v: np.ndarray
    offsets: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    ref: np.ndarray
    range_ms: int
    drop_name: np.ndarray
    lo_ext: np.ndarray | None = None
    hi_ext: np.ndarray | None = None
    anchored: bool = False
    smoothed: bool = False
    st: np.ndarray | None = None
