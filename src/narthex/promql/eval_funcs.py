"""Instant-vector functions (math, clamp, round, dates, label functions, histogram_quantile).

Each works on a whole :class:`VecBlock` (series x steps); per-step scalar arguments are (steps,)
arrays broadcast over the series axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from narthex.model.labels import METRIC_NAME, Labels
from narthex.model.matcher import MatchType
from narthex.promql.ast import Expr, MatrixSelector, VectorSelector
from narthex.promql.printer import format_float_g
from narthex.promql.value import VecBlock

_MATH: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "rad": lambda v: v * (math.pi / 180),
    "deg": lambda v: v * (180 / math.pi),
    "sgn": lambda v: np.where(v < 0, -1.0, np.where(v > 0, 1.0, v)),
}


def math_function(name: str, values: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return _MATH[name](values)


def has_math_function(name: str) -> bool:
    return name in _MATH


def round_values(values: np.ndarray, to_nearest: np.ndarray) -> np.ndarray:
    """``round(v, to_nearest)``: ties round up, computed with the inverse as upstream."""
    with np.errstate(all="ignore"):
        inv = 1.0 / to_nearest[None, :]
        return np.floor(values * inv + 0.5) / inv


def clamp(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(clamped values, steps where the result exists: min <= max)."""
    with np.errstate(invalid="ignore"):
        out = np.fmax(lo[None, :], np.fmin(hi[None, :], values))
        # Go's math.Max/Min propagate NaN.
        out = np.where(np.isnan(values) | np.isnan(lo)[None, :] | np.isnan(hi)[None, :], np.nan, out)
    return out, ~(hi < lo)


# ---------------------------------------------------------------------------------------------
# Date functions.


