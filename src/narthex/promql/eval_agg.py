"""Aggregation operators over whole (series x steps) matrices.

Series are mapped to groups once per query; reductions then run over all steps at once, either with
``np.ufunc.at``-style scatter operations or with a loop over the rank of a series inside its group
(vectorised over groups and steps), which keeps upstream's compensated summation order.
"""

from __future__ import annotations

import hashlib

import numpy as np

from narthex.model.labels import METRIC_NAME, Labels
from narthex.promql.eval_range import kahan_inc, sorted_quantile
from narthex.promql.printer import format_float, format_float_g
from narthex.promql.value import ExecutionError, VecBlock


def grouping_labels(labels: Labels, grouping: tuple[str, ...], without: bool) -> Labels:
    """The output label set of an aggregation group (``without`` also drops the metric name)."""
    if without:
        drop = set(grouping) | {METRIC_NAME}
        return tuple(p for p in labels if p[0] not in drop)
    if not grouping:
        return ()
    keep = set(grouping)
    return tuple(p for p in labels if p[0] in keep)


def assign_groups(
    labels: list[Labels], grouping: tuple[str, ...], without: bool
) -> tuple[np.ndarray, list[Labels]]:
    """Group id per series (in order of first appearance) and each group's labels."""
    if without:
        drop = frozenset(grouping) | {METRIC_NAME}
        keys = [tuple([p for p in lbls if p[0] not in drop]) for lbls in labels]
    elif grouping:
        keep = frozenset(grouping)
        keys = [tuple([p for p in lbls if p[0] in keep]) for lbls in labels]
    else:
        keys = [()] * len(labels)
    ids: dict[Labels, int] = {}
    setdefault = ids.setdefault
    out = np.array([setdefault(key, len(ids)) for key in keys], dtype=np.int64)
    return out, list(ids)


def _ranks(gids: np.ndarray) -> np.ndarray:
    """Rank of each series inside its group, in input order."""
    order = np.argsort(gids, kind="stable")
    sorted_g = gids[order]
    starts = np.r_[0, np.nonzero(np.diff(sorted_g))[0] + 1] if len(gids) else np.zeros(0, dtype=np.int64)
    rank_sorted = np.arange(len(gids)) - np.repeat(starts, np.diff(np.r_[starts, len(gids)]))
    ranks = np.empty(len(gids), dtype=np.int64)
    ranks[order] = rank_sorted
    return ranks


def _group_drop(block: VecBlock, gids: np.ndarray, ngroups: int) -> np.ndarray:
    drop = np.zeros(ngroups, dtype=bool)
    np.logical_or.at(drop, gids, block.drop_name)
    return drop


def _group_any(mask: np.ndarray, starts: np.ndarray, group_of_start: np.ndarray, ngroups: int) -> np.ndarray:
    """Per group (rows ``starts[i]:starts[i+1]`` of ``mask``) and step: whether any row is set."""
    out = np.zeros((ngroups, mask.shape[1]), dtype=bool)
    out[group_of_start] = np.logical_or.reduceat(mask, starts, axis=0)
    return out


