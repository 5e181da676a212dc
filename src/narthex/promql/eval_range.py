"""Range-vector functions (rate, *_over_time, deriv...) computed for every series and step at once.

Every function takes a :class:`RangeBlock` (flattened samples, per-step windows ``lo:hi``) and returns
``(values, present)`` matrices of shape (series x steps). Window statistics use cumulative sums,
``ufunc.reduceat`` or a loop over the position inside the window (vectorised over all windows), so
no Python code runs per series per step.
"""

from __future__ import annotations

import math

import numpy as np

from narthex.promql.value import RangeBlock


def kahan_inc(inc: np.ndarray, total: np.ndarray, comp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Neumaier-compensated addition, elementwise (upstream's kahansum.Inc)."""
    with np.errstate(invalid="ignore", over="ignore"):
        t = total + inc
        big = np.abs(total) >= np.abs(inc)
        c = comp + np.where(big, (total - t) + inc, (inc - t) + total)
        c = np.where(np.isinf(t), 0.0, c)
    return t, c


def window_reduce(ufunc: np.ufunc, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``ufunc.reduce(v[lo:hi])`` for every window (garbage where the window is empty)."""
    shape = lo.shape
    lo_f = lo.ravel()
    hi_f = hi.ravel()
    if lo_f.size == 0:
        return np.zeros(shape)
    v2 = np.append(v, 0.0)
    idx = np.empty(2 * lo_f.size, dtype=np.int64)
    idx[0::2] = lo_f
    idx[1::2] = hi_f
    return ufunc.reduceat(v2, idx)[0::2].reshape(shape)


def _cum_window(flags: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sum of ``flags[i]`` for ``lo < i < hi`` (pairs inside the window), via a cumulative sum."""
    cs = np.concatenate(([0.0], np.cumsum(flags)))
    # flags[i] for i in [lo+1, hi): cs[hi] - cs[lo+1]
    a = np.minimum(lo + 1, hi)
    return cs[hi] - cs[a]


def _pair_flags(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (previous value, whether a previous sample exists in the same series)."""
    v = rb.v
    prev = np.empty_like(v)
    if v.size:
        prev[1:] = v[:-1]
        prev[0] = np.nan
    has_prev = np.ones(v.size, dtype=bool)
    starts = rb.offsets[:-1]
    has_prev[starts[starts < v.size]] = False
    return prev, has_prev


def _st_flags(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray] | None:
    """Per sample: (counter reset signalled by the start timestamps, start time overlapping the
    previous sample), or None without start timestamps (upstream's isStartTimestampReset and
    checkStartTimeOverlap; 0 is an unknown start timestamp)."""
    if rb.st is None:
        return None
    st, t = rb.st, rb.t
    _, has_prev = _pair_flags(rb)
    prev_st = np.zeros_like(st)
    prev_t = np.zeros_like(t)
    if st.size:
        prev_st[1:] = st[:-1]
        prev_t[1:] = t[:-1]
    known = st != 0
    reset = (
        has_prev
        & known
        & (st < t)
        & (st >= prev_t)
        & ((st > prev_t) | ((prev_st <= prev_t) & (prev_st != 0) & (prev_st != prev_t)))
    )
    overlap = has_prev & known & (st < prev_t) & (st != prev_st)
    return reset, overlap


def start_time_overlaps(rb: RangeBlock) -> np.ndarray:
    """Per series: the number of windows holding a sample whose start time overlaps the previous one."""
    flags = _st_flags(rb)
    if flags is None:
        return np.zeros(len(rb.labels), dtype=np.int64)
    hits = _cum_window(flags[1].astype(np.float64), rb.lo, rb.hi)
    return (hits > 0).sum(axis=1)


def _masked(values: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.where(present, values, 0.0), present


def count_over_time(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    n = rb.hi - rb.lo
    return n.astype(np.float64), n > 0


def present_over_time(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    n = rb.hi - rb.lo
    return np.ones(n.shape), n > 0


def last_over_time(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    n = rb.hi - rb.lo
    idx = np.maximum(rb.hi - 1, 0)
    return _masked(_take(rb.v, idx), n > 0)


def first_over_time(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    n = rb.hi - rb.lo
    return _masked(_take(rb.v, rb.lo), n > 0)


def ts_of_last_over_time(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    n = rb.hi - rb.lo
    return _masked(_take(rb.t, np.maximum(rb.hi - 1, 0)) / 1000.0, n > 0)


def ts_of_first_over_time(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    n = rb.hi - rb.lo
    return _masked(_take(rb.t, rb.lo) / 1000.0, n > 0)


def _take(arr: np.ndarray, idx: np.ndarray) -> np.ndarray:
    if arr.size == 0:
        return np.zeros(idx.shape, dtype=np.float64)
    return arr[np.clip(idx, 0, arr.size - 1)].astype(np.float64)


def _extreme(rb: RangeBlock, want_max: bool) -> tuple[np.ndarray, np.ndarray]:
    """max/min over time: NaN only when every value is NaN (upstream replaces a NaN running value)."""
    n = rb.hi - rb.lo
    ufunc = np.fmax if want_max else np.fmin
    vals = window_reduce(ufunc, rb.v, rb.lo, rb.hi)
    return _masked(vals, n > 0)


def max_over_time(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    return _extreme(rb, True)


def min_over_time(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    return _extreme(rb, False)


class _Windows:
    """The non-empty windows sorted by length (longest first), so that the windows still holding a
    sample at position j form a prefix: loops over positions then touch each sample once."""

    def __init__(self, rb: RangeBlock) -> None:
        n = (rb.hi - rb.lo).ravel()
        nz = np.nonzero(n > 0)[0]
        order = nz[np.argsort(-n[nz], kind="stable")]
        self.shape = rb.lo.shape
        self.ids = order
        self.n = n[order]
        self.lo = rb.lo.ravel()[order]
        self.maxlen = int(self.n[0]) if len(order) else 0
        self.active = np.searchsorted(-self.n, -np.arange(self.maxlen), side="left")
        self.rb = rb

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self):  # type: ignore[no-untyped-def]
        """Yield (j, k, sample index) with the first k windows having a j-th sample."""
        for j in range(self.maxlen):
            k = int(self.active[j])
            yield j, k, self.lo[:k] + j

    def first(self, arr: np.ndarray) -> np.ndarray:
        return arr[self.lo].astype(np.float64)

    def scatter(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values, present) in (series x steps) shape."""
        out = np.zeros(int(np.prod(self.shape)))
        out[self.ids] = values
        pres = np.zeros(out.size, dtype=bool)
        pres[self.ids] = True
        return out.reshape(self.shape), pres.reshape(self.shape)


def _ts_of_extreme(rb: RangeBlock, want_max: bool) -> tuple[np.ndarray, np.ndarray]:
    """Timestamp of the last sample holding the max/min (a NaN start is replaced, as upstream)."""
    w = _Windows(rb)
    best_all, _ = _extreme(rb, want_max)
    best = best_all.ravel()[w.ids]
    ts = np.zeros(len(w))
    for _, k, idx in w.positions():
        val = rb.v[idx]
        b = best[:k]
        hit = (val == b) | (np.isnan(b) & np.isnan(val))
        ts[:k] = np.where(hit, rb.t[idx] / 1000.0, ts[:k])
    return w.scatter(ts)


def ts_of_max_over_time(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    return _ts_of_extreme(rb, True)


def ts_of_min_over_time(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    return _ts_of_extreme(rb, False)


def _kahan_sums(w: _Windows, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    total = np.zeros(len(w))
    comp = np.zeros(len(w))
    for _, k, idx in w.positions():
        total[:k], comp[:k] = kahan_inc(v[idx], total[:k], comp[:k])
    return total, comp


def _fast_sums(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    """(plain window sums, whether each equals the compensated sum to ~1e-12 relative).

    Sums of integers below 2**53 are exact; otherwise a sequential sum differs from the Kahan sum by at
    most ``n * eps * sum(|v|)``. Windows where that is not negligible (cancellation, non-finite
    values) need the compensated loop.
    """
    n = rb.hi - rb.lo
    with np.errstate(invalid="ignore", over="ignore"):
        plain = window_reduce(np.add, rb.v, rb.lo, rb.hi)
        absum = window_reduce(np.add, np.abs(rb.v), rb.lo, rb.hi)
        fractional = window_reduce(np.add, (rb.v != np.floor(rb.v)).astype(np.float64), rb.lo, rb.hi)
        exact = (fractional == 0) & (absum < 2.0**53)
        ok = np.isfinite(absum) & (exact | (n * 2.3e-16 * absum <= 1e-12 * np.abs(plain)))
    return plain, ok | (n <= 1)


def _compensated(rb: RangeBlock, need: np.ndarray, fn) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Run a per-window loop function only on the windows in ``need`` (a (series x steps) mask)."""
    sub = RangeBlock(
        rb.labels, rb.t, rb.v, rb.offsets, np.where(need, rb.lo, 0), np.where(need, rb.hi, 0),
        rb.ref, rb.range_ms, rb.drop_name,
    )  # fmt: skip
    return fn(sub)


def _kahan_sum_loop(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    w = _Windows(rb)
    total, comp = _kahan_sums(w, rb.v)
    with np.errstate(invalid="ignore"):
        return w.scatter(total + comp)


def sum_over_time(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    n = rb.hi - rb.lo
    plain, ok = _fast_sums(rb)
    if not ok.all():
        slow, _ = _compensated(rb, ~ok, _kahan_sum_loop)
        plain = np.where(ok, plain, slow)
    return _masked(plain, n > 0)


def avg_over_time(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    n = rb.hi - rb.lo
    plain, ok = _fast_sums(rb)
    with np.errstate(invalid="ignore", divide="ignore"):
        result = plain / np.maximum(n, 1)
    if not ok.all():
        slow, _ = _compensated(rb, ~ok, _avg_loop)
        result = np.where(ok, result, slow)
    return _masked(result, n > 0)


def _avg_loop(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    """Kahan sum divided by the count, switching to an incremental mean on overflow."""
    w = _Windows(rb)
    m = len(w)
    total = np.zeros(m)
    comp = np.zeros(m)
    mean = np.zeros(m)
    incremental = np.zeros(m, dtype=bool)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for j, k, idx in w.positions():
            f = rb.v[idx]
            if j == 0:
                total[:k] = f
                continue
            count = float(j + 1)
            t_k, c_k, m_k, inc_k = total[:k], comp[:k], mean[:k], incremental[:k]
            ns, nc = kahan_inc(f, t_k, c_k)
            overflow = ~inc_k & np.isinf(ns)
            ok = ~inc_k & ~overflow
            t_new = np.where(ok, ns, t_k)
            c_new = np.where(ok, nc, c_k)
            m_new = np.where(overflow, t_new / (count - 1), m_k)
            c_new = np.where(overflow, c_new / (count - 1), c_new)
            inc_new = inc_k | overflow
            q = (count - 1) / count
            nm, nc2 = kahan_inc(f / count, q * m_new, q * c_new)
            total[:k] = t_new
            mean[:k] = np.where(inc_new, nm, m_new)
            comp[:k] = np.where(inc_new, nc2, c_new)
            incremental[:k] = inc_new
        cnt = w.n.astype(np.float64)
        result = np.where(incremental, mean + comp, total / cnt + comp / cnt)
    return w.scatter(result)


def _variance(rb: RangeBlock) -> tuple[_Windows, np.ndarray]:
    """Welford's algorithm with compensated sums, as upstream's stdvar_over_time."""
    w = _Windows(rb)
    m = len(w)
    mean = np.zeros(m)
    cmean = np.zeros(m)
    aux = np.zeros(m)
    caux = np.zeros(m)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for j, k, idx in w.positions():
            f = rb.v[idx]
            count = float(j + 1)
            delta = f - (mean[:k] + cmean[:k])
            mean[:k], cmean[:k] = kahan_inc(delta / count, mean[:k], cmean[:k])
            new_delta = f - (mean[:k] + cmean[:k])
            aux[:k], caux[:k] = kahan_inc(delta * new_delta, aux[:k], caux[:k])
        var = (aux + caux) / w.n
    return w, var


def stdvar_over_time(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    w, var = _variance(rb)
    return w.scatter(var)


def stddev_over_time(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    w, var = _variance(rb)
    with np.errstate(invalid="ignore"):
        return w.scatter(np.sqrt(var))


def _padded_windows(rb: RangeBlock, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window values as a (windows x maxlen) array (NaN padded) for the flat window ids ``rows``."""
    lo = rb.lo.ravel()[rows]
    n = (rb.hi.ravel() - rb.lo.ravel())[rows]
    maxlen = int(n.max()) if n.size else 0
    pos = np.arange(maxlen)
    valid = pos[None, :] < n[:, None]
    idx = np.where(valid, lo[:, None] + pos[None, :], 0)
    vals = _take(rb.v, idx)
    return np.where(valid, vals, np.nan), n


def sorted_quantile(vals: np.ndarray, counts: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Upstream's quantile() per row of a padded (rows x maxlen) array holding ``counts`` values each.

    NaN sorts first, as Go's sort with vectorByValueHeap; ``q`` is per row.
    """
    rows, maxlen = vals.shape
    if rows == 0 or maxlen == 0:
        return np.full(rows, np.nan)
    pos = np.arange(maxlen)
    valid = pos[None, :] < counts[:, None]
    nan_count = (np.isnan(vals) & valid).sum(axis=1)
    key = np.where(valid, np.where(np.isnan(vals), -np.inf, vals), np.inf)
    srt = np.sort(key, axis=1)
    srt = np.where(pos[None, :] < nan_count[:, None], np.nan, srt)
    n = counts.astype(np.float64)
    with np.errstate(invalid="ignore"):
        rank = q * (n - 1)
        lower = np.maximum(0, np.floor(rank))
        upper = np.minimum(n - 1, lower + 1)
        weight = rank - np.floor(rank)
        li = np.clip(np.nan_to_num(lower), 0, maxlen - 1).astype(np.int64)
        ui = np.clip(np.nan_to_num(upper), 0, maxlen - 1).astype(np.int64)
        r = np.arange(rows)
        res = srt[r, li] * (1 - weight) + srt[r, ui] * weight
    res = np.where(q < 0, -np.inf, res)
    res = np.where(q > 1, np.inf, res)
    res = np.where(np.isnan(q) | (counts == 0), np.nan, res)
    return res


def _chunks(total: int, maxlen: int, budget: int = 4_000_000) -> list[np.ndarray]:
    size = max(1, budget // max(maxlen, 1))
    return [np.arange(a, min(total, a + size)) for a in range(0, total, size)]


def quantile_over_time(rb: RangeBlock, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``quantile_over_time``: windows are grouped by (length, q) so that a partial sort
    (``np.partition``) at the two interpolation ranks suffices; windows holding NaN are fully sorted."""
    n = rb.hi - rb.lo
    shape = n.shape
    nf = n.ravel()
    lof = rb.lo.ravel()
    qq = np.broadcast_to(q[None, :], shape).ravel()
    out = np.full(nf.size, np.nan)
    live = np.nonzero(nf > 0)[0]
    if live.size:
        key_n = nf[live]
        key_q = qq[live]
        order = np.lexsort((key_q, key_n))
        live, key_n, key_q = live[order], key_n[order], key_q[order]
        same_q = (key_q[1:] == key_q[:-1]) | (np.isnan(key_q[1:]) & np.isnan(key_q[:-1]))
        change = np.nonzero((np.diff(key_n) != 0) | ~same_q)[0] + 1
        for rows in np.split(live, change):
            cnt = int(nf[rows[0]])
            qv = float(qq[rows[0]])
            if math.isnan(qv) or qv < 0 or qv > 1:
                out[rows] = np.nan if math.isnan(qv) else (-math.inf if qv < 0 else math.inf)
                continue
            for part in np.array_split(rows, max(1, rows.size * cnt // 4_000_000 + 1)):
                vals = rb.v[lof[part][:, None] + np.arange(cnt)[None, :]]
                has_nan = np.isnan(vals).any(axis=1)
                rank = qv * (cnt - 1)
                li = max(0, math.floor(rank))
                ui = min(cnt - 1, li + 1)
                weight = rank - math.floor(rank)
                res = np.empty(part.size)
                if (~has_nan).any():
                    srt = np.partition(vals[~has_nan], sorted({li, ui}), axis=1)
                    res[~has_nan] = srt[:, li] * (1 - weight) + srt[:, ui] * weight
                if has_nan.any():
                    sub = vals[has_nan]
                    res[has_nan] = sorted_quantile(sub, np.full(sub.shape[0], cnt), np.full(sub.shape[0], qv))
                out[part] = res
    return _masked(out.reshape(shape), n > 0)


def mad_over_time(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    n = rb.hi - rb.lo
    shape = n.shape
    out = np.full(n.size, np.nan)
    maxlen = int(n.max()) if n.size else 0
    for rows in _chunks(n.size, maxlen):
        vals, cnt = _padded_windows(rb, rows)
        half = np.full(len(rows), 0.5)
        has_nan = np.isnan(vals).sum(axis=1) > (vals.shape[1] - cnt)
        median = sorted_quantile(vals, cnt, half)
        dev = np.abs(vals - median[:, None])
        res = sorted_quantile(dev, cnt, half)
        out[rows] = np.where(has_nan, np.nan, res)
    return _masked(out.reshape(shape), n > 0)


def changes(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    prev, has_prev = _pair_flags(rb)
    v = rb.v
    differs = has_prev & ~((v == prev) | (np.isnan(v) & np.isnan(prev)))
    n = rb.hi - rb.lo
    return _masked(_cum_window(differs.astype(np.float64), rb.lo, rb.hi), n > 0)


def resets(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    prev, has_prev = _pair_flags(rb)
    dropped = has_prev & (rb.v < prev)
    st_flags = _st_flags(rb)
    if st_flags is not None:
        dropped |= st_flags[0]
    n = rb.hi - rb.lo
    return _masked(_cum_window(dropped.astype(np.float64), rb.lo, rb.hi), n > 0)


# Window statistics over (series x steps) run in blocks of rows of about this many windows, so that
# the temporaries stay in the CPU cache.
_CHUNK_WINDOWS = 16384


def row_chunks(rows: int, steps: int) -> list[slice]:
    """Slices of rows covering ``rows`` with about :data:`_CHUNK_WINDOWS` windows each."""
    per = max(1, _CHUNK_WINDOWS // max(steps, 1))
    return [slice(r, min(r + per, rows)) for r in range(0, rows, per)] or [slice(0, 0)]


class _Resets:
    """Counter resets of a flattened sample array: the sample positions and a cumulative sum of the
    values before them, for per-window correction sums.

    The same cumulative sum as :func:`_cum_window` over the (sparse) reset positions only: adding
    the zeros in between changes no partial sum unless one is -0.0, where the dense sum is kept.
    """

    def __init__(self, rb: RangeBlock, st_resets: np.ndarray | None) -> None:
        v = rb.v
        dropped = np.zeros(v.size, dtype=bool)
        if v.size > 1:
            np.less(v[1:], v[:-1], out=dropped[1:])
        starts = rb.offsets[:-1]
        dropped[starts[starts < v.size]] = False
        if st_resets is not None:
            dropped |= st_resets
        self.idx = np.flatnonzero(dropped)
        corr = v[self.idx - 1]
        self.dense: np.ndarray | None = None
        if ((corr == 0) & np.signbit(corr)).any():
            flags = np.zeros(v.size)
            flags[self.idx] = corr
            self.dense = np.concatenate(([0.0], np.cumsum(flags)))
        self.cs = np.concatenate(([0.0], np.cumsum(corr)))

    def __bool__(self) -> bool:
        return bool(self.idx.size)

    def window_sums(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Per window: the sum of the values before the resets at positions ``lo < i < hi``."""
        a = np.minimum(lo + 1, hi)
        if self.dense is not None:
            return self.dense[hi] - self.dense[a]
        return self.cs[np.searchsorted(self.idx, hi)] - self.cs[np.searchsorted(self.idx, a)]


def extrapolated_rate(rb: RangeBlock, is_counter: bool, is_rate: bool) -> tuple[np.ndarray, np.ndarray]:
    """delta/rate/increase with Prometheus's extrapolation to the window edges.

    With start timestamps, a counter whose first sample started inside the window is assumed to have
    been zero at its start time instead of being extrapolated to the left. Runs over blocks of rows.
    """
    shape = rb.lo.shape
    if rb.v.size == 0:
        return np.zeros(shape), np.zeros(shape, dtype=bool)
    st_flags = _st_flags(rb) if is_counter else None
    resets = _Resets(rb, st_flags[0] if st_flags is not None else None) if is_counter else None
    st = rb.st if st_flags is not None else None
    values = np.empty(shape)
    present = np.empty(shape, dtype=bool)
    for rows in row_chunks(shape[0], shape[1]):
        values[rows], present[rows] = _rate_block(
            rb, rb.lo[rows], rb.hi[rows], resets, st, is_counter, is_rate
        )
    return values, present


def _rate_block(
    rb: RangeBlock,
    lo: np.ndarray,
    hi: np.ndarray,
    resets: _Resets | None,
    st: np.ndarray | None,
    is_counter: bool,
    is_rate: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`extrapolated_rate` for the windows ``lo:hi`` of some rows (``rb.v`` is not empty).

    Timestamps are exact integers in float64, so their differences are exact either way; windows
    that are not present hold garbage until the final masking.
    """
    last = hi - 1
    fv = rb.v.take(lo, mode="clip")
    lv = rb.v.take(last, mode="clip")
    ft = rb.t.take(lo, mode="clip")
    lt = rb.t.take(last, mode="clip")
    ref = rb.ref[None, :]
    range_start = ref - rb.range_ms
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        result = lv - fv
        if is_counter:
            # Adding a zero correction still turns -0.0 into 0.0, as the dense sum did.
            result += resets.window_sums(lo, hi) if resets else 0.0
        to_start = (ft - range_start) / 1000.0
        to_end = (ref - lt) / 1000.0
        sampled = (lt - ft) / 1000.0
        # Only windows with two samples (or a start timestamp and one sample, where the average
        # is 0/1) are present, so the average needs no n > 1 mask.
        gaps = last - lo  # samples in the window - 1
        present = gaps >= 1
        any_sample = gaps >= 0 if st is not None else None
        np.maximum(gaps, 1, out=gaps)
        avg = sampled / gaps
        threshold = avg * 1.1
        avg /= 2
        np.copyto(to_start, avg, where=to_start >= threshold)
        use_st = None
        if st is not None:
            st0 = st.take(lo, mode="clip")
            use_st = any_sample & (st0 != 0) & (st0 > range_start) & (st0 < ft)
        if is_counter:
            to_zero = fv / result
            to_zero *= sampled
            np.minimum(to_start, to_zero, out=to_start, where=(result > 0) & (fv >= 0))
        if use_st is not None and use_st.any():
            to_start[use_st] = 0.0
            sampled = np.where(use_st, (lt - st.take(lo, mode="clip")) / 1000.0, sampled)  # type: ignore[union-attr]
            result = np.where(use_st, result + fv, result)
        np.copyto(to_end, avg, where=to_end >= threshold)
        factor = sampled + to_start
        factor += to_end
        factor /= sampled
        np.copyto(factor, 1.0, where=sampled == 0)
        if is_rate:
            factor /= rb.range_ms / 1000.0
        result *= factor
    if use_st is not None:
        present |= use_st
    result[~present] = 0.0
    return result, present


def instant_value(rb: RangeBlock, is_rate: bool) -> tuple[np.ndarray, np.ndarray]:
    """irate/idelta from the last two samples of each window."""
    n = rb.hi - rb.lo
    last = np.maximum(rb.hi - 1, 0)
    prev = np.maximum(rb.hi - 2, 0)
    lv, pv = _take(rb.v, last), _take(rb.v, prev)
    lt, pt = _take(rb.t, last), _take(rb.t, prev)
    interval = lt - pt
    present = (n >= 2) & (interval != 0)
    st_flags = _st_flags(rb) if is_rate else None
    with np.errstate(invalid="ignore", divide="ignore"):
        if is_rate:
            reset = lv < pv
            if st_flags is not None:
                reset = reset | (st_flags[0][last] if rb.v.size else False)
            result = np.where(reset, lv, lv - pv)
            result = result / (interval / 1000.0)
        else:
            result = lv - pv
    return _masked(result, present)


def _regression(rb: RangeBlock, intercept_t: np.ndarray) -> tuple[_Windows, np.ndarray, np.ndarray]:
    """Least-squares (slope, intercept) per window with at least two samples; x in seconds from
    ``intercept_t`` (one value per window of the (series x steps) grid)."""
    w = _Windows(rb)
    m = len(w)
    it = np.broadcast_to(intercept_t, w.shape).ravel()[w.ids].astype(np.float64)
    sx, cx, sy, cy, sxy, cxy, sx2, cx2 = (np.zeros(m) for _ in range(8))
    init_y = w.first(rb.v)
    const_y = np.ones(m, dtype=bool)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for j, k, idx in w.positions():
            y = rb.v[idx]
            x = (rb.t[idx] - it[:k]) / 1e3
            if j > 0:
                const_y[:k] &= y == init_y[:k]
            sx[:k], cx[:k] = kahan_inc(x, sx[:k], cx[:k])
            sy[:k], cy[:k] = kahan_inc(y, sy[:k], cy[:k])
            sxy[:k], cxy[:k] = kahan_inc(x * y, sxy[:k], cxy[:k])
            sx2[:k], cx2[:k] = kahan_inc(x * x, sx2[:k], cx2[:k])
        cnt = w.n.astype(np.float64)
        sx, sy, sxy, sx2 = sx + cx, sy + cy, sxy + cxy, sx2 + cx2
        cov = sxy - sx * sy / cnt
        var = sx2 - sx * sx / cnt
        slope = cov / var
        intercept = sy / cnt - slope * sx / cnt
        inf_y = np.isinf(init_y)
        slope = np.where(const_y, np.where(inf_y, np.nan, 0.0), slope)
        intercept = np.where(const_y, np.where(inf_y, np.nan, init_y), intercept)
    return w, slope, intercept


def deriv(rb: RangeBlock) -> tuple[np.ndarray, np.ndarray]:
    first_t = _take(rb.t, rb.lo)
    w, slope, _ = _regression(rb, first_t)
    vals, pres = w.scatter(slope)
    return _masked(vals, pres & (rb.hi - rb.lo >= 2))


def predict_linear(rb: RangeBlock, steps: np.ndarray, duration: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w, slope, intercept = _regression(rb, steps[None, :].astype(np.float64))
    dur = np.broadcast_to(duration[None, :], w.shape).ravel()[w.ids]
    with np.errstate(invalid="ignore", over="ignore"):
        vals, pres = w.scatter(slope * dur + intercept)
    return _masked(vals, pres & (rb.hi - rb.lo >= 2))


def double_exponential_smoothing(
    rb: RangeBlock, sf: np.ndarray, tf: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Holt's linear smoothing over each window (needs two samples); factors are per step."""
    w = _Windows(rb)
    sfw = np.broadcast_to(sf[None, :], w.shape).ravel()[w.ids]
    tfw = np.broadcast_to(tf[None, :], w.shape).ravel()[w.ids]
    s1 = w.first(rb.v)
    s0 = np.zeros(len(w))
    b = rb.v[np.minimum(w.lo + 1, w.lo + w.n - 1)] - s1
    with np.errstate(invalid="ignore", over="ignore"):
        for j, k, idx in w.positions():
            if j == 0:
                continue
            x = sfw[:k] * rb.v[idx]
            if j > 1:
                b[:k] = tfw[:k] * (s1[:k] - s0[:k]) + (1 - tfw[:k]) * b[:k]
            y = (1 - sfw[:k]) * (s1[:k] + b[:k])
            s0[:k], s1[:k] = s1[:k], x + y
    vals, pres = w.scatter(s1)
    return _masked(vals, pres & (rb.hi - rb.lo >= 2))


def _interpolate(
    t1: np.ndarray, y1: np.ndarray, t2: np.ndarray, y2: np.ndarray, t: np.ndarray, is_counter: bool
) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        if is_counter:
            y1 = np.where(y2 < y1, 0.0, y1)
        return y1 + (y2 - y1) * (t - t1) / (t2 - t1)


def extended_rate(
    rb: RangeBlock, lo_ext: np.ndarray, hi_ext: np.ndarray, smoothed: bool, is_counter: bool, is_rate: bool
) -> tuple[np.ndarray, np.ndarray]:
    """rate/increase/delta over anchored or smoothed windows (no extrapolation).

    ``lo_ext:hi_ext`` are the windows extended by the lookback delta (to the left for anchored, on both
    sides for smoothed); the value at the range start is the last sample before it (anchored) or the
    interpolation between the samples around it (smoothed), and likewise at the range end.
    """
    ref = np.broadcast_to(rb.ref[None, :], lo_ext.shape).astype(np.int64)
    start = ref - rb.range_ms
    end = ref
    n = hi_ext - lo_ext
    last_i = np.maximum(hi_ext - 1, lo_ext)
    # first: the last sample at or before the range start among all but the last, else the first.
    le_start = search_le(rb, lo_ext, last_i, start)
    first = np.maximum(le_start - 1, lo_ext)
    last = last_i
    if smoothed:
        last = search_ge(rb, lo_ext, last_i, end)
    ft, lt = _take(rb.t, first), _take(rb.t, last)
    present = (n > 0) & (lt > start)
    if smoothed:
        present &= ft <= end
    fv, lv = _take(rb.v, first), _take(rb.v, last)
    if smoothed:
        nxt = np.minimum(first + 1, np.maximum(hi_ext - 1, 0))
        left = np.where(
            ft < start, _interpolate(ft, fv, _take(rb.t, nxt), _take(rb.v, nxt), start, is_counter), fv
        )
        prv = np.maximum(last - 1, 0)
        right = np.where(
            (last > lo_ext) & (lt > end),
            _interpolate(_take(rb.t, prv), _take(rb.v, prv), lt, lv, end, is_counter),
            lv,
        )
    else:
        left, right = fv, lv
    with np.errstate(invalid="ignore", over="ignore"):
        result = right - left
        if is_counter:
            a = np.where(ft <= start, first + 1, first)
            b = np.where(lt >= end, last - 1, last)
            prev, has_prev = _pair_flags(rb)
            corr_flags = np.where(has_prev & (rb.v < prev), prev, 0.0)
            cs = np.concatenate(([0.0], np.cumsum(corr_flags)))
            nonempty = a <= b
            a_c = np.clip(a, 0, max(rb.v.size - 1, 0))
            b_c = np.clip(b, 0, max(rb.v.size - 1, 0))
            interior = np.where(
                nonempty, cs[np.minimum(b_c + 1, cs.size - 1)] - cs[np.minimum(a_c + 1, cs.size - 1)], 0.0
            )
            va, vb = _take(rb.v, a_c), _take(rb.v, b_c)
            corr = interior
            corr = corr + np.where(nonempty & (va < left), left, 0.0)
            corr = corr + np.where(nonempty & (right < vb), vb, 0.0)
            corr = corr + np.where(~nonempty & (right < left), left, 0.0)
            result = result + corr
        if is_rate:
            result = result / (rb.range_ms / 1000.0)
    return _masked(result, present)


def search_le(rb: RangeBlock, lo: np.ndarray, hi: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """Per window: index of the first sample in ``lo:hi`` with t > bound (``hi`` when none)."""
    return _search(rb, lo, hi, bound, strict=True)


def search_ge(rb: RangeBlock, lo: np.ndarray, hi: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """Per window: index of the first sample in ``lo:hi`` with t >= bound (``hi`` when none)."""
    return _search(rb, lo, hi, bound, strict=False)


def _search(rb: RangeBlock, lo: np.ndarray, hi: np.ndarray, bound: np.ndarray, strict: bool) -> np.ndarray:
    # Samples are sorted inside each series, and windows never cross series, so a global
    # searchsorted on (series id, t) keys restricted to the window gives the answer.
    nseries = len(rb.offsets) - 1
    sid = np.repeat(np.arange(nseries, dtype=np.int64), np.diff(rb.offsets))
    if rb.t.size == 0:
        return hi.copy()
    tmin, tmax = int(rb.t.min()), int(rb.t.max())
    width = tmax - tmin + 3
    keys = (rb.t - tmin + 1) + sid * width
    rows = np.arange(lo.shape[0], dtype=np.int64)[:, None]
    q = np.clip(bound, tmin - 1, tmax + 1) - tmin + 1 + rows * width
    idx = np.searchsorted(keys, q, side="right" if strict else "left")
    return np.clip(idx, lo, hi)
