"""Label-level helpers: Go regexp template expansion (label_replace), natural sort keys
(sort_by_label) and the matching of series with info metrics (info())."""

from __future__ import annotations

import re

import numpy as np

from narthex.model.labels import METRIC_NAME, Labels
from narthex.model.matcher import Matcher, MatchType
from narthex.promql.ast import Expr, SubqueryExpr, VectorSelector, walk
from narthex.promql.value import ExecutionError, VecBlock, labels_string

_META = frozenset("\\.+*?()|[]{}^$")


def quote_meta(text: str) -> str:
    """Go's regexp.QuoteMeta: escape the regular expression metacharacters."""
    return "".join("\\" + c if c in _META else c for c in text)


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Natural sort key: digit runs compare numerically."""
    parts = re.findall(r"\d+|\D+", text)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def expand_template(template: str, match: object) -> str:
    """Go's regexp.Expand: ``$1``, ``${1}``, ``$name``, ``${name}``; ``$$`` is a dollar."""
    out = []
    i = 0
    groups = match.groups()  # type: ignore[attr-defined]
    named = match.re.groupindex  # type: ignore[attr-defined]

    def group(name: str) -> str:
        if name.isdigit():
            n = int(name)
            if n == 0:
                return match.group(0) or ""  # type: ignore[attr-defined]
            if n <= len(groups):
                return groups[n - 1] or ""
            return ""
        if name in named:
            return match.group(name) or ""  # type: ignore[attr-defined]
        return ""

    while i < len(template):
        c = template[i]
        if c != "$" or i + 1 >= len(template):
            out.append(c)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            end = template.find("}", i + 2)
            name = template[i + 2 : end] if end >= 0 else ""
            if end < 0 or not name or not all(ch.isalnum() or ch == "_" for ch in name):
                out.append(c)
                i += 1
                continue
            out.append(group(name))
            i = end + 1
            continue
        j = i + 1
        while j < len(template) and (template[j].isalnum() or template[j] == "_"):
            j += 1
        if j == i + 1:
            out.append(c)
            i += 1
            continue
        out.append(group(template[i + 1 : j]))
        i = j
    return "".join(out)


def effective_info_name_matchers(matchers: list[Matcher]) -> list[Matcher]:
    """upstream's effectiveInfoNameMatchers: target_info unless the selector names info metrics."""
    if any(m.type in (MatchType.EQUAL, MatchType.REGEX) for m in matchers):
        return matchers
    if matchers:
        return [Matcher(MatchType.REGEX, METRIC_NAME, ".+_info"), *matchers]
    return [Matcher(MatchType.EQUAL, METRIC_NAME, "target_info")]


def info_timestamp_and_offset(expr: Expr) -> tuple[int | None, int]:
    """The ``@`` time and offset of the first selector of info()'s argument (through subqueries)."""
    for node, path in walk(expr):
        if isinstance(node, VectorSelector):
            at, offset = node.timestamp_ms, node.offset_ms
            for anc in reversed(path):
                if at is not None:
                    break
                if isinstance(anc, SubqueryExpr):
                    offset += anc.offset_ms
                    at = anc.timestamp_ms
            return at, offset
    return None, 0


def combine_info(
    block: VecBlock, info_block: VecBlock, ignore: np.ndarray, data_names: set[str], all_match_empty: bool
) -> VecBlock:
    """Add to each series of ``block`` the data labels of its info series (matched on the identifying
    labels ``instance`` and ``job``; at each step the newest info sample wins)."""
    steps = block.values.shape[1]
    # Info series per (info metric name, identifying labels), newest sample wins per step.
    sig_ids: dict[tuple[object, ...], int] = {}
    info_names: dict[str, None] = {}
    info_sig = np.zeros(len(info_block), dtype=np.int64)
    for i, lbls in enumerate(info_block.labels):
        d = dict(lbls)
        name = d.get(METRIC_NAME, "")
        info_names.setdefault(name, None)
        key = (name, d.get("instance", ""), d.get("job", ""))
        info_sig[i] = sig_ids.setdefault(key, len(sig_ids))
    nsig = len(sig_ids)
    rowmap = np.full((nsig, steps), -1, dtype=np.int64)
    if len(info_block):
        assert info_block.sample_ts is not None
        orig = np.where(info_block.present, info_block.sample_ts, np.iinfo(np.int64).min)
        best = np.full((nsig, steps), np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(best, info_sig, orig)
        rr, tt = np.nonzero(info_block.present & (orig == best[info_sig]))
        cnt = np.zeros((nsig, steps), dtype=np.int64)
        np.add.at(cnt, (info_sig[rr], tt), 1)
        if (cnt > 1).any():
            g, t = (int(x[0]) for x in np.nonzero(cnt > 1))
            rows = [int(r) for r in np.nonzero((info_sig == g) & info_block.present[:, t])[0][:2]]
            ts = int(best[g, t])
            raise ExecutionError(
                "found duplicate series for info metric: existing "
                f"{labels_string(info_block.labels[rows[0]])} @ {ts}, "
                f"new {labels_string(info_block.labels[rows[1]])} @ {ts}"
            )
        rowmap[info_sig[rr], tt] = rr
    names = list(info_names)
    out_labels: list[Labels] = []
    out_vals: list[np.ndarray] = []
    out_pres: list[np.ndarray] = []
    out_drop: list[bool] = []
    for i, lbls in enumerate(block.labels):
        if ignore[i] or not names:
            if ignore[i] or all_match_empty:
                out_labels.append(lbls)
                out_vals.append(block.values[i])
                out_pres.append(block.present[i])
                out_drop.append(bool(block.drop_name[i]))
            continue
        d = dict(lbls)
        sig_rows = []
        for name in names:
            g = sig_ids.get((name, d.get("instance", ""), d.get("job", "")))
            sig_rows.append(rowmap[g] if g is not None else np.full(steps, -1, dtype=np.int64))
        combos = np.stack(sig_rows, axis=0)  # (names, steps)
        uniq, inverse = np.unique(combos.T, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        for c, combo in enumerate(uniq.tolist()):
            mask = block.present[i] & (inverse == c)
            if not mask.any():
                continue
            extra: dict[str, str] = {}
            seen = 0
            for r in combo:
                if r < 0:
                    continue
                seen += 1
                for k, v in info_block.labels[r]:
                    if k == METRIC_NAME or (data_names and k not in data_names):
                        continue
                    if extra.get(k, v) != v:
                        raise ExecutionError(f"conflicting label: {k}")
                    if k in d:
                        continue
                    extra[k] = v
            if seen == 0 and not all_match_empty:
                continue
            new = dict(d)
            new.update(extra)
            out_labels.append(tuple(sorted(new.items())))
            out_vals.append(block.values[i])
            out_pres.append(mask)
            out_drop.append(bool(block.drop_name[i]))
    if not out_labels:
        return VecBlock.empty(steps)
    out = VecBlock(out_labels, np.array(out_vals), np.array(out_pres), np.array(out_drop, dtype=bool))
    return out.compact()
