"""Instant-vector functions (math, clamp, round, dates, label functions, histogram_quantile).

Each works on a whole :class:`VecBlock` (series x steps); per-step scalar arguments are (steps,)
arrays broadcast over the series axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable

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


def bucket_quantile(
    q: np.ndarray, bounds: np.ndarray, counts: np.ndarray, present: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantiles (steps,) of one classic histogram whose buckets ``bounds`` (sorted, unique) have
    ``counts``/``present`` (buckets x steps).

    Returns (quantile, result present, whether monotonicity had to be forced, per step).
    """
    nb, steps = counts.shape
    counts = np.where(present, counts, 0.0).copy()
    forced = np.zeros(steps, dtype=bool)
    prev = np.zeros(steps)
    have_prev = np.zeros(steps, dtype=bool)
    for i in range(nb):
        p = present[i]
        cur = counts[i]
        later = p & have_prev
        eq = cur == prev
        close = _almost_equal(prev, cur, 1e-12) & ~eq
        lower = (cur < prev) & ~close & ~eq
        counts[i] = np.where(later & (close | lower), prev, cur)
        forced |= later & lower
        update = p & (~have_prev | (~eq & ~close & ~lower))
        prev = np.where(update, cur, prev)
        have_prev |= p
    n_present = present.sum(axis=0)
    has_inf = present[-1] & np.isposinf(bounds[-1]) if nb else np.zeros(steps, dtype=bool)
    result = np.full(steps, np.nan)
    valid = has_inf & (n_present >= 2)
    obs = counts[-1] if nb else np.zeros(steps)
    with np.errstate(invalid="ignore", divide="ignore"):
        rank = q * obs
        # Index of the previous present bucket for each bucket and step (-1 when none).
        prev_idx = np.full((nb, steps), -1, dtype=np.int64)
        last_seen = np.full(steps, -1, dtype=np.int64)
        for i in range(nb):
            prev_idx[i] = last_seen
            last_seen = np.where(present[i], i, last_seen)
        cond = present[:-1] & (counts[:-1] >= rank[None, :])
        if nb > 1:
            b = np.where(cond.any(axis=0), np.argmax(cond, axis=0), nb - 1)
        else:
            b = np.zeros(steps, dtype=np.int64)
        cols = np.arange(steps)
        pb = prev_idx[b, cols]
        b_bound = bounds[b]
        pb_bound = np.where(pb >= 0, bounds[np.maximum(pb, 0)], 0.0)
        pb_count = np.where(pb >= 0, counts[np.maximum(pb, 0), cols], 0.0)
        start = np.where(pb >= 0, pb_bound, 0.0)
        count = counts[b, cols] - pb_count
        r = rank - pb_count
        interp = start + (b_bound - start) * (r / count)
        res = np.where(b == nb - 1, pb_bound, np.where((pb < 0) & (b_bound <= 0), b_bound, interp))
        res = np.where(obs == 0, np.nan, res)
        result = np.where(valid, res, np.nan)
        result = np.where(np.isnan(q), np.nan, np.where(q < 0, -np.inf, np.where(q > 1, np.inf, result)))
    out_present = n_present > 0
    return result, out_present, forced & valid


def format_openmetrics_float(value: float) -> str:
    """Go's labels.FormatOpenMetricsFloat (``1.0``, ``0.25``, ``1e-05``, ``+Inf``)."""
    text = format_float_g(value)
    if text in ("NaN", "+Inf", "-Inf") or "e" in text or "." in text:
        return text
    return text + ".0"


