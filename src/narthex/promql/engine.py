"""The PromQL engine: columnar evaluation of instant and range queries (Prometheus 3 semantics).

An instant vector is evaluated for all steps of a query at once as a (series x steps) matrix; range
vectors are flattened sample arrays with per-step window bounds found by ``np.searchsorted``. An
instant query is a range query with one step; subqueries evaluate their inner expression as a range
query on their own step grid and feed the result to range functions as flattened samples.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from narthex.model.labels import METRIC_NAME, Labels, is_valid_label_name
from narthex.model.matcher import Matcher, MatchType
from narthex.promql import eval_range as rf
from narthex.promql.ast import (
    NO_POS,
    AggregateExpr,
    BinaryExpr,
    Call,
    Expr,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    PreprocessError,
    StepInvariantExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorMatching,
    VectorSelector,
    preprocess_expr,
)
from narthex.promql.errors import ParseError, PositionRange, position_prefix
from narthex.promql.eval_agg import (
    assign_groups,
    count_values,
    quantile_aggregate,
    simple_aggregate,
    topk_like,
)
from narthex.promql.eval_binop import scalar_binop, set_operation, vector_binop, vector_scalar_binop
from narthex.promql.eval_funcs import (
    ForcedMonotonicity,
    absent_labels,
    clamp,
    date_function,
    has_math_function,
    histogram_fraction,
    histogram_quantile,
    histogram_quantiles,
    math_function,
    round_values,
)
from narthex.promql.eval_labels import (
    combine_info,
    effective_info_name_matchers,
    expand_template,
    info_timestamp_and_offset,
    natural_key,
    quote_meta,
)
from narthex.promql.functions import ValueType
from narthex.promql.lexer import go_quote
from narthex.promql.parser import DEFAULT_FEATURES, parse_expr
from narthex.promql.printer import format_float_g
from narthex.promql.storage import Queryable
from narthex.promql.value import (
    BadDataError,
    ExecutionError,
    Matrix,
    PromQLError,
    QueryCanceledError,
    QueryTimeoutError,
    RangeBlock,
    Result,
    Sample,
    Scalar,
    ScalarBlock,
    Series,
    String,
    StringValue,
    TooManySamplesError,
    VecBlock,
    Vector,
    drop_metadata,
    drop_metadata_all,
    is_stale,
)
from narthex.util.gofmt import format_float

FEATURE_DELAYED_NAME_REMOVAL = "promql-delayed-name-removal"
_REMEMBERED_TEXTS = 1024
_PARSED_TEXTS = 1000

_RANGE_SIMPLE = {
    "count_over_time": rf.count_over_time,
    "present_over_time": rf.present_over_time,
    "last_over_time": rf.last_over_time,
    "first_over_time": rf.first_over_time,
    "ts_of_last_over_time": rf.ts_of_last_over_time,
    "ts_of_first_over_time": rf.ts_of_first_over_time,
    "ts_of_max_over_time": rf.ts_of_max_over_time,
    "ts_of_min_over_time": rf.ts_of_min_over_time,
    "max_over_time": rf.max_over_time,
    "min_over_time": rf.min_over_time,
    "sum_over_time": rf.sum_over_time,
    "avg_over_time": rf.avg_over_time,
    "stddev_over_time": rf.stddev_over_time,
    "stdvar_over_time": rf.stdvar_over_time,
    "mad_over_time": rf.mad_over_time,
    "changes": rf.changes,
    "resets": rf.resets,
    "deriv": rf.deriv,
    "rate": lambda rb: rf.extrapolated_rate(rb, True, True),
    "increase": lambda rb: rf.extrapolated_rate(rb, True, False),
    "delta": lambda rb: rf.extrapolated_rate(rb, False, False),
    "irate": lambda rb: rf.instant_value(rb, True),
    "idelta": lambda rb: rf.instant_value(rb, False),
}
_NATIVE_HISTOGRAM_FUNCS = frozenset(
    {"histogram_avg", "histogram_count", "histogram_sum", "histogram_stddev", "histogram_stdvar"}
)
_DATE_FUNCS = frozenset(
    {"days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour", "minute", "month", "year"}
)
_COUNTER_SUFFIXES = ("_total", "_sum", "_count", "_bucket")
ANCHORED_SAFE = ("changes", "delta", "increase", "rate", "resets")
SMOOTHED_SAFE = ("delta", "increase", "rate")


@dataclass(slots=True)
class _Annotation:
    """One annotation: its message without position (the deduplication key) and where it applies.

    Forced-monotonicity infos and start-time-overlap warnings merge repeated occurrences into one
    message with details (bucket range, sample count, time range / occurrence count), as upstream.
    """

    msg: str
    pos: PositionRange
    kind: str = "plain"
    count: int = 1
    min_ts: int = 0
    max_ts: int = 0
    min_bucket: float = math.inf
    max_bucket: float = -math.inf
    max_diff: float = 0.0

    def render(self, query: str) -> str:
        """The text Prometheus shows: without a query text, the bare message (as upstream)."""
        if not query:
            return self.msg
        where = position_prefix(query, self.pos.start)
        if self.kind == "monotonicity":
            return (
                f"{self.msg}, from buckets {format_float_g(self.min_bucket)} to "
                f"{format_float_g(self.max_bucket)}, with a max diff of "
                f"{format_float(self.max_diff, 'g', 2)}, over "
                f"{self.count} samples from {_rfc3339(self.min_ts)} to {_rfc3339(self.max_ts)} ({where})"
            )
        if self.kind == "overlap" and self.count > 1:
            return f"{self.msg} ({self.count} occurrences) ({where})"
        return f"{self.msg} ({where})"


def _rfc3339(ms: int) -> str:
    """``time.Unix(ms/1000, 0).UTC().Format(time.RFC3339)``."""
    secs = _go_div(ms, 1000)
    return np.datetime_as_string(np.datetime64(secs, "s"), unit="s") + "Z"


class Annotations:
    """Warnings and infos of one query, deduplicated by message, in order of first occurrence.

    A repeated message keeps the latest position (the first for merged kinds), as upstream's
    ``annotations.Annotations.Add``; positions are rendered against the query text at the end.
    """

    def __init__(self) -> None:
        self.warnings: dict[str, _Annotation] = {}
        self.infos: dict[str, _Annotation] = {}

    @staticmethod
    def _add(into: dict[str, _Annotation], msg: str, pos: PositionRange) -> None:
        got = into.get(msg)
        if got is None:
            into[msg] = _Annotation(msg, pos)
        else:
            got.pos = pos

    def warn(self, msg: str, pos: PositionRange = NO_POS) -> None:
        self._add(self.warnings, msg, pos)

    def info(self, msg: str, pos: PositionRange = NO_POS) -> None:
        self._add(self.infos, msg, pos)

    def start_time_overlap(self, metric: str, count: int, pos: PositionRange) -> None:
        """``count`` windows of series of ``metric`` had a start time overlapping the previous sample."""
        msg = (
            "PromQL warning: sample has start time that overlaps with previous sample timestamp "
            f"for metric {go_quote(metric)}"
        )
        got = self.warnings.get(msg)
        if got is None:
            self.warnings[msg] = _Annotation(msg, pos, "overlap", count)
        else:
            got.count += count

    def forced_monotonicity(self, fm: ForcedMonotonicity, pos: PositionRange) -> None:
        """histogram_quantile had to fix bucket counts (merged over steps and histograms)."""
        got = self.infos.get(fm.msg)
        if got is None:
            self.infos[fm.msg] = _Annotation(
                fm.msg, pos, "monotonicity", fm.count, fm.min_ts, fm.max_ts,
                fm.min_bucket, fm.max_bucket, fm.max_diff,
            )  # fmt: skip
            return
        got.count += fm.count
        got.min_ts = min(got.min_ts, fm.min_ts)
        got.max_ts = max(got.max_ts, fm.max_ts)
        got.min_bucket = min(got.min_bucket, fm.min_bucket)
        got.max_bucket = max(got.max_bucket, fm.max_bucket)
        got.max_diff = max(got.max_diff, fm.max_diff)

    def strings(self, query: str) -> tuple[list[str], list[str]]:
        """(warnings, infos) as Prometheus renders them for ``query`` (positions as ``line:col``)."""
        return (
            [a.render(query) for a in self.warnings.values()],
            [a.render(query) for a in self.infos.values()],
        )


class _Selected(NamedTuple):
    """A selected series: labels, timestamps, values and start timestamps (None when unknown)."""

    labels: Labels
    t: np.ndarray
    v: np.ndarray
    st: np.ndarray | None


class _Flat(NamedTuple):
    """Selected series flattened: series ``i`` owns samples ``offsets[i]:offsets[i+1]``."""

    labels: list[Labels]
    t: np.ndarray
    v: np.ndarray
    offsets: np.ndarray
    st: np.ndarray | None


def _flatten_selected(series: list[_Selected], drop_stale: bool) -> _Flat:
    """Concatenate the series' samples (without staleness markers if ``drop_stale``)."""
    t, v, offsets = _flatten(series)  # type: ignore[arg-type]
    flat = _Flat([s.labels for s in series], t, v, offsets, _flat_st(series))
    return _without_stale(flat) if drop_stale else flat