def simple_aggregate(
    op: str, block: VecBlock, gids: np.ndarray, ngroups: int
) -> tuple[np.ndarray, np.ndarray]:
    """sum/avg/count/min/max/group/stddev/stdvar: (values, present) of shape (groups x steps)."""
    steps = block.values.shape[1]
    vals = block.values
    pres = block.present
    if len(gids) == 0:
        return np.zeros((ngroups, steps)), np.zeros((ngroups, steps), dtype=bool)
    # Rows sorted by group, so that every reduction is a reduceat over contiguous row ranges.
    order = np.argsort(gids, kind="stable")
    starts = np.r_[0, np.nonzero(np.diff(gids[order]))[0] + 1]
    group_of_start = gids[order][starts]
    sv, sp = vals[order], pres[order]

    def reduce(ufunc: np.ufunc, arr: np.ndarray, fill: float) -> np.ndarray:
        out = np.full((ngroups, steps), fill)
        out[group_of_start] = ufunc.reduceat(arr, starts, axis=0, dtype=np.float64)
        return out

    count = reduce(np.add, sp, 0.0)
    present = count > 0
    if op == "count":
        return count, present
    if op == "group":
        return np.ones((ngroups, steps)), present
    if op in ("min", "max"):
        # fmax/fmin skip NaN unless all values are NaN, as upstream's "replace a NaN" rule.
        masked = np.where(sp, sv, np.nan)
        return reduce(np.fmax if op == "max" else np.fmin, masked, np.nan), present
    if op in ("sum", "avg"):
        with np.errstate(invalid="ignore", over="ignore"):
            # sv is a copy: zero the absent samples in place (then |x| and x != floor(x) of the
            # masked values are those of the present samples, and 0 / False elsewhere).
            np.copyto(sv, 0.0, where=~sp)
            plain = reduce(np.add, sv, 0.0)
            absum = reduce(np.add, np.abs(sv), 0.0)
            whole = ~_group_any(sv != np.floor(sv), starts, group_of_start, ngroups)
            exact = whole & (absum < 2.0**53)
            ok = np.isfinite(absum) & (exact | (count * 2.3e-16 * absum <= 1e-12 * np.abs(plain)))
            ok |= count <= 1
            fast = plain if op == "sum" else plain / np.maximum(count, 1)
        if ok.all():
            return fast, present
        slow = _compensated_aggregate(op, vals, pres, gids, ngroups)
        return np.where(ok, fast, slow), present
    return _compensated_aggregate(op, vals, pres, gids, ngroups), present


def _compensated_aggregate(
    op: str, vals: np.ndarray, pres: np.ndarray, gids: np.ndarray, ngroups: int
) -> np.ndarray:
    """sum/avg (Kahan, incremental mean on overflow) and stddev/stdvar (Welford), in input order.

    The loop runs over the rank of a series inside its group, vectorised over groups and steps.
    """
    steps = vals.shape[1]
    ranks = _ranks(gids)
    maxrank = int(ranks.max()) + 1 if len(ranks) else 0
    shape = (ngroups, steps)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if op == "sum":
            total = np.zeros(shape)
            comp = np.zeros(shape)
            for r in range(maxrank):
                rows = np.nonzero(ranks == r)[0]
                g = gids[rows]
                f = np.where(pres[rows], vals[rows], 0.0)
                nt, nc = kahan_inc(f, total[g], comp[g])
                total[g] = np.where(pres[rows], nt, total[g])
                comp[g] = np.where(pres[rows], nc, comp[g])
            return total + comp
        if op == "avg":
            total = np.zeros(shape)
            comp = np.zeros(shape)
            mean = np.zeros(shape)
            cnt = np.zeros(shape)
            incremental = np.zeros(shape, dtype=bool)
            for r in range(maxrank):
                rows = np.nonzero(ranks == r)[0]
                g = gids[rows]
                p = pres[rows]
                f = vals[rows]
                c_new = cnt[g] + p
                first = p & (cnt[g] == 0)
                t_g, c_g, m_g, inc_g = total[g], comp[g], mean[g], incremental[g]
                t_g = np.where(first, f, t_g)
                m_g = np.where(first, f, m_g)
                rest = p & ~first
                ns, nc = kahan_inc(f, t_g, c_g)
                overflow = rest & ~inc_g & np.isinf(ns)
                ok = rest & ~inc_g & ~overflow
                t_g = np.where(ok, ns, t_g)
                c_g = np.where(ok, nc, c_g)
                m_g = np.where(overflow, t_g / (c_new - 1), m_g)
                c_g = np.where(overflow, c_g / (c_new - 1), c_g)
                inc_g = inc_g | overflow
                step_inc = rest & inc_g
                q = (c_new - 1) / np.maximum(c_new, 1)
                nm, nc2 = kahan_inc(f / np.maximum(c_new, 1), q * m_g, q * c_g)
                m_g = np.where(step_inc, nm, m_g)
                c_g = np.where(step_inc, nc2, c_g)
                total[g], comp[g], mean[g], incremental[g], cnt[g] = t_g, c_g, m_g, inc_g, c_new
            cnt1 = np.maximum(cnt, 1)
            return np.where(incremental, mean + comp, total / cnt1 + comp / cnt1)
        if op in ("stddev", "stdvar"):
            value = np.zeros(shape)
            mean = np.zeros(shape)
            cnt = np.zeros(shape)
            for r in range(maxrank):
                rows = np.nonzero(ranks == r)[0]
                g = gids[rows]
                p = pres[rows]
                f = vals[rows]
                c_new = cnt[g] + p
                first = p & (cnt[g] == 0)
                rest = p & ~first
                v_g, m_g = value[g], mean[g]
                v_g = np.where(first, np.where(np.isnan(f) | np.isinf(f), np.nan, 0.0), v_g)
                m_g = np.where(first, f, m_g)
                delta = f - m_g
                m_new = m_g + delta / np.maximum(c_new, 1)
                v_new = v_g + delta * (f - m_new)
                value[g] = np.where(rest, v_new, v_g)
                mean[g] = np.where(rest, m_new, m_g)
                cnt[g] = c_new
            var = value / np.maximum(cnt, 1)
            return np.sqrt(var) if op == "stddev" else var
    raise ExecutionError(f"unknown aggregation {op}")