def date_function(name: str, seconds: np.ndarray) -> np.ndarray:
    """Calendar fields (UTC) of Unix times given in seconds (truncated towards zero)."""
    finite = np.isfinite(seconds)
    secs = np.where(finite, np.trunc(np.where(finite, seconds, 0)), 0).astype(np.int64)
    dt = secs.astype("datetime64[s]")
    days = dt.astype("datetime64[D]")
    months = dt.astype("datetime64[M]")
    years = dt.astype("datetime64[Y]")
    if name == "year":
        out = years.astype(np.int64) + 1970
    elif name == "month":
        out = months.astype(np.int64) % 12 + 1
    elif name == "day_of_month":
        out = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    elif name == "day_of_year":
        out = (days - years.astype("datetime64[D]")).astype(np.int64) + 1
    elif name == "day_of_week":
        out = (days.astype(np.int64) + 4) % 7
    elif name == "hour":
        out = (secs // 3600) % 24
    elif name == "minute":
        out = (secs // 60) % 60
    elif name == "days_in_month":
        nxt = (months + 1).astype("datetime64[D]")
        out = (nxt - months.astype("datetime64[D]")).astype(np.int64)
    else:
        raise ValueError(name)
    return np.where(finite, out.astype(np.float64), np.nan)


# ---------------------------------------------------------------------------------------------
# absent().


def absent_labels(expr: Expr) -> Labels:
    """Labels of absent()/absent_over_time() output: the argument's equality matchers."""
    while True:
        if isinstance(expr, MatrixSelector):
            expr = expr.vector_selector
            continue
        break
    if not isinstance(expr, VectorSelector):
        return ()
    out: dict[str, str] = {}
    has: set[str] = set()
    for m in expr.matchers:
        if m.name == METRIC_NAME:
            continue
        if m.type is MatchType.EQUAL and m.name not in has:
            out[m.name] = m.value
            has.add(m.name)
        else:
            out.pop(m.name, None)
    return tuple(sorted((k, v) for k, v in out.items() if v != ""))


# ---------------------------------------------------------------------------------------------
# histogram_quantile over classic buckets.


def _almost_equal(a: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    min_normal = 2.2250738585072014e-308
    with np.errstate(invalid="ignore", over="ignore"):
        abs_sum = np.abs(a) + np.abs(b)
        diff = np.abs(a - b)
        zeroish = (a == 0) | (b == 0) | (abs_sum < min_normal)
        rel = diff / np.minimum(abs_sum, np.finfo(np.float64).max)
        res = np.where(zeroish, diff < eps * min_normal, rel < eps)
        res = res | (a == b) | (np.isnan(a) & np.isnan(b))
    return res


def parse_le(text: str) -> float | None:
    """A bucket's upper bound as Go's strconv.ParseFloat reads it, or None."""
    t = text.strip() if text.strip() == text else None
    if t is None or t == "":
        return None
    low = t.lower()
    for prefix in ("+", "-", ""):
        if low in (prefix + "inf", prefix + "infinity"):
            return -math.inf if prefix == "-" else math.inf
    if low.lstrip("+-") == "nan":
        return math.nan
    try:
        if "_" in t:
            return None
        return float(t) if not low.startswith(("0x", "-0x", "+0x")) else float.fromhex(t)
    except ValueError:
        return None


class Forced(NamedTuple):
    """Per step: whether bucket counts had to be made monotonic, the lowest and highest upper bound
    of a corrected bucket and the largest correction."""

    forced: np.ndarray
    min_bucket: np.ndarray
    max_bucket: np.ndarray
    max_diff: np.ndarray


class ForcedMonotonicity(NamedTuple):
    """A forced-monotonicity info merged over steps: message, step count and time/bucket ranges."""

    msg: str
    count: int
    min_ts: int
    max_ts: int
    min_bucket: float
    max_bucket: float
    max_diff: float


def bucket_quantile(
    q: np.ndarray, bounds: np.ndarray, counts: np.ndarray, present: np.ndarray
) -> tuple[np.ndarray, np.ndarray, Forced]:
    """Quantiles of classic histograms, all at once: histogram ``g`` has buckets ``bounds[g]``
    (ascending; leading absent buckets pad shorter histograms) with ``counts``/``present``
    (histograms x buckets x steps); ``q`` is per step.

    Returns (quantiles, result present, where and how monotonicity had to be forced), each
    (histograms x steps), as upstream's BucketQuantile on the present buckets of each step.
    """
    ng, nb, steps = counts.shape
    counts = np.where(present, counts, 0.0)
    forced = np.zeros((ng, steps), dtype=bool)
    min_b = np.full((ng, steps), np.inf)
    max_b = np.full((ng, steps), -np.inf)
    max_diff = np.zeros((ng, steps))
    prev = np.zeros((ng, steps))
    have_prev = np.zeros((ng, steps), dtype=bool)
    for i in range(nb):
        p = present[:, i]
        cur = counts[:, i]
        later = p & have_prev
        eq = cur == prev
        close = _almost_equal(prev, cur, 1e-12) & ~eq
        lower = (cur < prev) & ~close & ~eq
        fix = later & lower
        if fix.any():
            forced |= fix
            ub = bounds[:, i, None]
            min_b = np.where(fix, np.minimum(min_b, ub), min_b)
            max_b = np.where(fix, np.maximum(max_b, ub), max_b)
            max_diff = np.where(fix, np.maximum(max_diff, prev - cur), max_diff)
        counts[:, i] = np.where(later & (close | lower), prev, cur)
        update = p & (~have_prev | (~eq & ~close & ~lower))
        prev = np.where(update, cur, prev)
        have_prev |= p
    n_present = present.sum(axis=1)
    if nb:
        has_inf = present[:, -1] & np.isposinf(bounds[:, -1])[:, None]
    else:
        has_inf = np.zeros((ng, steps), dtype=bool)
    valid = has_inf & (n_present >= 2)
    obs = counts[:, -1] if nb else np.zeros((ng, steps))
    with np.errstate(invalid="ignore", divide="ignore"):
        rank = q[None, :] * obs
        # Index of the previous present bucket for each bucket and step (-1 when none).
        prev_idx = np.full((ng, nb, steps), -1, dtype=np.int64)
        last_seen = np.full((ng, steps), -1, dtype=np.int64)
        for i in range(nb):
            prev_idx[:, i] = last_seen
            last_seen = np.where(present[:, i], i, last_seen)
        if nb > 1:
            cond = present[:, :-1] & (counts[:, :-1] >= rank[:, None, :])
            b = np.where(cond.any(axis=1), np.argmax(cond, axis=1), nb - 1)
        else:
            b = np.zeros((ng, steps), dtype=np.int64)

        def at(arr: np.ndarray, idx: np.ndarray) -> np.ndarray:
            return np.take_along_axis(arr, idx[:, None, :], axis=1)[:, 0, :]

        pb = at(prev_idx, b) if nb else np.full((ng, steps), -1, dtype=np.int64)
        pb0 = np.maximum(pb, 0)
        b_bound = np.take_along_axis(bounds, b, axis=1) if nb else np.zeros((ng, steps))
        pb_bound = np.where(pb >= 0, np.take_along_axis(bounds, pb0, axis=1), 0.0) if nb else b_bound
        pb_count = np.where(pb >= 0, at(counts, pb0), 0.0) if nb else b_bound
        start = np.where(pb >= 0, pb_bound, 0.0)
        count = (at(counts, b) if nb else b_bound) - pb_count
        r = rank - pb_count
        interp = start + (b_bound - start) * (r / count)
        res = np.where(b == nb - 1, pb_bound, np.where((pb < 0) & (b_bound <= 0), b_bound, interp))
        res = np.where(obs == 0, np.nan, res)
        result = np.where(valid, res, np.nan)
        qb = q[None, :]
        result = np.where(np.isnan(qb), np.nan, np.where(qb < 0, -np.inf, np.where(qb > 1, np.inf, result)))
        applies = valid & (qb >= 0) & (qb <= 1)
    return result, n_present > 0, Forced(forced & applies, min_b, max_b, max_diff)


def format_openmetrics_float(value: float) -> str:
    """Go's labels.FormatOpenMetricsFloat (``1.0``, ``0.25``, ``1e-05``, ``+Inf``)."""
    text = format_float_g(value)
    if text in ("NaN", "+Inf", "-Inf") or "e" in text or "." in text:
        return text
    return text + ".0"


class ClassicHistograms(NamedTuple):
    """The classic histograms of a vector, batched: labels (without ``le``) per histogram, bucket
    bounds (histograms x buckets, ascending, padded in front with absent buckets) and bucket
    counts/presence (histograms x buckets x steps)."""

    labels: list[Labels]
    bounds: np.ndarray
    counts: np.ndarray
    present: np.ndarray


def _classic_groups(block: VecBlock, warn: list[str], delayed: bool) -> ClassicHistograms:
    """Group the ``le``-labelled series of a vector into histograms, in order of first appearance.

    Buckets with equal bounds are merged; series with a missing or malformed ``le`` are reported
    (naming the metric only with delayed name removal, as upstream).
    """
    steps = block.values.shape[1]
    gid_of: dict[Labels, int] = {}
    parsed: dict[str, float | None] = {}
    rows: list[int] = []
    gids: list[int] = []
    ubs: list[float] = []
    for i, lbls in enumerate(block.labels):
        le_val = None
        for k, v in lbls:
            if k == "le":
                le_val = v
                break
        if le_val is None:
            ub = None
        elif le_val in parsed:
            ub = parsed[le_val]
        else:
            ub = parsed[le_val] = parse_le(le_val)
        if ub is None or ub != ub:
            if ub is None and block.present[i].any():
                name = dict(lbls).get(METRIC_NAME, "") if delayed else ""
                msg = (
                    'PromQL warning: bucket label "le" is missing or has a malformed value of '
                    f'"{le_val or ""}"'
                )
                if name:
                    msg += f' for metric name "{name}"'
                warn.append(msg)
            continue
        key = tuple(p for p in lbls if p[0] != "le")
        gid = gid_of.setdefault(key, len(gid_of))
        rows.append(i)
        gids.append(gid)
        ubs.append(ub)
    ng = len(gid_of)
    if not ng:
        return ClassicHistograms([], np.zeros((0, 0)), np.zeros((0, 0, steps)), np.zeros((0, 0, steps), bool))
    row_a = np.array(rows, dtype=np.int64)
    gid_a = np.array(gids, dtype=np.int64)
    ub_a = np.array(ubs, dtype=np.float64)
    order = np.lexsort((ub_a, gid_a))
    row_a, gid_a, ub_a = row_a[order], gid_a[order], ub_a[order]
    # Position of each (histogram, bound) pair among its histogram's distinct bounds.
    new_pair = np.ones(len(row_a), dtype=bool)
    new_pair[1:] = (gid_a[1:] != gid_a[:-1]) | (ub_a[1:] != ub_a[:-1])
    pair_no = np.cumsum(new_pair) - 1
    first_pair = np.zeros(ng, dtype=np.int64)
    nbuckets = np.bincount(gid_a[new_pair], minlength=ng)
    first_pair[1:] = np.cumsum(nbuckets)[:-1]
    width = int(nbuckets.max())
    pos = pair_no - first_pair[gid_a] + (width - nbuckets[gid_a])
    bounds = np.full((ng, width), -np.inf)
    bounds[gid_a, pos] = ub_a
    counts = np.zeros((ng, width, steps))
    present = np.zeros((ng, width, steps), dtype=bool)
    vals = np.where(block.present[row_a], block.values[row_a], 0.0)
    if new_pair.all():
        counts[gid_a, pos] = vals + 0.0
        present[gid_a, pos] = block.present[row_a]
    else:
        np.add.at(counts, (gid_a, pos), vals)
        np.logical_or.at(present, (gid_a, pos), block.present[row_a])
    return ClassicHistograms(list(gid_of), bounds, counts, present)


def _quantile_warnings(q: np.ndarray, warn: list[str]) -> None:
    seen: set[str] = set()
    for k in np.nonzero(np.isnan(q) | (q < 0) | (q > 1))[0].tolist():
        got = format_float_g(float(q[k]))
        msg = f"PromQL warning: quantile value should be between 0 and 1, got {got}"
        if msg not in seen:
            seen.add(msg)
            warn.append(msg)


def _monotonicity_infos(
    hists: ClassicHistograms, fx: Forced, ts: np.ndarray, delayed: bool, info: list[ForcedMonotonicity]
) -> None:
    """Report the histograms whose buckets had to be made monotonic (merged over their steps)."""
    hit = np.nonzero(fx.forced.any(axis=1))[0]
    if not hit.size:
        return
    msg = (
        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity "
        "(see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)"
    )
    for g in hit.tolist():
        name = dict(hists.labels[g]).get(METRIC_NAME, "") if delayed else ""
        f = fx.forced[g]
        steps_ts = np.broadcast_to(ts, f.shape)[f]
        info.append(
            ForcedMonotonicity(
                msg + (f' for metric name "{name}"' if name else ""),
                int(f.sum()),
                int(steps_ts.min()),
                int(steps_ts.max()),
                float(fx.min_bucket[g][f].min()),
                float(fx.max_bucket[g][f].max()),
                float(fx.max_diff[g][f].max()),
            )
        )


def _vec(labels: list[Labels], vals: list[np.ndarray], pres: list[np.ndarray], steps: int) -> VecBlock:
    if not labels:
        return VecBlock.empty(steps)
    return VecBlock(labels, np.array(vals), np.array(pres), np.ones(len(labels), dtype=bool))


def histogram_quantile(
    q: np.ndarray,
    block: VecBlock,
    ts: np.ndarray,
    delayed: bool,
    warn: list[str],
    info: list[ForcedMonotonicity],
) -> VecBlock:
    """``histogram_quantile(q, buckets)`` for classic (``le``-labelled) histograms at steps ``ts``."""
    steps = block.values.shape[1]
    _quantile_warnings(q, warn)
    hists = _classic_groups(block, warn, delayed)
    if not hists.labels:
        return VecBlock.empty(steps)
    res, rp, forced = bucket_quantile(q, hists.bounds, hists.counts, hists.present)
    _monotonicity_infos(hists, forced, ts, delayed, info)
    return VecBlock(list(hists.labels), res, rp, np.ones(len(hists.labels), dtype=bool))


def histogram_quantiles(
    block: VecBlock,
    label: str,
    qs: list[np.ndarray],
    ts: np.ndarray,
    delayed: bool,
    warn: list[list[str]],
    info: list[ForcedMonotonicity],
) -> VecBlock:
    """``histogram_quantiles(v, "label", q...)``: one series per histogram and quantile.

    ``warn`` gets one list per quantile argument (their positions differ) and then one for ``v``.
    """
    steps = block.values.shape[1]
    for q, w in zip(qs, warn, strict=False):
        _quantile_warnings(q, w)
    hists = _classic_groups(block, warn[-1], delayed)
    labels, vals, pres = [], [], []
    for q in qs:
        if not hists.labels:
            continue
        res, rp, forced = bucket_quantile(q, hists.bounds, hists.counts, hists.present)
        _monotonicity_infos(hists, forced, ts, delayed, info)
        qlabel = format_openmetrics_float(float(q[0]))
        for g, key in enumerate(hists.labels):
            d = dict(key)
            d[label] = qlabel
            labels.append(tuple(sorted(d.items())))
            vals.append(res[g])
            pres.append(rp[g])
    return _vec(labels, vals, pres, steps)


def _interp_rank(v: np.ndarray, lb: np.ndarray, ub: float, rank: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The rank of ``v`` inside bucket (lb, ub] by linear interpolation (all of it when lb is -Inf)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isneginf(lb), count, rank + (count - rank) * (v - lb) / (ub - lb))


def bucket_fraction(
    lower: np.ndarray, upper: np.ndarray, bounds: np.ndarray, counts: np.ndarray, present: np.ndarray
) -> np.ndarray:
    """Estimated fraction of observations between ``lower`` and ``upper`` (upstream's BucketFraction),
    per step, for one classic histogram."""
    nb, steps = counts.shape
    total = np.where(present[-1], counts[-1], 0.0)
    rank = np.zeros(steps)
    lower_rank = np.zeros(steps)
    upper_rank = np.zeros(steps)
    lset = np.zeros(steps, dtype=bool)
    uset = np.zeros(steps, dtype=bool)
    prev_bound = np.zeros(steps)
    has_prev = np.zeros(steps, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(nb):
            ub = float(bounds[i])
            c = counts[i]
            p = present[i] & ~(lset & uset)
            lb = np.where(has_prev, prev_bound, -np.inf if ub <= 0 else 0.0)
            hit = p & ~lset & (lb >= lower)
            lower_rank = np.where(hit, rank, lower_rank)
            lset |= hit
            hit = p & ~uset & (lb >= upper)
            upper_rank = np.where(hit, rank, upper_rank)
            uset |= hit
            p &= ~(lset & uset)

            hit = p & ~lset & (lb < lower) & (ub > lower)
            lower_rank = np.where(hit, _interp_rank(lower, lb, ub, rank, c), lower_rank)
            lset |= hit
            hit = p & ~uset & (lb < upper) & (ub > upper)
            upper_rank = np.where(hit, _interp_rank(upper, lb, ub, rank, c), upper_rank)
            uset |= hit
            p &= ~(lset & uset)
            rank = np.where(p, c, rank)
            prev_bound = np.where(present[i], ub, prev_bound)
            has_prev |= present[i]
        lower_rank = np.where(~lset | (lower_rank > total), total, lower_rank)
        upper_rank = np.where(~uset | (upper_rank > total), total, upper_rank)
        res = (upper_rank - lower_rank) / total
    res = np.where(lower >= upper, 0.0, res)
    res = np.where((total == 0) | np.isnan(lower) | np.isnan(upper), np.nan, res)
    has_inf = present[-1] & bool(np.isposinf(bounds[-1]))
    return np.where(has_inf, res, np.nan)


def histogram_fraction(
    lower: np.ndarray, upper: np.ndarray, block: VecBlock, delayed: bool, warn: list[str]
) -> VecBlock:
    """``histogram_fraction(lower, upper, buckets)`` for classic histograms."""
    steps = block.values.shape[1]
    labels, vals, pres = [], [], []
    hists = _classic_groups(block, warn, delayed)
    for g, key in enumerate(hists.labels):
        present = hists.present[g]
        labels.append(key)
        vals.append(bucket_fraction(lower, upper, hists.bounds[g], hists.counts[g], present))
        pres.append(present.any(axis=0))
    return _vec(labels, vals, pres, steps)