def _without_stale(flat: _Flat) -> _Flat:
    """The selection without staleness markers (series left without samples stay)."""
    if not flat.v.size:
        return flat
    keep = ~is_stale(flat.v)
    if keep.all():
        return flat
    kept = np.concatenate(([0], np.cumsum(keep)))
    st = flat.st[keep] if flat.st is not None else None
    return _Flat(flat.labels, flat.t[keep], flat.v[keep], kept[flat.offsets], st)


def _flat_st(series: list[_Selected]) -> np.ndarray | None:
    if all(s.st is None for s in series):
        return None
    parts = [s.st if s.st is not None else np.zeros(len(s.t), dtype=np.int64) for s in series]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


@dataclass
class _Query:
    """Per-query state shared by the evaluators of one query (and its subqueries)."""

    storage: Queryable
    lookback_ms: int
    max_samples: int
    deadline: float
    delayed: bool
    subquery_step_ms: int
    query_start: int
    query_end: int
    cancel: threading.Event | None = None
    annos: Annotations = field(default_factory=Annotations)
    cache: dict[tuple[object, ...], _Flat] = field(default_factory=dict)
    samples: int = 0

    def check_deadline(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise QueryCanceledError()
        if time.monotonic() > self.deadline:
            raise QueryTimeoutError()

    def check_samples(self, count: int) -> None:
        """Account for samples loaded into memory; too many for one query is an error."""
        self.samples += count
        if self.samples > self.max_samples:
            raise TooManySamplesError()

    def select(self, vs: VectorSelector, mint: int, maxt: int) -> _Flat:
        """The series matching a selector with their samples in [mint, maxt], flattened (cached per
        query); a querier's ``select_flat`` is used when it has one."""
        key = (vs.matchers, mint, maxt)
        got = self.cache.get(key)
        if got is None:
            querier = self.storage.querier(mint, maxt)
            flat = getattr(querier, "select_flat", None)
            sel = flat(list(vs.matchers)) if flat is not None else None
            if sel is not None:
                got = _Flat(
                    list(map(tuple, sel.labels)),
                    np.asarray(sel.t, dtype=np.int64),
                    np.asarray(sel.v, dtype=np.float64),
                    np.asarray(sel.offsets, dtype=np.int64),
                    np.asarray(sel.st, dtype=np.int64) if sel.st is not None else None,
                )
            else:
                series = []
                for s in querier.select(list(vs.matchers)):
                    sts = getattr(s, "start_timestamps", None)
                    series.append(
                        _Selected(
                            tuple(s.labels),
                            np.asarray(s.timestamps, dtype=np.int64),
                            np.asarray(s.values, dtype=np.float64),
                            np.asarray(sts, dtype=np.int64) if sts is not None else None,
                        )
                    )
                got = _flatten_selected(series, drop_stale=False)
            self.cache[key] = got
        return got


# ---------------------------------------------------------------------------------------------
# Helpers on flattened series.


def _go_div(a: int, b: int) -> int:
    """Go's integer division (truncates towards zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _flatten(
    series: list[tuple[Labels, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not series:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(1, dtype=np.int64)
    lengths = np.array([len(s[1]) for s in series], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    t = np.concatenate([s[1] for s in series]) if lengths.sum() else np.zeros(0, dtype=np.int64)
    v = np.concatenate([s[2] for s in series]) if lengths.sum() else np.zeros(0)
    return t.astype(np.int64, copy=False), v.astype(np.float64, copy=False), offsets


def search_windows(t: np.ndarray, offsets: np.ndarray, queries: np.ndarray, side: str) -> np.ndarray:
    """For every series i and query q (series x steps): the global index of searchsorted(t_i, q)."""
    return search_windows_many(t, offsets, [queries], side)[0]


def search_windows_many(
    t: np.ndarray, offsets: np.ndarray, queries: list[np.ndarray], side: str
) -> list[np.ndarray]:
    """:func:`search_windows` for several query arrays (each broadcast to series x steps) in one
    ``np.searchsorted`` over per-series keys ``series_id * width + t``."""
    nseries = len(offsets) - 1
    steps = max(q.shape[-1] for q in queries)
    if nseries == 0:
        return [np.zeros((0, steps), dtype=np.int64) for _ in queries]
    if t.size == 0:
        return [np.broadcast_to(offsets[:-1, None], (nseries, steps)).copy() for _ in queries]
    rows = [np.asarray(x) for x in queries]
    shared = all(x.ndim == 2 and x.shape[0] == 1 and x.shape[1] == steps for x in rows)
    if shared:
        # One pass over the distinct query times of all arrays (a window's left edges are mostly
        # the right edges of earlier steps).
        union = (
            rows[0][0] if steps == 1 and len(rows) == 1 else np.unique(np.concatenate([x[0] for x in rows]))
        )
        if len(union) == 1:
            # One query time (an instant query): each series' samples after it are a suffix, so
            # the answer is the series' first such sample (or its end).
            after = np.flatnonzero(t > union[0] if side == "right" else t >= union[0])
            first = np.append(after, t.size)[np.searchsorted(after, offsets[:-1])]
            found = np.minimum(first, offsets[1:])[:, None]
            return [found if steps == 1 else np.broadcast_to(found, (nseries, steps)) for _ in rows]
        if 2 * t.size <= 3 * nseries * len(union):
            counts = _count_before(t, offsets, union, side)
            return [_columns(counts, np.searchsorted(union, x[0])) for x in rows]
    tmin, tmax = int(t.min()), int(t.max())
    width = tmax - tmin + 3
    if width * nseries < (1 << 62):
        sid = np.repeat(np.arange(nseries, dtype=np.int64), np.diff(offsets))
        keys = (t - tmin + 1) + sid * width
        base = (np.arange(nseries, dtype=np.int64) * width - tmin + 1)[:, None]
        q = np.stack([np.clip(np.broadcast_to(x, (nseries, steps)), tmin - 1, tmax + 1) for x in queries])
        q += base
        return list(np.searchsorted(keys, q, side=side))  # type: ignore[call-overload]
    outs = []
    for x in queries:
        x = np.broadcast_to(x, (nseries, steps))
        out = np.empty((nseries, steps), dtype=np.int64)
        for i in range(nseries):
            a, b = int(offsets[i]), int(offsets[i + 1])
            out[i] = a + np.searchsorted(t[a:b], x[i], side=side)  # type: ignore[call-overload]
        outs.append(out)
    return outs


def _count_before(t: np.ndarray, offsets: np.ndarray, queries: np.ndarray, side: str) -> np.ndarray:
    """Global ``searchsorted(t_i, q)`` for every series i and ascending query time q (series x
    queries), counting with one bincount: each sample counts from the first query it precedes.

    Beats a binary search per query when there are not many more samples than queries.
    """
    nseries, width = len(offsets) - 1, len(queries) + 1
    sid = _first_query(t, queries, side)
    sid += np.repeat(np.arange(0, nseries * width, width, dtype=np.int64), np.diff(offsets))
    hist = np.bincount(sid, minlength=nseries * width).reshape(nseries, width)
    hist[:, 0] += offsets[:-1]
    return np.cumsum(hist[:, :-1], axis=1)


_SAFE_TS = 1 << 61  # timestamps and steps below this cannot overflow int64 in _first_query


def _first_query(t: np.ndarray, queries: np.ndarray, side: str) -> np.ndarray:
    """Per sample, the index of the first of the ascending ``queries`` whose window it falls in:
    the number of queries ``< t`` (``side="right"``: the sample is at or before the query) or
    ``<= t`` (``side="left"``). Arithmetic instead of a binary search on an evenly spaced grid."""
    m = len(queries)
    q0 = int(queries[0])
    step = int(queries[1]) - q0 if m > 1 else 0
    even = m > 1 and step > 0 and bool((np.diff(queries) == step).all())
    if (
        even
        and t.size
        and max(abs(q0), abs(int(queries[-1])), step) < _SAFE_TS
        and int(t.min()) > -_SAFE_TS
        and int(t.max()) < _SAFE_TS
    ):
        # #{k: q0 + k*step < t} = ceil((t - q0) / step); #{k: q0 + k*step <= t} = floor(...) + 1.
        k = t - (q0 - (step - 1 if side == "right" else step))
        k //= step
        np.clip(k, 0, m, out=k)
        return k
    return np.searchsorted(queries, t, side="left" if side == "right" else "right")


def _columns(matrix: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[:, cols]``, as a view when ``cols`` are consecutive."""
    if len(cols) and (np.diff(cols) == 1).all():
        return matrix[:, int(cols[0]) : int(cols[-1]) + 1]
    return matrix[:, cols]


def merge_same_labels(block: VecBlock) -> VecBlock:
    """Merge rows with identical label sets; overlapping samples are an error, as upstream."""
    if len(block) <= 1 or len(set(block.labels)) == len(block):
        return block
    groups: dict[Labels, list[int]] = {}
    for i, lbls in enumerate(block.labels):
        groups.setdefault(lbls, []).append(i)
    if len(groups) == len(block):
        return block
    labels_out: list[Labels] = []
    vals = []
    pres = []
    drop = []
    for lbls, rows in groups.items():
        if len(rows) == 1:
            r = rows[0]
            labels_out.append(lbls)
            vals.append(block.values[r])
            pres.append(block.present[r])
            drop.append(block.drop_name[r])
            continue
        p = block.present[rows]
        if (p.sum(axis=0) > 1).any():
            raise ExecutionError("vector cannot contain metrics with the same labelset")
        labels_out.append(lbls)
        vals.append(np.where(p, block.values[rows], 0.0).sum(axis=0))
        pres.append(p.any(axis=0))
        drop.append(bool(block.drop_name[rows].any()))
    steps = block.values.shape[1]
    return VecBlock(
        labels_out,
        np.array(vals).reshape(len(labels_out), steps),
        np.array(pres).reshape(len(labels_out), steps),
        np.array(drop, dtype=bool),
    )


def _pos(expr: Expr | None) -> PositionRange:
    """Upstream's ``PositionRange()`` of a node (a matrix selector starts at its vector selector)."""
    if expr is None:
        return NO_POS
    if isinstance(expr, MatrixSelector):
        return PositionRange(expr.vector_selector.pos.start, expr.pos.end)
    return expr.pos


def _binop_pos(expr: BinaryExpr) -> PositionRange:
    """A binary expression's range spans its operands (upstream's ``mergeRanges``)."""
    return PositionRange(_pos(expr.lhs).start, _pos(expr.rhs).end)


def _metric_names(labels: list[Labels]) -> list[str]:
    """The distinct metric names ("" for none) of label sets, in order of first appearance."""
    return list(
        dict.fromkeys(
            x[0][1] if x and x[0][0] == METRIC_NAME else dict(x).get(METRIC_NAME, "") for x in labels
        )
    )


def _unwrap(expr: Expr) -> Expr:
    while isinstance(expr, ParenExpr | StepInvariantExpr):
        expr = expr.expr
    return expr


# ---------------------------------------------------------------------------------------------
# The evaluator.


class Evaluator:
    """Evaluates expressions at the steps ``start, start+interval, ..., end`` (all at once)."""

    def __init__(self, query: _Query, start: int, end: int, interval: int) -> None:
        self.q = query
        self.start = start
        self.end = end
        self.interval = interval
        n = 1 if interval <= 0 or end <= start else (end - start) // interval + 1
        self.ts = start + np.arange(n, dtype=np.int64) * max(interval, 1)
        self.steps = n
        self.last = start + (n - 1) * max(interval, 1)

    # -- names ------------------------------------------------------------------------------

    def drop_names(self, block: VecBlock) -> VecBlock:
        """Drop the metric name (delayed: only mark the rows)."""
        if self.q.delayed:
            return VecBlock(block.labels, block.values, block.present, np.ones(len(block), dtype=bool))
        out = VecBlock(
            drop_metadata_all(block.labels), block.values, block.present, np.zeros(len(block), dtype=bool)
        )
        return merge_same_labels(out)

    # -- dispatch ---------------------------------------------------------------------------

    def eval(self, expr: Expr) -> VecBlock | ScalarBlock | StringValue | RangeBlock:
        self.q.check_deadline()
        match expr:
            case NumberLiteral():
                return ScalarBlock(np.full(self.steps, expr.val))
            case StringLiteral():
                return StringValue(expr.val)
            case ParenExpr():
                return self.eval(expr.expr)
            case StepInvariantExpr():
                return self.eval_step_invariant(expr)
            case VectorSelector():
                return self.eval_vector_selector(expr)
            case MatrixSelector():
                return self.eval_matrix_selector(expr)
            case SubqueryExpr():
                return self.eval_subquery(expr)
            case UnaryExpr():
                return self.eval_unary(expr)
            case BinaryExpr():
                return self.eval_binary(expr)
            case Call():
                return self.eval_call(expr)
            case AggregateExpr():
                return self.eval_aggregate(expr)
        raise ExecutionError(f"unhandled expression of type: {type(expr).__name__}")

    def eval_vec(self, expr: Expr) -> VecBlock:
        val = self.eval(expr)
        assert isinstance(val, VecBlock), type(val)
        return val

    def eval_scalar(self, expr: Expr) -> np.ndarray:
        val = self.eval(expr)
        assert isinstance(val, ScalarBlock), type(val)
        return val.values

    def eval_step_invariant(
        self, expr: StepInvariantExpr
    ) -> VecBlock | ScalarBlock | StringValue | RangeBlock:
        inner = expr.expr
        if isinstance(inner, NumberLiteral | StringLiteral):
            return self.eval(inner)
        if self.steps == 1:
            return self.eval(inner)
        child = Evaluator(self.q, self.start, self.start, self.interval)
        res = child.eval(inner)
        if isinstance(res, RangeBlock | StringValue):
            return res
        if isinstance(res, ScalarBlock):
            return ScalarBlock(np.repeat(res.values, self.steps))
        self.q.check_samples(int(res.present.sum()) * self.steps)
        return VecBlock(
            res.labels,
            np.repeat(res.values, self.steps, axis=1),
            np.repeat(res.present, self.steps, axis=1),
            res.drop_name,
            np.repeat(res.sample_ts, self.steps, axis=1) if res.sample_ts is not None else None,
            np.repeat(res.sample_st, self.steps, axis=1) if res.sample_st is not None else None,
        )

    # -- selectors --------------------------------------------------------------------------

    def _refs(self, at: int | None, offset: int) -> np.ndarray:
        if at is not None:
            return np.full(self.steps, at - offset, dtype=np.int64)
        return self.ts - offset

    def _ref_bounds(self, at: int | None, offset: int) -> tuple[int, int]:
        """``(min, max)`` of :meth:`_refs` (the steps ascend), without reducing the array."""
        if at is not None:
            return at - offset, at - offset
        return self.start - offset, self.last - offset

    def eval_vector_selector(self, vs: VectorSelector) -> VecBlock:
        if vs.smoothed:
            return self.eval_smoothed_selector(vs)
        refs = self._refs(vs.timestamp_ms, vs.offset_ms)
        rmin, rmax = self._ref_bounds(vs.timestamp_ms, vs.offset_ms)
        lookback = self.q.lookback_ms
        sel = self.q.select(vs, rmin - lookback + 1, rmax)
        if not sel.labels:
            return VecBlock.empty(self.steps)
        t, v, offsets = sel.t, sel.v, sel.offsets
        hi = search_windows(t, offsets, refs[None, :], "right")
        has = hi > offsets[:-1, None]
        idx = np.where(has, hi - 1, 0)
        if t.size:
            st = t[idx]
            sv = v[idx]
        else:
            st = np.zeros(idx.shape, dtype=np.int64)
            sv = np.zeros(idx.shape)
        present = has & (st > refs[None, :] - lookback) & ~is_stale(sv)
        self.q.check_samples(int(present.sum()))
        flat_st = sel.st
        block = VecBlock(
            list(sel.labels),
            np.where(present, sv, 0.0),
            present,
            np.zeros(len(sel.labels), dtype=bool),
            st,
            flat_st[idx] if flat_st is not None and flat_st.size else None,
        )
        return block.compact()

    def _range_block(
        self,
        labels: list[Labels],
        t: np.ndarray,
        v: np.ndarray,
        offsets: np.ndarray,
        refs: np.ndarray,
        range_ms: int,
        drop: np.ndarray,
    ) -> RangeBlock:
        lo, hi = search_windows_many(t, offsets, [(refs - range_ms)[None, :], refs[None, :]], "right")
        if len(labels):
            self.q.check_samples(int((hi.sum(axis=0) - lo.sum(axis=0)).max()))
        return RangeBlock(labels, t, v, offsets, lo, hi, refs, range_ms, drop)

    def eval_matrix_selector(self, ms: MatrixSelector) -> RangeBlock:
        vs = ms.vector_selector
        assert isinstance(vs, VectorSelector)
        refs = self._refs(vs.timestamp_ms, vs.offset_ms)
        rmin, rmax = self._ref_bounds(vs.timestamp_ms, vs.offset_ms)
        lookback = self.q.lookback_ms
        before = lookback if (vs.anchored or vs.smoothed) else 0
        after = lookback if vs.smoothed else 0
        flat = _without_stale(self.q.select(vs, rmin - ms.range_ms - before + 1, rmax + after))
        t, offsets = flat.t, flat.offsets
        rb = self._range_block(
            list(flat.labels), t, flat.v, offsets, refs, ms.range_ms, np.zeros(len(flat.labels), dtype=bool)
        )
        rb.st = flat.st
        if vs.anchored or vs.smoothed:
            rb.anchored, rb.smoothed = vs.anchored, vs.smoothed
            rb.lo_ext, rb.hi_ext = search_windows_many(
                t, offsets, [(refs - ms.range_ms - before)[None, :], (refs + after)[None, :]], "right"
            )
        return rb

    def eval_smoothed_selector(self, vs: VectorSelector) -> VecBlock:
        """``metric smoothed``: the value interpolated at each step between the samples around it."""
        refs = self._refs(vs.timestamp_ms, vs.offset_ms)
        lb = self.q.lookback_ms
        flat = _without_stale(self.q.select(vs, int(refs.min()) - lb + 1, int(refs.max()) + lb))
        t, v, offsets = flat.t, flat.v, flat.offsets
        if not flat.labels:
            return VecBlock.empty(self.steps)
        lo, hi = search_windows_many(t, offsets, [(refs - lb)[None, :], (refs + lb)[None, :]], "right")
        i = np.clip(search_windows(t, offsets, refs[None, :], "left"), lo, hi)
        has_next = i < hi
        has_prev = i > lo
        nxt = np.clip(i, 0, max(t.size - 1, 0))
        prv = np.clip(i - 1, 0, max(t.size - 1, 0))
        tn, vn = t[nxt] if t.size else nxt, v[nxt] if t.size else nxt.astype(float)
        tp, vp = t[prv] if t.size else prv, v[prv] if t.size else prv.astype(float)
        exact = has_next & (tn == refs[None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            interp = vp + (vn - vp) * (refs[None, :] - tp) / (tn - tp)
        vals = np.where(exact, vn, np.where(has_prev & has_next, interp, vp))
        present = exact | has_prev
        block = VecBlock(
            list(flat.labels), np.where(present, vals, 0.0), present, np.zeros(len(flat.labels), bool)
        )
        return block.compact()

    def eval_subquery(self, sq: SubqueryExpr) -> RangeBlock:
        step = sq.step_ms or self.q.subquery_step_ms
        parent = self._refs(sq.timestamp_ms, 0)
        offset, rng = sq.offset_ms, sq.range_ms
        first = int(parent.min()) - offset - rng
        start = step * _go_div(first, step)
        if start <= first:
            start += step
        end = int(parent.max()) - offset
        child = Evaluator(self.q, start, end, step)
        if end < start:
            inner = VecBlock.empty(1)
            child_ts = np.zeros(0, dtype=np.int64)
        else:
            res = child.eval(sq.expr)
            if isinstance(res, ScalarBlock):
                inner = VecBlock(
                    [()], res.values[None, :], np.ones((1, child.steps), dtype=bool), np.zeros(1, bool)
                )
            else:
                assert isinstance(res, VecBlock)
                inner = res
            child_ts = child.ts
        # Row-major boolean indexing keeps each series' samples together and in time order.
        pres = inner.present
        if len(inner):
            t = np.broadcast_to(child_ts[None, :], pres.shape)[pres].astype(np.int64, copy=False)
            v = inner.values[pres].astype(np.float64, copy=False)
        else:
            t, v = np.zeros(0, dtype=np.int64), np.zeros(0)
        offsets = np.concatenate(([0], np.cumsum(pres.sum(axis=1)))).astype(np.int64)
        refs = parent - offset
        return self._range_block(list(inner.labels), t, v, offsets, refs, rng, inner.drop_name.copy())

    # -- operators --------------------------------------------------------------------------

    def eval_unary(self, expr: UnaryExpr) -> VecBlock | ScalarBlock:
        val = self.eval(expr.expr)
        if expr.op != "-":
            assert isinstance(val, VecBlock | ScalarBlock)
            return val
        if isinstance(val, ScalarBlock):
            return ScalarBlock(-val.values)
        assert isinstance(val, VecBlock)
        return self.drop_names(VecBlock(val.labels, -val.values, val.present, val.drop_name))

    def eval_binary(self, expr: BinaryExpr) -> VecBlock | ScalarBlock:
        lt, rt = expr.lhs.type, expr.rhs.type
        if lt is ValueType.SCALAR and rt is ValueType.SCALAR:
            return ScalarBlock(scalar_binop(expr.op, self.eval_scalar(expr.lhs), self.eval_scalar(expr.rhs)))
        if lt is ValueType.VECTOR and rt is ValueType.VECTOR:
            lhs = self.eval_vec(expr.lhs)
            rhs = self.eval_vec(expr.rhs)
            matching = expr.matching or VectorMatching()
            if expr.op in ("and", "or", "unless"):
                return merge_same_labels(set_operation(expr.op, lhs, rhs, matching))
            infos: list[str] = []
            out = vector_binop(expr.op, lhs, rhs, matching, expr.return_bool, self.q.delayed, infos)
            for msg in infos:
                self.q.annos.info(msg, _binop_pos(expr))
            return merge_same_labels(out)
        if lt is ValueType.VECTOR:
            vec, scalar, swap = self.eval_vec(expr.lhs), self.eval_scalar(expr.rhs), False
        else:
            scalar, vec, swap = self.eval_scalar(expr.lhs), self.eval_vec(expr.rhs), True
        out, drop = vector_scalar_binop(expr.op, vec, scalar, swap, expr.return_bool)
        if expr.op in ("</", ">/") and len(vec) and vec.present.any():
            types = ("float", "float")
            self.q.annos.info(
                f'PromQL info: incompatible sample types encountered for binary operator "{expr.op}": '
                f"{types[0]} {expr.op} {types[1]}",
                _binop_pos(expr),
            )
        return self.drop_names(out) if drop else out

    # -- aggregations -----------------------------------------------------------------------

    def eval_aggregate(self, expr: AggregateExpr) -> VecBlock:
        op = expr.op
        if op == "count_values":
            assert isinstance(expr.param, StringLiteral)
            label = expr.param.val
            if not is_valid_label_name(label):
                raise ExecutionError(f"invalid label name {go_quote(label)}")
            block = self.eval_vec(expr.expr)
            labels, vals, pres = count_values(block, expr.grouping, expr.without, label)
            return VecBlock(labels, vals, pres, np.zeros(len(labels), dtype=bool))
        param = None
        if expr.param is not None:
            param = self.eval_scalar(expr.param)
        block = self.eval_vec(expr.expr)
        gids, glabels = assign_groups(block.labels, expr.grouping, expr.without)
        ngroups = len(glabels)
        if op in ("topk", "bottomk", "limitk", "limit_ratio"):
            assert param is not None
            warns: list[str] = []
            out = topk_like(op, block, gids, ngroups, param, warns)
            for w in warns:
                self.q.annos.warn(w, _pos(expr.param))
            return out
        if op == "quantile":
            assert param is not None
            for bad in (
                ([float("nan")] if np.isnan(param).any() else [])
                + ([float(param.max())] if param.max() > 1 else [])
                + ([float(param.min())] if param.min() < 0 else [])
            ):
                self.q.annos.warn(
                    f"PromQL warning: quantile value should be between 0 and 1, got {format_float_g(bad)}",
                    _pos(expr.param),
                )
            vals, pres = quantile_aggregate(block, gids, ngroups, param)
        else:
            vals, pres = simple_aggregate(op, block, gids, ngroups)
        drop = np.zeros(ngroups, dtype=bool)
        if len(block):
            np.logical_or.at(drop, gids, block.drop_name)
        out = VecBlock(glabels, np.where(pres, vals, 0.0), pres, drop)
        return out.compact()

    # -- functions --------------------------------------------------------------------------

    def eval_call(self, call: Call) -> VecBlock | ScalarBlock:
        name = call.func.name
        args = call.args
        if name in ("timestamp", "start_timestamp"):
            inner = args[0]
            while isinstance(inner, ParenExpr):
                inner = inner.expr
            block = self.eval_vec(inner)
            if name == "start_timestamp":
                if not isinstance(_unwrap(inner), VectorSelector) or block.sample_st is None:
                    return VecBlock.empty(self.steps)
                vals = block.sample_st / 1000.0
                out = VecBlock(
                    block.labels, np.where(block.present, vals, 0.0), block.present, block.drop_name
                )
                return self.drop_names(out)
            if isinstance(_unwrap(inner), VectorSelector) and block.sample_ts is not None:
                vals = block.sample_ts / 1000.0
            else:
                vals = np.broadcast_to(self.ts[None, :] / 1000.0, block.values.shape)
            return self.drop_names(
                VecBlock(block.labels, np.where(block.present, vals, 0.0), block.present, block.drop_name)
            )
        if name in ("label_replace", "label_join"):
            return self.eval_label_function(call)
        if name == "info":
            return self.eval_info(call)
        if name in ("sort", "sort_desc", "sort_by_label", "sort_by_label_desc"):
            return self.eval_sort(call)
        if name == "time":
            return ScalarBlock(self.ts / 1000.0)
        if name == "pi":
            return ScalarBlock(np.full(self.steps, np.pi))
        if name in ("max_of", "min_of"):
            a, b = self.eval_scalar(args[0]), self.eval_scalar(args[1])
            with np.errstate(invalid="ignore"):
                return ScalarBlock(np.maximum(a, b) if name == "max_of" else np.minimum(a, b))
        if name == "scalar":
            block = self.eval_vec(args[0])
            cnt = block.present.sum(axis=0)
            vals = np.where(block.present, block.values, 0.0).sum(axis=0)
            return ScalarBlock(np.where(cnt == 1, vals, np.nan))
        if name == "vector":
            vals = self.eval_scalar(args[0])
            return VecBlock(
                [()], vals[None, :].copy(), np.ones((1, self.steps), dtype=bool), np.zeros(1, bool)
            )
        if name in ("absent", "absent_over_time"):
            return self.eval_absent(call)
        if name in _DATE_FUNCS:
            if not args:
                vals = date_function(name, self.ts / 1000.0)
                return VecBlock([()], vals[None, :], np.ones((1, self.steps), dtype=bool), np.zeros(1, bool))
            block = self.eval_vec(args[0])
            vals = date_function(name, block.values)
            return self.drop_names(VecBlock(block.labels, vals, block.present, block.drop_name))
        if has_math_function(name):
            block = self.eval_vec(args[0])
            return self.drop_names(
                VecBlock(block.labels, math_function(name, block.values), block.present, block.drop_name)
            )
        if name in ("clamp", "clamp_min", "clamp_max"):
            block = self.eval_vec(args[0])
            inf = np.full(self.steps, np.inf)
            if name == "clamp":
                lo, hi = self.eval_scalar(args[1]), self.eval_scalar(args[2])
            elif name == "clamp_min":
                lo, hi = self.eval_scalar(args[1]), inf
            else:
                lo, hi = -inf, self.eval_scalar(args[1])
            vals, ok = clamp(block.values, lo, hi)
            out = VecBlock(block.labels, vals, block.present & ok[None, :], block.drop_name)
            return self.drop_names(out.compact())
        if name == "round":
            block = self.eval_vec(args[0])
            nearest = self.eval_scalar(args[1]) if len(args) > 1 else np.ones(self.steps)
            return self.drop_names(
                VecBlock(block.labels, round_values(block.values, nearest), block.present, block.drop_name)
            )
        if name in ("histogram_quantile", "histogram_quantiles", "histogram_fraction"):
            infos: list[ForcedMonotonicity] = []
            delayed = self.q.delayed
            if name == "histogram_quantile":
                q = self.eval_scalar(args[0])
                warns: list[str] = []
                block = self.eval_vec(args[1])
                out = histogram_quantile(q, block, self.ts, delayed, warns, infos)
                # Quantile warnings come from the quantile argument, bucket warnings from the vector.
                for w in warns:
                    is_q = w.startswith("PromQL warning: quantile value")
                    self.q.annos.warn(w, _pos(args[0] if is_q else args[1]))
                hist_arg = args[1]
            elif name == "histogram_fraction":
                lower, upper = self.eval_scalar(args[0]), self.eval_scalar(args[1])
                warns = []
                out = histogram_fraction(lower, upper, self.eval_vec(args[2]), delayed, warns)
                for w in warns:
                    self.q.annos.warn(w, _pos(args[2]))
                hist_arg = args[2]
            else:
                block = self.eval_vec(args[0])
                label = _unwrap(args[1])
                assert isinstance(label, StringLiteral)
                qs = [self.eval_scalar(a) for a in args[2:]]
                per_arg: list[list[str]] = [[] for _ in range(len(qs) + 1)]
                out = histogram_quantiles(block, label.val, qs, self.ts, delayed, per_arg, infos)
                for a, ws in zip((*args[2:], args[0]), per_arg, strict=True):
                    for w in ws:
                        self.q.annos.warn(w, _pos(a))
                hist_arg = args[0]
            for fm in infos:
                self.q.annos.forced_monotonicity(fm, _pos(hist_arg))
            if not self.q.delayed:
                out = self.drop_names(out)
            return out
        if name in _NATIVE_HISTOGRAM_FUNCS:
            for a in args:
                if a.type is ValueType.VECTOR:
                    self.eval(a)
            return VecBlock.empty(self.steps)
        return self.eval_range_function(call)

    def _range_arg(self, call: Call) -> tuple[int, RangeBlock]:
        for i, a in enumerate(call.args):
            if a.type is ValueType.MATRIX:
                val = self.eval(a)
                assert isinstance(val, RangeBlock)
                return i, val
        raise ExecutionError(f"function {call.func.name} has no range-vector argument")

    def eval_range_function(self, call: Call) -> VecBlock:
        name = call.func.name
        idx, rb = self._range_arg(call)
        sel = _unwrap(call.args[idx])
        vs = sel.vector_selector if isinstance(sel, MatrixSelector) else None
        if isinstance(vs, VectorSelector) and vs.anchored and name not in ANCHORED_SAFE:
            raise ExecutionError(
                f"anchored modifier can only be used with: {', '.join(ANCHORED_SAFE)} - not with {name}"
            )
        if isinstance(vs, VectorSelector) and vs.smoothed and name not in SMOOTHED_SAFE:
            raise ExecutionError(
                f"smoothed modifier can only be used with: {', '.join(SMOOTHED_SAFE)} - not with {name}"
            )
        if rb.anchored or rb.smoothed:
            assert rb.lo_ext is not None and rb.hi_ext is not None
            if name in ("rate", "increase", "delta"):
                is_counter = name != "delta"
                vals, pres = rf.extended_rate(
                    rb, rb.lo_ext, rb.hi_ext, rb.smoothed, is_counter, name == "rate"
                )
                return self.drop_names(VecBlock(list(rb.labels), vals, pres, rb.drop_name.copy()).compact())
            if name in ("changes", "resets"):
                lo = np.where(rb.lo > rb.lo_ext, rb.lo - 1, rb.lo)
                shifted = RangeBlock(
                    rb.labels, rb.t, rb.v, rb.offsets, lo, rb.hi, rb.ref, rb.range_ms, rb.drop_name
                )
                vals, pres = _RANGE_SIMPLE[name](shifted)
                pres = pres & (rb.hi > rb.lo)
                return self.drop_names(VecBlock(list(rb.labels), vals, pres, rb.drop_name.copy()).compact())
        scalars = [
            self.eval_scalar(a) for i, a in enumerate(call.args) if i != idx and a.type is ValueType.SCALAR
        ]
        if rb.st is not None and name not in ("rate", "increase", "irate", "resets"):
            rb.st = None
        arg_pos = _pos(call.args[idx])
        if rb.st is not None and name in ("rate", "increase"):
            overlap = rf.start_time_overlaps(rb)
            for i in np.nonzero(overlap)[0].tolist():
                metric = dict(rb.labels[i]).get(METRIC_NAME, "")
                self.q.annos.start_time_overlap(metric, int(overlap[i]), arg_pos)
        fn = _RANGE_SIMPLE.get(name)
        if fn is not None:
            vals, pres = fn(rb)
        elif name == "quantile_over_time":
            q = scalars[0]
            for bad in sorted({float(x) for x in q[np.isnan(q) | (q < 0) | (q > 1)].tolist()}, key=str):
                self.q.annos.warn(
                    f"PromQL warning: quantile value should be between 0 and 1, got {format_float_g(bad)}",
                    _pos(call.args[0]),
                )
            vals, pres = rf.quantile_over_time(rb, q)
        elif name == "predict_linear":
            vals, pres = rf.predict_linear(rb, self.ts, scalars[0])
        elif name == "double_exponential_smoothing":
            sf, tf = scalars
            for k in range(len(sf)):
                if not 0 < sf[k] < 1:
                    raise ExecutionError(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf[k]:f}")
                if not 0 < tf[k] < 1:
                    raise ExecutionError(f"invalid trend factor. Expected: 0 < tf < 1, got: {tf[k]:f}")
            vals, pres = rf.double_exponential_smoothing(rb, sf, tf)
        else:
            raise ExecutionError(f"unknown function {name}")
        if name in ("rate", "increase") and len(rb.labels):
            has = pres.any(axis=1)
            for metric in _metric_names([rb.labels[i] for i in np.flatnonzero(has).tolist()]):
                if metric and not metric.endswith(_COUNTER_SUFFIXES):
                    self.q.annos.info(
                        "PromQL info: metric might not be a counter, name does not end in "
                        f"_total/_sum/_count/_bucket: {go_quote(metric)}",
                        arg_pos,
                    )
        out = VecBlock(list(rb.labels), vals, pres, rb.drop_name.copy()).compact()
        if name in ("last_over_time", "first_over_time"):
            return merge_same_labels(out)
        return self.drop_names(out)

    def eval_absent(self, call: Call) -> VecBlock:
        arg = call.args[0]
        if call.func.name == "absent":
            block = self.eval_vec(arg)
            any_present = block.present.any(axis=0) if len(block) else np.zeros(self.steps, dtype=bool)
        else:
            val = self.eval(arg)
            assert isinstance(val, RangeBlock)
            _, pres = rf.count_over_time(val)
            any_present = pres.any(axis=0) if len(val.labels) else np.zeros(self.steps, dtype=bool)
        labels = absent_labels(_unwrap(arg))
        out = VecBlock([labels], np.ones((1, self.steps)), ~any_present[None, :], np.ones(1, dtype=bool))
        return out.compact()

    def eval_label_function(self, call: Call) -> VecBlock:
        name = call.func.name
        strs = []
        for a in call.args[1:]:
            inner = _unwrap(a)
            assert isinstance(inner, StringLiteral)
            strs.append(inner.val)
        if name == "label_replace":
            from narthex.model.regex import RegexError, compile_regex

            dst, repl, src, pattern = strs
            try:
                regex = compile_regex(pattern)
            except RegexError:
                raise ExecutionError(f"invalid regular expression in label_replace(): {pattern}") from None
            if not is_valid_label_name(dst):
                raise ExecutionError(f"invalid destination label name in label_replace(): {dst}")
            block = self.eval_vec(call.args[0])
            labels = list(block.labels)
            drop = block.drop_name.copy()
            for i, lbls in enumerate(labels):
                d = dict(lbls)
                m = regex.fullmatch(d.get(src, ""))
                if m is None:
                    continue
                d[dst] = expand_template(repl, m)
                labels[i] = tuple(sorted((k, v) for k, v in d.items() if v != ""))
                if dst == METRIC_NAME:
                    drop[i] = False
            return merge_same_labels(VecBlock(labels, block.values, block.present, drop))
        dst, sep, *srcs = strs
        for s in srcs:
            if not is_valid_label_name(s):
                raise ExecutionError(f"invalid source label name in label_join(): {s}")
        if not is_valid_label_name(dst):
            raise ExecutionError(f"invalid destination label name in label_join(): {dst}")
        block = self.eval_vec(call.args[0])
        labels = list(block.labels)
        drop = block.drop_name.copy()
        for i, lbls in enumerate(labels):
            d = dict(lbls)
            d[dst] = sep.join(d.get(s, "") for s in srcs)
            labels[i] = tuple(sorted((k, v) for k, v in d.items() if v != ""))
            if dst == METRIC_NAME:
                drop[i] = False
        return merge_same_labels(VecBlock(labels, block.values, block.present, drop))

    def eval_sort(self, call: Call) -> VecBlock:
        name = call.func.name
        if self.start != self.end:
            self.q.annos.warn(
                "PromQL warning: sort is ineffective for range queries since results are always "
                "ordered by labels",
                call.pos,
            )
        block = self.eval_vec(call.args[0])
        if self.steps != 1 or len(block) == 0:
            return block
        rows = np.nonzero(block.present[:, 0])[0].tolist()
        vals = block.values[:, 0]
        if name in ("sort", "sort_desc"):
            desc = name == "sort_desc"

            def key(i: int) -> tuple[int, float]:
                v = float(vals[i])
                if v != v:
                    return (1, 0.0)
                return (0, -v if desc else v)

            rows.sort(key=key)
        else:
            names = []
            for a in call.args[1:]:
                inner = _unwrap(a)
                assert isinstance(inner, StringLiteral)
                names.append(inner.val)
            desc = name == "sort_by_label_desc"
            rows.sort(
                key=lambda i: (
                    tuple(natural_key(dict(block.labels[i]).get(n, "")) for n in names),
                    block.labels[i],
                ),
                reverse=desc,
            )
        out = block.select_rows(np.array(rows, dtype=np.int64))
        return out

    def eval_info(self, call: Call) -> VecBlock:
        """``info(v, [selector])``: adds the data labels of the info series matching each series."""
        block = self.eval_vec(call.args[0])
        at, offset = info_timestamp_and_offset(call.args[0])
        data_matchers: dict[str, list[Matcher]] = {}
        name_matchers: list[Matcher] = []
        if len(call.args) > 1:
            sel = _unwrap(call.args[1])
            assert isinstance(sel, VectorSelector)
            for m in sel.matchers:
                data_matchers.setdefault(m.name, []).append(m)
                if m.name == METRIC_NAME:
                    name_matchers.append(m)
        else:
            name_matchers = [Matcher(MatchType.EQUAL, METRIC_NAME, "target_info")]
        effective = effective_info_name_matchers(name_matchers)
        ignore = np.array(
            [all(m.matches(dict(lb).get(METRIC_NAME, "")) for m in effective) for lb in block.labels],
            dtype=bool,
        )
        id_values: dict[str, set[str]] = {}
        for i, lbls in enumerate(block.labels):
            if ignore[i]:
                continue
            d = dict(lbls)
            for name in ("instance", "job"):
                if d.get(name):
                    id_values.setdefault(name, set()).add(d[name])
        info_name_matchers = [m for ms in data_matchers.values() for m in ms if m.name == METRIC_NAME]
        other = [m for ms in data_matchers.values() for m in ms if m.name != METRIC_NAME]
        data_names = {k for k in data_matchers if k != METRIC_NAME}
        data_all = [m for k in data_names for m in data_matchers[k]]
        info_block = VecBlock.empty(self.steps)
        if id_values:
            matchers = [
                Matcher(MatchType.REGEX, name, "|".join(quote_meta(v) for v in sorted(vals)))
                for name, vals in id_values.items()
            ]
            matchers += other + effective_info_name_matchers(info_name_matchers)
            vs = VectorSelector("", tuple(matchers), offset_ms=offset, timestamp_ms=at)
            info_block = self.eval_vector_selector(vs)
        out = combine_info(block, info_block, ignore, data_names, all(m.matches("") for m in data_all))
        return merge_same_labels(out)


def _extend_floats(rb: RangeBlock, i: int) -> tuple[np.ndarray, np.ndarray] | None:
    """An anchored/smoothed range vector's samples at the first step (upstream's extendFloats)."""
    assert rb.lo_ext is not None and rb.hi_ext is not None
    a, b = int(rb.lo_ext[i, 0]), int(rb.hi_ext[i, 0])
    if b <= a:
        return None
    t = rb.t[a:b].tolist()
    v = rb.v[a:b].tolist()
    maxt = int(rb.ref[0])
    mint = maxt - rb.range_ms
    last = len(t) - 1
    first = next((k for k in range(last) if t[k] > mint), last) - 1
    first = max(first, 0)
    if rb.smoothed:
        last = next((k for k in range(last) if t[k] >= maxt), last)
    if t[last] <= mint:
        return None

    def interp(k1: int, k2: int, at: int) -> float:
        return v[k1] + (v[k2] - v[k1]) * (at - t[k1]) / (t[k2] - t[k1])

    left = interp(first, first + 1, mint) if rb.smoothed and t[first] < mint else v[first]
    right = interp(last - 1, last, maxt) if rb.smoothed and last > 0 and t[last] > maxt else v[last]
    if t[first] <= mint:
        first += 1
    if t[last] >= maxt:
        last -= 1
    ts = [mint, *t[first : last + 1], maxt]
    vs = [left, *v[first : last + 1], right]
    return np.array(ts, dtype=np.int64), np.array(vs)


# ---------------------------------------------------------------------------------------------
# Public API.


_GATE_POLL_S = 0.05  # how often a query waiting for a slot looks at its cancel event


class QueryGate:
    """At most ``max_concurrency`` queries evaluate at once (``--query.max-concurrency``); the others
    wait in line. Thread-safe; engines given the same gate share the limit."""

    def __init__(self, max_concurrency: int) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        self._slots = threading.BoundedSemaphore(max_concurrency)

    def acquire(self, deadline: float, cancel: threading.Event | None = None) -> None:
        """Wait for a slot until ``deadline`` (``time.monotonic()``); the wait counts against the
        query's timeout, and errors as upstream's context does (``context deadline exceeded``)."""
        while True:
            if cancel is not None and cancel.is_set():
                raise QueryCanceledError(message="context canceled")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QueryTimeoutError(message="context deadline exceeded")
            if self._slots.acquire(timeout=min(remaining, _GATE_POLL_S) if cancel is not None else remaining):
                return

    def release(self) -> None:
        self._slots.release()

    def has_free_slot(self) -> bool:
        """Whether a query could start now without waiting (a hint: others may take it first)."""
        if self._slots.acquire(blocking=False):
            self._slots.release()
            return True
        return False


class _ParseCache:
    """A bounded LRU of parsed trees by (text, parser features), shared by all engines (the API
    makes an engine per request with a custom timeout). Sharing is safe because trees are frozen
    dataclasses that nothing mutates: preprocessing and evaluation build new nodes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._trees: OrderedDict[tuple[str, frozenset[str]], Expr] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str, features: frozenset[str]) -> Expr | None:
        key = (text, features)
        with self._lock:
            tree = self._trees.get(key)
            if tree is not None:
                self._trees.move_to_end(key)
        return tree

    def put(self, text: str, features: frozenset[str], tree: Expr) -> None:
        with self._lock:
            self._trees[(text, features)] = tree
            while len(self._trees) > self.size:
                self._trees.popitem(last=False)


_PARSE_CACHE = _ParseCache(_PARSED_TEXTS)


class Engine:
    """Evaluates PromQL queries against a :class:`Queryable`.

    ``features`` holds Prometheus feature-flag names: parser features (``promql-experimental-functions``
    ...) and ``promql-delayed-name-removal``. ``max_concurrency`` (0: unlimited) bounds the queries
    evaluating at once, or ``gate`` shares one :class:`QueryGate` between engines; time spent
    waiting for a slot counts against ``timeout_s``.
    """

    def __init__(
        self,
        lookback_delta_ms: int = 300_000,
        max_samples: int = 50_000_000,
        timeout_s: float = 120,
        features: frozenset[str] = frozenset(),
        default_subquery_step_ms: int = 60_000,
        max_concurrency: int = 0,
        gate: QueryGate | None = None,
    ) -> None:
        if gate is None and max_concurrency > 0:
            gate = QueryGate(max_concurrency)
        self.gate = gate
        self.lookback_delta_ms = lookback_delta_ms or 300_000
        self.max_samples = max_samples
        self.timeout_s = timeout_s
        self.features = frozenset(features)
        self.default_subquery_step_ms = default_subquery_step_ms
        # Texts of recently parsed expressions, so that a tree from parse() passed back to a query
        # still gets annotation positions (keyed by identity; the tree is held to keep its id).
        self._texts: OrderedDict[int, tuple[Expr, str]] = OrderedDict()
        self._texts_lock = threading.Lock()
        self._parse_features = DEFAULT_FEATURES | self.features

    def parse(self, text: str) -> Expr:
        """Parse with the engine's features (cached, see :class:`_ParseCache`); the text is
        remembered for the tree's annotations."""
        features = self._parse_features
        tree = _PARSE_CACHE.get(text, features)
        if tree is None:
            try:
                tree = parse_expr(text, features=features)
            except ParseError as exc:
                raise BadDataError(str(exc)) from None
            _PARSE_CACHE.put(text, features, tree)
        with self._texts_lock:
            self._texts[id(tree)] = (tree, text)
            self._texts.move_to_end(id(tree))  # a cached tree is the newest again
            while len(self._texts) > _REMEMBERED_TEXTS:
                self._texts.popitem(last=False)
        return tree

    def _text_of(self, tree: Expr) -> str:
        with self._texts_lock:
            got = self._texts.get(id(tree))
        return got[1] if got is not None and got[0] is tree else ""

    def instant_query(
        self, storage: Queryable, expr: str | Expr, time_ms: int, *, cancel: threading.Event | None = None
    ) -> Result:
        """Evaluate ``expr`` at ``time_ms``; setting ``cancel`` aborts with QueryCanceledError."""
        return self._run(storage, expr, time_ms, time_ms, 0, cancel)

    def range_query(
        self,
        storage: Queryable,
        expr: str | Expr,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        *,
        cancel: threading.Event | None = None,
    ) -> Result:
        """Evaluate ``expr`` at ``start_ms, start_ms + step_ms, ... <= end_ms`` (a matrix result)."""
        if step_ms <= 0:
            raise BadDataError(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
            )
        if end_ms < start_ms:
            raise BadDataError("end timestamp must not be before start time")
        return self._run(storage, expr, start_ms, end_ms, step_ms, cancel)

    def _run(
        self,
        storage: Queryable,
        expr: str | Expr,
        start: int,
        end: int,
        step: int,
        cancel: threading.Event | None,
    ) -> Result:
        if isinstance(expr, str):
            text, tree = expr, self.parse(expr)
        else:
            text, tree = self._text_of(expr), expr
        is_range = step > 0
        if is_range and tree.type not in (ValueType.VECTOR, ValueType.SCALAR):
            raise BadDataError(
                f'invalid expression type "{tree.type.documented}" for range query, '
                "must be Scalar or instant Vector"
            )
        try:
            prepared = preprocess_expr(tree, start, end, step if is_range else 0)
        except PreprocessError as exc:
            raise BadDataError(str(exc)) from None
        deadline = time.monotonic() + self.timeout_s
        if self.gate is None:
            return self._exec(storage, prepared, text, start, end, step, is_range, deadline, cancel)
        waited = time.perf_counter()
        self.gate.acquire(deadline, cancel)
        waited = time.perf_counter() - waited
        try:
            result = self._exec(storage, prepared, text, start, end, step, is_range, deadline, cancel)
        finally:
            self.gate.release()
        result.queue_s = waited
        return result

    def _exec(
        self,
        storage: Queryable,
        prepared: Expr,
        text: str,
        start: int,
        end: int,
        step: int,
        is_range: bool,
        deadline: float,
        cancel: threading.Event | None,
    ) -> Result:
        query = _Query(
            storage=storage,
            lookback_ms=self.lookback_delta_ms,
            max_samples=self.max_samples,
            deadline=deadline,
            delayed=FEATURE_DELAYED_NAME_REMOVAL in self.features,
            subquery_step_ms=self.default_subquery_step_ms,
            query_start=start,
            query_end=end,
            cancel=cancel,
        )
        ev = Evaluator(query, start, end, step if is_range else 1)
        try:
            val = ev.eval(prepared)
        except PromQLError:
            raise
        except RecursionError:
            raise ExecutionError("expression nesting too deep") from None
        result = self._to_result(ev, val, is_range)
        warnings, infos = query.annos.strings(text)
        return Result(result, warnings, infos)

    def _cleanup(self, block: VecBlock, delayed: bool) -> VecBlock:
        if not delayed or not block.drop_name.any():
            return block
        labels = [
            drop_metadata(x) if d else x for x, d in zip(block.labels, block.drop_name.tolist(), strict=True)
        ]
        out = VecBlock(labels, block.values, block.present, np.zeros(len(labels), bool))
        return merge_same_labels(out)

    def _to_result(self, ev: Evaluator, val: object, is_range: bool) -> Matrix | Vector | Scalar | String:
        delayed = ev.q.delayed
        if isinstance(val, StringValue):
            return String(ev.start, val.value)
        if isinstance(val, ScalarBlock):
            if not is_range:
                return Scalar(ev.start, float(val.values[0]))
            return Matrix([Series((), ev.ts.copy(), val.values.astype(np.float64).copy())])
        if isinstance(val, RangeBlock):
            drop = val.drop_name
            out = []
            for i, lbls in enumerate(val.labels):
                name_lbls = drop_metadata(lbls) if delayed and drop[i] else lbls
                if val.anchored or val.smoothed:
                    pts = _extend_floats(val, i)
                    if pts is not None:
                        out.append(Series(name_lbls, pts[0], pts[1]))
                    continue
                a, b = int(val.lo[i, 0]), int(val.hi[i, 0])
                if b > a:
                    out.append(Series(name_lbls, val.t[a:b].copy(), val.v[a:b].copy()))
            return Matrix(out)
        assert isinstance(val, VecBlock)
        block = self._cleanup(val, delayed)
        if not is_range:
            at = ev.start
            vals = block.values[:, 0].tolist()
            pres = block.present[:, 0].tolist()
            return Vector(
                [Sample(lbls, at, v) for lbls, v, p in zip(block.labels, vals, pres, strict=True) if p]
            )
        series = []
        for i in range(len(block)):
            p = block.present[i]
            if p.any():
                series.append(Series(block.labels[i], ev.ts[p], block.values[i][p]))
        series.sort(key=lambda s: s.labels)
        return Matrix(series)