def quantile_aggregate(
    block: VecBlock, gids: np.ndarray, ngroups: int, q: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``quantile(q, v)`` per group and step."""
    steps = block.values.shape[1]
    out = np.full((ngroups, steps), np.nan)
    present = np.zeros((ngroups, steps), dtype=bool)
    for g in range(ngroups):
        rows = np.nonzero(gids == g)[0]
        vals = block.values[rows]  # (n, steps)
        pres = block.present[rows]
        cnt = pres.sum(axis=0)
        # Move present values to the front of each column.
        order = np.argsort(~pres, axis=0, kind="stable")
        packed = np.take_along_axis(vals, order, axis=0).T  # (steps, n)
        res = sorted_quantile(packed, cnt, q)
        out[g] = res
        present[g] = cnt > 0
    return out, present


def _check_k_param(values: np.ndarray) -> None:
    if np.isnan(values).any():
        raise ExecutionError("Parameter value is NaN")
    lo, hi = float(values.min()), float(values.max())
    if lo <= -(2.0**63):
        raise ExecutionError(f"Scalar value {format_float_g(lo)} underflows int64")
    if hi >= 2.0**63:
        raise ExecutionError(f"Scalar value {format_float_g(hi)} overflows int64")


def topk_like(
    op: str, block: VecBlock, gids: np.ndarray, ngroups: int, param: np.ndarray, warn: list[str]
) -> VecBlock:
    """topk/bottomk/limitk/limit_ratio: a subset of the input samples per step (labels unchanged)."""
    steps = block.values.shape[1]
    nseries = len(block)
    keep = np.zeros_like(block.present)
    rank_out = np.zeros(block.present.shape, dtype=np.int64)
    if op == "limit_ratio":
        if float(param.max()) == 0 and float(param.min()) == 0:
            return VecBlock.empty(steps)
        if np.isnan(param).any():
            raise ExecutionError("Ratio value is NaN")
        if float(param.max()) > 1.0:
            warn.append(
                "PromQL warning: ratio value should be between -1 and 1, "
                f"got {format_float_g(float(param.max()))}, capping to 1"
            )
        if float(param.min()) < -1.0:
            warn.append(
                "PromQL warning: ratio value should be between -1 and 1, "
                f"got {format_float_g(float(param.min()))}, capping to -1"
            )
        r = np.clip(param, -1.0, 1.0)
        offs = np.array([_ratio_offset(lbls) for lbls in block.labels])
        if nseries:
            sel = np.where(r[None, :] >= 0, offs[:, None] < r[None, :], offs[:, None] >= 1.0 + r[None, :])
            keep = block.present & sel & (r[None, :] != 0)
        out = block.select_rows(np.arange(nseries))
        out.present = keep
        return out.compact()
    if float(param.max()) < 1:
        return VecBlock.empty(steps)
    _check_k_param(param)
    k = np.minimum(np.floor(param), nseries).astype(np.int64)  # int64(fParam) truncates toward zero
    k = np.where(param < 0, np.ceil(param), k).astype(np.int64)
    k = np.minimum(k, nseries)
    for g in range(ngroups):
        rows = np.nonzero(gids == g)[0]
        vals = block.values[rows]
        pres = block.present[rows]
        if op == "limitk":
            order_idx = np.cumsum(pres, axis=0) - 1
            ranks = np.where(pres, order_idx, np.iinfo(np.int64).max)
        else:
            # Sort key: present first, then non-NaN, then by value (descending for topk), stable.
            sign = -1.0 if op == "topk" else 1.0
            key_val = np.where(np.isnan(vals), np.inf, sign * vals)
            key_nan = np.isnan(vals)
            n = len(rows)
            idx = np.broadcast_to(np.arange(n)[:, None], vals.shape)
            order = np.lexsort((idx, key_val, key_nan, ~pres), axis=0)
            ranks = np.empty_like(order)
            np.put_along_axis(ranks, order, np.arange(n)[:, None].repeat(steps, axis=1), axis=0)
        sel = pres & (ranks < k[None, :])
        keep[rows] = sel
        rank_out[rows] = ranks
    out = block.select_rows(np.arange(nseries))
    out.present = keep
    if steps == 1:
        live = np.nonzero(keep[:, 0])[0]
        if op == "limitk":
            order = sorted(live.tolist(), key=lambda i: (gids[i], rank_out[i, 0]))
        else:
            order = sorted(live.tolist(), key=lambda i: (gids[i], rank_out[i, 0]))
        return out.select_rows(np.array(order, dtype=np.int64))
    return out.compact()


def _ratio_offset(labels: Labels) -> float:
    """A stable pseudo-random position in [0, 1) derived from the label set."""
    data = b"\xff".join(f"{k}\xff{v}".encode() for k, v in labels)
    h = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
    return h / float(2**64 - 1)


def count_values(
    block: VecBlock, grouping: tuple[str, ...], without: bool, label: str
) -> tuple[list[Labels], np.ndarray, np.ndarray]:
    """``count_values("label", v)``: one output series per group and distinct value string."""
    steps = block.values.shape[1]
    rows, cols = np.nonzero(block.present)
    if len(rows) == 0:
        return [], np.zeros((0, steps)), np.zeros((0, steps), dtype=bool)
    base_ids: dict[Labels, int] = {}
    row_base = np.empty(len(block), dtype=np.int64)
    for r, lbls in enumerate(block.labels):
        d = dict(lbls)
        d.pop(label, None)
        base = grouping_labels(tuple(sorted(d.items())), grouping, without)
        row_base[r] = base_ids.setdefault(base, len(base_ids))
    bases = list(base_ids)
    vals = block.values[rows, cols]
    # Distinct value strings (NaN values all print as "NaN").
    texts: dict[str, int] = {}
    uvals, vinv = np.unique(vals, return_inverse=True)
    text_id = np.array([texts.setdefault(format_float(float(u)), len(texts)) for u in uvals], dtype=np.int64)
    key = row_base[rows] * len(texts) + text_id[vinv.reshape(-1)]
    ukeys, kinv = np.unique(key, return_inverse=True)
    counts = np.zeros((len(ukeys), steps))
    np.add.at(counts, (kinv.reshape(-1), cols), 1.0)
    names = list(texts)
    labels: list[Labels] = []
    for k in ukeys.tolist():
        b, tid = divmod(k, len(texts))
        d = dict(bases[b])
        d[label] = names[tid]
        labels.append(tuple(sorted((n, x) for n, x in d.items() if x != "")))
    return labels, counts, counts > 0