def _classic_groups(
    block: VecBlock, warn: list[str]
) -> list[tuple[Labels, np.ndarray, np.ndarray, np.ndarray]]:
    """Classic histograms in a vector: (labels without ``le``, sorted unique bounds, counts, present).

    Buckets with equal bounds are merged; series with a missing or malformed ``le`` are reported.
    """
    steps = block.values.shape[1]
    groups: dict[Labels, list[tuple[float, int]]] = {}
    for i, lbls in enumerate(block.labels):
        le_val = None
        for k, v in lbls:
            if k == "le":
                le_val = v
                break
        ub = parse_le(le_val) if le_val is not None else None
        if ub is None or math.isnan(ub):
            if ub is None and block.present[i].any():
                name = dict(lbls).get(METRIC_NAME, "")
                msg = (
                    'PromQL warning: bucket label "le" is missing or has a malformed value of '
                    f'"{le_val or ""}"'
                )
                if name:
                    msg += f' for metric name "{name}"'
                warn.append(msg)
            continue
        key = tuple(p for p in lbls if p[0] != "le")
        groups.setdefault(key, []).append((ub, i))
    out = []
    for key, members in groups.items():
        bounds_all = np.array([m[0] for m in members])
        rows = np.array([m[1] for m in members])
        uniq = np.unique(bounds_all)
        counts = np.zeros((len(uniq), steps))
        pres = np.zeros((len(uniq), steps), dtype=bool)
        pos = np.searchsorted(uniq, bounds_all)
        np.add.at(counts, pos, np.where(block.present[rows], block.values[rows], 0.0))
        np.logical_or.at(pres, pos, block.present[rows])
        out.append((key, uniq, counts, pres))
    return out


def _quantile_warnings(q: np.ndarray, warn: list[str]) -> None:
    seen: set[str] = set()
    for k in np.nonzero(np.isnan(q) | (q < 0) | (q > 1))[0].tolist():
        got = format_float_g(float(q[k]))
        msg = f"PromQL warning: quantile value should be between 0 and 1, got {got}"
        if msg not in seen:
            seen.add(msg)
            warn.append(msg)


def _monotonicity_info(key: Labels, info: list[str]) -> None:
    name = dict(key).get(METRIC_NAME, "")
    msg = (
        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity "
        "(see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)"
    )
    if name:
        msg += f' for metric name "{name}"'
    info.append(msg)


def _vec(labels: list[Labels], vals: list[np.ndarray], pres: list[np.ndarray], steps: int) -> VecBlock:
    if not labels:
        return VecBlock.empty(steps)
    return VecBlock(labels, np.array(vals), np.array(pres), np.ones(len(labels), dtype=bool))


def histogram_quantile(q: np.ndarray, block: VecBlock, warn: list[str], info: list[str]) -> VecBlock:
    """``histogram_quantile(q, buckets)`` for classic (``le``-labelled) histograms."""
    steps = block.values.shape[1]
    _quantile_warnings(q, warn)
    labels, vals, pres = [], [], []
    for key, bounds, counts, present in _classic_groups(block, warn):
        res, rp, forced = bucket_quantile(q, bounds, counts, present)
        if forced.any():
            _monotonicity_info(key, info)
        labels.append(key)
        vals.append(res)
        pres.append(rp)
    return _vec(labels, vals, pres, steps)


def histogram_quantiles(
    block: VecBlock, label: str, qs: list[np.ndarray], warn: list[str], info: list[str]
) -> VecBlock:
    """``histogram_quantiles(v, "label", q...)``: one series per histogram and quantile."""
    steps = block.values.shape[1]
    for q in qs:
        _quantile_warnings(q, warn)
    groups = _classic_groups(block, warn)
    labels, vals, pres = [], [], []
    for q in qs:
        for key, bounds, counts, present in groups:
            res, rp, forced = bucket_quantile(q, bounds, counts, present)
            if forced.any():
                _monotonicity_info(key, info)
            d = dict(key)
            d[label] = format_openmetrics_float(float(q[0]))
            labels.append(tuple(sorted(d.items())))
            vals.append(res)
            pres.append(rp)
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


def histogram_fraction(lower: np.ndarray, upper: np.ndarray, block: VecBlock, warn: list[str]) -> VecBlock:
    """``histogram_fraction(lower, upper, buckets)`` for classic histograms."""
    steps = block.values.shape[1]
    labels, vals, pres = [], [], []
    for key, bounds, counts, present in _classic_groups(block, warn):
        labels.append(key)
        vals.append(bucket_fraction(lower, upper, bounds, counts, present))
        pres.append(present.any(axis=0))
    return _vec(labels, vals, pres, steps)
