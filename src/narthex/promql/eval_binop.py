"""Binary operators on whole matrices, with vector matching computed once per query.

Both sides' series are mapped to join signatures once; matching at every step is then a gather
through a (signatures x steps) table of right-hand rows, so no Python code runs per step.
"""

from __future__ import annotations

import numpy as np

from narthex.model.labels import METRIC_NAME, Labels
from narthex.promql.ast import Cardinality, VectorMatching
from narthex.promql.value import METADATA_LABELS, ExecutionError, VecBlock, labels_string

ARITHMETIC_OPS = frozenset({"+", "-", "*", "/", "%", "^", "atan2"})
COMPARISON = frozenset({"==", "!=", ">", "<", ">=", "<="})


def _go_mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Go's math.Mod: the result has the sign of the dividend."""
    return np.fmod(a, b)


def _pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.power(a, b)


def arith(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        match op:
            case "+":
                return a + b
            case "-":
                return a - b
            case "*":
                return a * b
            case "/":
                return np.true_divide(a, b)
            case "%":
                return _go_mod(a, b)
            case "^":
                return _pow(a, b)
            case "atan2":
                return np.arctan2(a, b)
    raise ExecutionError(f"operator {op!r} not allowed for operations between scalars and vectors")


def compare(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        match op:
            case "==":
                return a == b
            case "!=":
                return a != b
            case ">":
                return a > b
            case "<":
                return a < b
            case ">=":
                return a >= b
            case "<=":
                return a <= b
    raise ExecutionError(f"unknown comparison operator {op!r}")


def scalar_binop(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if op in COMPARISON:
        return compare(op, a, b).astype(np.float64)
    return arith(op, a, b)


def signature_fn(matching: VectorMatching):  # type: ignore[no-untyped-def]
    """The join signature of a label set (``on`` keeps the listed labels, ``ignoring`` drops them and
    the metric name)."""
    names = frozenset(matching.matching_labels)
    if matching.on:
        return lambda lbls: tuple(p for p in lbls if p[0] in names)
    drop = names | {METRIC_NAME}
    return lambda lbls: tuple(p for p in lbls if p[0] not in drop)


def _sig_ids(lhs: VecBlock, rhs: VecBlock, matching: VectorMatching) -> tuple[np.ndarray, np.ndarray, int]:
    sig = signature_fn(matching)
    ids: dict[Labels, int] = {}

    def ordinal(lbls: Labels) -> int:
        key = sig(lbls)
        got = ids.get(key)
        if got is None:
            got = ids[key] = len(ids)
        return got

    left = np.array([ordinal(x) for x in lhs.labels], dtype=np.int64)
    right = np.array([ordinal(x) for x in rhs.labels], dtype=np.int64)
    return left, right, len(ids)


def _sig_presence(block: VecBlock, sigs: np.ndarray, nsigs: int) -> np.ndarray:
    return _sig_presence_mask(block.present, sigs, nsigs)


def set_operation(op: str, lhs: VecBlock, rhs: VecBlock, matching: VectorMatching) -> VecBlock:
    """``and``, ``or`` and ``unless``."""
    lsig, rsig, nsigs = _sig_ids(lhs, rhs, matching)
    if op == "and":
        keep = lhs.present & _sig_presence(rhs, rsig, nsigs)[lsig] if len(lhs) else lhs.present
        out = lhs.select_rows(np.arange(len(lhs)))
        out.present = keep
        return out.compact()
    if op == "unless":
        keep = lhs.present & ~_sig_presence(rhs, rsig, nsigs)[lsig] if len(lhs) else lhs.present
        out = lhs.select_rows(np.arange(len(lhs)))
        out.present = keep
        return out.compact()
    # or
    rkeep = rhs.present & ~_sig_presence(lhs, lsig, nsigs)[rsig] if len(rhs) else rhs.present
    right = rhs.select_rows(np.arange(len(rhs)))
    right.present = rkeep
    right = right.compact()
    left = lhs.compact()
    return VecBlock(
        left.labels + right.labels,
        np.concatenate([left.values, right.values]),
        np.concatenate([left.present, right.present]),
        np.concatenate([left.drop_name, right.drop_name]),
    )


def _result_labels(lhs: Labels, rhs: Labels, op: str, matching: VectorMatching, drop_name: bool) -> Labels:
    out = dict(lhs)
    if drop_name or op in ARITHMETIC_OPS:
        for k in METADATA_LABELS:
            out.pop(k, None)
    if matching.card is Cardinality.ONE_TO_ONE:
        if matching.on:
            keep = set(matching.matching_labels)
            out = {k: v for k, v in out.items() if k in keep}
        else:
            for k in matching.matching_labels:
                out.pop(k, None)
    rd = dict(rhs)
    for name in matching.include:
        v = rd.get(name, "")
        if v:
            out[name] = v
        else:
            out.pop(name, None)
    return tuple(sorted(out.items()))


def _match_labels(lbls: Labels, matching: VectorMatching) -> Labels:
    """upstream's MatchLabels: the labels used for matching (``on``) or all but them (``ignoring``)."""
    names = set(matching.matching_labels)
    if matching.on:
        return tuple(p for p in lbls if p[0] in names)
    names.add(METRIC_NAME)
    return tuple(p for p in lbls if p[0] not in names)


def vector_binop(
    op: str,
    lhs: VecBlock,
    rhs: VecBlock,
    matching: VectorMatching,
    return_bool: bool,
    delayed: bool,
    infos: list[str],
) -> VecBlock:
    """Arithmetic and comparison between two instant vectors (one-to-one, many-to-one, one-to-many)."""
    steps = lhs.present.shape[1]
    fill_l, fill_r = matching.fill_lhs, matching.fill_rhs
    if op in ("</", ">/"):
        if (len(lhs) and lhs.present.any()) and (len(rhs) and rhs.present.any()):
            infos.append(
                "PromQL info: incompatible sample types encountered for binary operator "
                f'"{op}": float {op} float'
            )
        return VecBlock.empty(steps)
    swap = matching.card is Cardinality.ONE_TO_MANY
    if swap:
        # As upstream, the fill values are not swapped with the sides.
        lhs, rhs = rhs, lhs
    lsig, rsig, nsigs = _sig_ids(lhs, rhs, matching)
    if (len(lhs) == 0 or len(rhs) == 0) and fill_l is None and fill_r is None:
        return VecBlock.empty(steps)
    # The right-hand ("one") side must be unique per signature and step.
    rr, tt = np.nonzero(rhs.present)
    counts = np.bincount(rsig[rr] * steps + tt, minlength=nsigs * steps).reshape(nsigs, steps)
    if (counts > 1).any():
        g, t = (int(x[0]) for x in np.nonzero(counts > 1))
        rows = [int(r) for r in np.nonzero((rsig == g) & rhs.present[:, t])[0][:2]]
        a, b = sorted(labels_string(rhs.labels[r]) for r in rows)
        one_side = "left" if swap else "right"
        matched = labels_string(_match_labels(rhs.labels[rows[0]], matching))
        raise ExecutionError(
            f"found duplicate series for the match group {matched} on the {one_side} hand-side of the "
            f"operation: [{a}, {b}];many-to-many matching not allowed: matching labels must be unique on "
            "one side"
        )
    rowmap = np.full((nsigs, steps), -1, dtype=np.int64)
    rowmap[rsig[rr], tt] = rr
    ridx = rowmap[lsig] if len(lhs) else np.zeros((0, steps), dtype=np.int64)
    matched = lhs.present & (ridx >= 0)
    fill_rows = lhs.present & (ridx < 0) if fill_r is not None else np.zeros_like(lhs.present)
    used = matched | fill_rows
    if matching.card is Cardinality.ONE_TO_ONE:
        lr, lt = np.nonzero(used)
        per_sig = np.bincount(lsig[lr] * steps + lt, minlength=nsigs * steps).reshape(nsigs, steps)
        if (per_sig > 1).any():
            raise ExecutionError(
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
            )
    safe = np.maximum(ridx, 0)
    cols = np.broadcast_to(np.arange(steps)[None, :], ridx.shape)
    rvals = rhs.values[safe, cols] if len(rhs) else np.zeros(ridx.shape)
    if fill_r is not None:
        rvals = np.where(ridx < 0, fill_r, rvals)
    lvals = lhs.values
    fl, fr = (rvals, lvals) if swap else (lvals, rvals)
    if op in COMPARISON:
        cond = compare(op, fl, fr)
        if return_bool:
            values = cond.astype(np.float64)
            keep = used
        else:
            values = fl
            keep = used & cond
    else:
        values = arith(op, fl, fr)
        keep = used
    # Output series: one per (lhs row, rhs row) pair seen at any step.
    pair_r = np.where(used, np.where(ridx >= 0, ridx, -1), -2)
    out_labels: list[Labels] = []
    label_rows: dict[Labels, list[int]] = {}
    out_src: list[tuple[int, int]] = []
    drop_immediately = not delayed and return_bool
    # Pair code per used cell: lhs row and rhs row (-1 for a fill value).
    nr = len(rhs) + 2
    codes = np.arange(len(lhs), dtype=np.int64)[:, None] * nr + (pair_r + 2)
    uniq_codes, inverse = np.unique(np.where(used, codes, -1), return_inverse=True)
    inverse = inverse.reshape(used.shape)
    cache: dict[tuple[int, int], Labels] = {}
    code_to_out = np.full(len(uniq_codes), -1, dtype=np.int64)
    for u, code in enumerate(uniq_codes.tolist()):
        if code < 0:
            continue
        li, ri = divmod(code, nr)
        ri -= 2
        rl = rhs.labels[ri] if ri >= 0 else _match_labels(lhs.labels[li], matching)
        lbls = _result_labels(lhs.labels[li], rl, op, matching, drop_immediately)
        cache[(li, ri)] = lbls
        code_to_out[u] = len(out_src)
        out_src.append((li, ri))
        out_labels.append(lbls)
        label_rows.setdefault(lbls, []).append(len(out_src) - 1)
    n_out = len(out_src)
    vals = np.zeros((n_out, steps))
    pres = np.zeros((n_out, steps), dtype=bool)
    used_pres = np.zeros((n_out, steps), dtype=bool)
    ur, uc = np.nonzero(used)
    orow = code_to_out[inverse[ur, uc]]
    used_pres[orow, uc] = True
    pres[orow, uc] = keep[ur, uc]
    vals[orow, uc] = values[ur, uc]
    if matching.card is not Cardinality.ONE_TO_ONE:
        for rows in label_rows.values():
            if len(rows) > 1:
                sigs = {int(lsig[out_src[r][0]]) for r in rows}
                total = used_pres[rows].sum(axis=0)
                if len(sigs) < len(rows) and (total > 1).any():
                    by_sig: dict[int, list[int]] = {}
                    for r in rows:
                        by_sig.setdefault(int(lsig[out_src[r][0]]), []).append(r)
                    for same in by_sig.values():
                        if len(same) > 1 and (used_pres[same].sum(axis=0) > 1).any():
                            raise ExecutionError(
                                "multiple matches for labels: grouping labels must ensure unique matches"
                            )
    # Fill on the left: right-hand signatures with no left match at a step.
    extra: VecBlock | None = None
    if fill_l is not None and len(rhs):
        lsig_pres = _sig_presence_mask(used, lsig, nsigs)
        rkeep = rhs.present & ~lsig_pres[rsig]
        if rkeep.any():
            fl2, fr2 = (rhs.values, np.full_like(rhs.values, fill_l))
            if not swap:
                fl2, fr2 = fr2, fl2
            if op in COMPARISON:
                cond2 = compare(op, fl2, fr2)
                v2 = cond2.astype(np.float64) if return_bool else fl2
                k2 = rkeep if return_bool else rkeep & cond2
            else:
                v2 = arith(op, fl2, fr2)
                k2 = rkeep
            lbl2 = [
                _result_labels(_match_labels(rl, matching), rl, op, matching, drop_immediately)
                for rl in rhs.labels
            ]
            extra = VecBlock(lbl2, np.where(k2, v2, 0.0), k2, np.full(len(lbl2), return_bool))
    drop = np.full(n_out, return_bool)
    out = VecBlock(out_labels, vals, pres, drop)
    if extra is not None:
        out = VecBlock(
            out.labels + extra.labels,
            np.concatenate([out.values, extra.values]),
            np.concatenate([out.present, extra.present]),
            np.concatenate([out.drop_name, extra.drop_name]),
        )
    return out.compact()


def _sig_presence_mask(used: np.ndarray, sigs: np.ndarray, nsigs: int) -> np.ndarray:
    """Per signature and step: whether any row of that signature is set."""
    steps = used.shape[1]
    rows, cols = np.nonzero(used)
    hits = np.bincount(sigs[rows] * steps + cols, minlength=nsigs * steps)
    return hits.reshape(nsigs, steps) > 0


def vector_scalar_binop(
    op: str, vec: VecBlock, scalar: np.ndarray, swap: bool, return_bool: bool
) -> tuple[VecBlock, bool]:
    """Vector/scalar operation; returns (result, whether the metric name is to be dropped)."""
    s = scalar[None, :]
    lf, rf = (s, vec.values) if swap else (vec.values, s)
    if op in ("</", ">/"):
        return VecBlock.empty(vec.present.shape[1]), False
    if op in COMPARISON:
        cond = compare(op, lf, rf)
        if return_bool:
            out = VecBlock(vec.labels, cond.astype(np.float64), vec.present.copy(), vec.drop_name.copy())
            return out, True
        out = VecBlock(vec.labels, vec.values, vec.present & cond, vec.drop_name.copy(), vec.sample_ts)
        return out.compact(), False
    values = arith(op, lf, rf)
    return VecBlock(
        vec.labels, np.broadcast_to(values, vec.values.shape).copy(), vec.present.copy(), vec.drop_name.copy()
    ), True
