"""Runner for Prometheus's promqltest scripting language (``load``, ``clear``, ``eval`` ...).

:func:`run_files` executes ``.test`` scripts against :class:`~narthex.promql.engine.Engine` with the
options upstream's test engine uses (experimental functions, delayed name removal, 10000 samples per
query), including the extra ``@`` modifier and range-mode checks upstream runs for each instant eval.
Evals touching native histograms are skipped, with the reason.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TextIO

import numpy as np

from narthex.model.duration import DurationError, parse_duration
from narthex.model.labels import Labels
from narthex.promql.ast import (
    AggregateExpr,
    BinaryExpr,
    Call,
    Expr,
    MatrixSelector,
    ParenExpr,
    StepInvariantExpr,
    SubqueryExpr,
    UnaryExpr,
    VectorSelector,
    walk,
)
from narthex.promql.engine import FEATURE_DELAYED_NAME_REMOVAL, Engine
from narthex.promql.errors import ParseError
from narthex.promql.functions import AT_MODIFIER_UNSAFE_FUNCTIONS
from narthex.promql.parser import ALL_FEATURES, SequenceValue, parse_expr, parse_series_desc
from narthex.promql.storage import MemoryStorage, series_matches
from narthex.promql.value import Matrix, PromQLError, Result, Scalar, String, Vector, format_labels

MAX_SAMPLES = 10000
EPSILON = 1e-6
_HISTOGRAM_FUNCTIONS = frozenset(
    {"histogram_avg", "histogram_count", "histogram_sum", "histogram_stddev", "histogram_stdvar"}
)
_PAT_LOAD = re.compile(r"^load(?:_(with_nhcb))?\s+(.+?)$")
_PAT_INSTANT = re.compile(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
_PAT_RANGE = re.compile(
    r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$"
)
# What upstream appends to an annotation once it knows the query: merged details of the
# forced-monotonicity info and the start-time-overlap warning, and the position.
_POSITION_SUFFIX = re.compile(
    r"(?:, from buckets .*, over \d+ samples from \S+ to \S+| \(\d+ occurrences\))? \(\d+:\d+\)$"
)
_PAT_EXPECT = re.compile(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$")
_PAT_EXPECT_RANGE = re.compile(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$")
_CONTEXT_FUNCS = re.compile(r"(start|end|range|step)\(\)")


class TestDefinitionError(Exception):
    """A malformed test script."""


@dataclass
class _Expect:
    message: str | None = None
    regex: re.Pattern[str] | None = None

    def matches(self, text: str) -> bool:
        """Upstream's exact or regex match; an annotation also matches without its ``(line:col)``
        suffix and merged details, since the shared test files state messages without them."""
        bare = _POSITION_SUFFIX.sub("", text)
        if self.regex is not None:
            return self.regex.search(text) is not None or self.regex.search(bare) is not None
        if self.message is not None:
            return self.message in (text, bare)
        return True

    def describe(self) -> str:
        return self.regex.pattern if self.regex is not None else (self.message or ".*")


@dataclass
class _Eval:
    expr: str
    line: int
    start: int
    end: int
    step: int
    is_range: bool
    fail: bool = False
    warn: bool = False
    info: bool = False
    ordered: bool = False
    fail_message: str | None = None
    fail_regexp: re.Pattern[str] | None = None
    expects: dict[str, list[_Expect]] = field(default_factory=dict)
    expect_scalar: bool = False
    expected: dict[Labels, tuple[int, list[SequenceValue]]] = field(default_factory=dict)
    expected_string: str | None = None
    exclude_from_range: bool = False
    has_histogram_expectation: bool = False
    eval_time: int = 0

    def is_fail(self) -> bool:
        return self.fail or bool(self.expects.get("fail"))

    def is_ordered(self) -> bool:
        return self.ordered or bool(self.expects.get("ordered"))


@dataclass
class _Load:
    step: int
    series: list[tuple[Labels, list[SequenceValue], list[SequenceValue] | None]]
    with_nhcb: bool
    line: int


class _Clear:
    pass


class _Failure(Exception):
    pass


def _dur(text: str) -> int:
    try:
        return parse_duration(text.strip())
    except DurationError as exc:
        raise TestDefinitionError(f"invalid duration {text!r}: {exc}") from None


def _labels(d: dict[str, str]) -> Labels:
    return tuple(sorted((k, v) for k, v in d.items() if v != ""))


def _parse_number(text: str) -> float | None:
    """Go's ParseInt(s, 0, 64) falling back to ParseFloat."""
    s = text.strip()
    try:
        body = s.lstrip("+-")
        if len(body) > 1 and body[0] == "0" and body[1].isdigit() and body.isdigit():
            return float(int(s, 8))
        return float(int(s, 0))
    except ValueError:
        pass
    if "_" in s:
        return None
    try:
        return float(s)
    except ValueError:
        return None


def _parse_st_sequence(text: str) -> list[SequenceValue]:
    out: list[SequenceValue] = []
    for item in text.split():
        if item == "_":
            out.append(SequenceValue(omitted=True))
            continue
        if item.startswith("_x"):
            out.extend(SequenceValue(omitted=True) for _ in range(int(item[2:])))
            continue
        m = re.fullmatch(r"([+-]?)(\d+[a-wyzA-Z]*)(?:(?:([+-])(\d+[a-wyzA-Z]*))?x(\d+))?", item)
        if m is None:
            raise TestDefinitionError(f"invalid ST item {item!r}")
        base = _dur(m.group(2)) * (-1 if m.group(1) == "-" else 1)
        if m.group(5) is None:
            out.append(SequenceValue(float(base)))
            continue
        delta = _dur(m.group(4)) * (-1 if m.group(3) == "-" else 1) if m.group(4) else 0
        for i in range(int(m.group(5)) + 1):
            out.append(SequenceValue(float(base + i * delta)))
    return out


def parse_script(text: str) -> list[_Load | _Clear | _Eval]:
    """Parse a test script into commands."""
    lines = []
    for raw in text.split("\n"):
        s = raw.strip()
        lines.append("" if s.startswith("#") else s)
    cmds: list[_Load | _Clear | _Eval] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        word = re.split(r"[\t ]+", line, maxsplit=1)[0].lower()
        if word == "clear":
            cmds.append(_Clear())
            i += 1
        elif word.startswith("load"):
            i, load = _parse_load(lines, i)
            cmds.append(load)
        elif word.startswith("eval"):
            i, ev = _parse_eval(lines, i)
            cmds.append(ev)
        else:
            raise TestDefinitionError(f"line {i + 1}: invalid command {line!r}")
    return cmds


def _parse_load(lines: list[str], i: int) -> tuple[int, _Load]:
    m = _PAT_LOAD.match(lines[i])
    if m is None:
        raise TestDefinitionError(f"line {i + 1}: invalid load command")
    load = _Load(_dur(m.group(2)), [], m.group(1) == "with_nhcb", i + 1)
    pending: tuple[Labels, list[SequenceValue]] | None = None
    i += 1
    while i < len(lines) and lines[i]:
        line = lines[i]
        head = re.split(r"[ \t]", line, maxsplit=1)[0]
        if head.endswith("@st") and len(re.split(r"[ \t]", line, maxsplit=1)) > 1:
            metric_part, vals_part = head[:-3], re.split(r"[ \t]", line, maxsplit=1)[1]
            lbls, _ = parse_series_desc(metric_part + " _")
            pending = (_labels(lbls), _parse_st_sequence(vals_part))
            i += 1
            continue
        try:
            lbls, vals = parse_series_desc(line)
        except ParseError as exc:
            raise TestDefinitionError(f"line {i + 1}: {exc}") from None
        st = None
        if pending is not None:
            st = pending[1]
            pending = None
        load.series.append((_labels(lbls), vals, st))
        i += 1
    return i, load


def _parse_eval(lines: list[str], i: int) -> tuple[int, _Eval]:
    line = lines[i]
    mi = _PAT_INSTANT.match(line)
    mr = _PAT_RANGE.match(line)
    if mi is None and mr is None:
        raise TestDefinitionError(f"line {i + 1}: invalid evaluation command")
    if mi is not None:
        mod, expr = mi.group(1), mi.group(3)
        t = _dur(mi.group(2) or "0s")
        ev = _Eval(expr, i + 1, t, t, 0, False, eval_time=t)
    else:
        assert mr is not None
        mod, expr = mr.group(1), mr.group(5)
        start, end, step = _dur(mr.group(2)), _dur(mr.group(3)), _dur(mr.group(4))
        if end < start:
            raise TestDefinitionError(f"line {i + 1}: end timestamp before start timestamp")
        ev = _Eval(expr, i + 1, start, end, step, True)
    if mod == "ordered":
        ev.ordered = True
    elif mod == "fail":
        ev.fail = True
    elif mod == "warn":
        ev.warn = True
    elif mod == "info":
        ev.info = True
    expect_range_vector = False
    j = 1
    while i + 1 < len(lines):
        i += 1
        d = lines[i]
        if not d:
            i -= 1
            break
        if ev.fail and d.startswith("expected_fail_message"):
            ev.fail_message = d[len("expected_fail_message") :].strip()
            break
        if ev.fail and d.startswith("expected_fail_regexp"):
            ev.fail_regexp = re.compile(d[len("expected_fail_regexp") :].strip())
            break
        if d.startswith("expect range vector"):
            m = _PAT_EXPECT_RANGE.match(d)
            if m is None:
                raise TestDefinitionError(f"line {i + 1}: invalid range vector definition")
            ev.start, ev.end, ev.step = _dur(m.group(1)), _dur(m.group(2)), _dur(m.group(3))
            ev.eval_time = ev.end
            ev.exclude_from_range = True
            expect_range_vector = True
            continue
        if d.startswith("expect string"):
            body = d[len("expect string") :].strip()
            if len(body) >= 2 and body[0] == body[-1] and body[0] in '"`':
                ev.expected_string = (
                    body[1:-1].encode().decode("unicode_escape") if body[0] == '"' else body[1:-1]
                )
            else:
                raise TestDefinitionError(f"line {i + 1}: expected string literal not valid")
            ev.exclude_from_range = True
            continue
        if d.split(" ")[0] == "expect":
            m = _PAT_EXPECT.match(d.strip())
            if m is None:
                raise TestDefinitionError(f"line {i + 1}: invalid expect statement")
            exp = _Expect()
            if m.group(2) == "msg":
                exp.message = m.group(3).strip()
            elif m.group(2) == "regex":
                exp.regex = re.compile(m.group(3).strip())
            ev.expects.setdefault(m.group(1), []).append(exp)
            continue
        num = _parse_number(d)
        if num is not None:
            ev.expect_scalar = True
            ev.expected[()] = (0, [SequenceValue(num)])
            break
        if "{{" in d:
            ev.has_histogram_expectation = True
        try:
            lbls, vals = parse_series_desc(d)
        except ParseError as exc:
            raise TestDefinitionError(f"line {i + 1}: {exc}") from None
        if len(vals) > 1 and not ev.is_range and not expect_range_vector:
            raise TestDefinitionError(
                f"line {i + 1}: expecting multiple values in instant evaluation not allowed"
            )
        ev.expected[_labels(lbls)] = (j, vals)
        j += 1
    return i + 1, ev


# ---------------------------------------------------------------------------------------------
# Execution.


def almost_equal(a: float, b: float, eps: float = EPSILON) -> bool:
    """upstream's almost.Equal (stale markers aside)."""
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    min_normal = 2.2250738585072014e-308
    if a == 0 or b == 0 or abs_sum < min_normal:
        return diff < eps * min_normal
    return diff / min(abs_sum, sys.float_info.max) < eps


def _fmt_value(v: float) -> str:
    from narthex.promql.printer import format_float_g

    return format_float_g(v)


def _describe(value: object) -> str:
    if isinstance(value, Vector):
        return (
            "{"
            + ", ".join(f"{format_labels(s.labels)} => {_fmt_value(s.value)}" for s in value.samples)
            + "}"
        )
    if isinstance(value, Matrix):
        parts = []
        for s in value.series:
            pts = " ".join(
                f"{_fmt_value(float(v))}@{int(t)}" for t, v in zip(s.timestamps, s.values, strict=True)
            )
            parts.append(f"{format_labels(s.labels)} => [{pts}]")
        return "{" + "; ".join(parts) + "}"
    if isinstance(value, Scalar):
        return f"scalar {_fmt_value(value.value)}"
    if isinstance(value, String):
        return f"string {value.value!r}"
    return repr(value)


def _expected_desc(ev: _Eval) -> str:
    if ev.expected_string is not None:
        return f"string {ev.expected_string!r}"
    if ev.expect_scalar:
        return f"scalar {_fmt_value(ev.expected[()][1][0].value)}"
    parts = []
    for lbls, (_, vals) in ev.expected.items():
        parts.append(
            f"{format_labels(lbls)} => [{' '.join('_' if v.omitted else _fmt_value(v.value) for v in vals)}]"
        )
    return "{" + "; ".join(parts) + "}"


def _rebuild_with_at(expr: Expr, ts: int) -> tuple[Expr, bool]:
    """Set ``@ ts`` on every selector/subquery outside ``@`` subqueries (upstream's
    atModifierTestCases); also says whether an @-unsafe function appears there."""
    unsafe = False

    def rec(node: Expr) -> Expr:
        nonlocal unsafe
        match node:
            case VectorSelector():
                return node if node.timestamp_ms is not None else replace(node, timestamp_ms=ts)
            case MatrixSelector():
                vs = node.vector_selector
                assert isinstance(vs, VectorSelector)
                if vs.timestamp_ms is None:
                    vs = replace(vs, timestamp_ms=ts)
                return replace(node, vector_selector=vs)
            case SubqueryExpr():
                if node.timestamp_ms is not None:
                    return node
                return replace(node, timestamp_ms=ts)
            case Call():
                if node.func.name in AT_MODIFIER_UNSAFE_FUNCTIONS:
                    unsafe = True
                return replace(node, args=tuple(rec(a) for a in node.args))
            case AggregateExpr():
                return replace(
                    node, expr=rec(node.expr), param=rec(node.param) if node.param is not None else None
                )
            case BinaryExpr():
                return replace(node, lhs=rec(node.lhs), rhs=rec(node.rhs))
            case ParenExpr() | UnaryExpr() | StepInvariantExpr():
                return replace(node, expr=rec(node.expr))
        return node

    return rec(expr), unsafe


class Runner:
    """Executes parsed scripts and records passes, failures and skips."""

    def __init__(self, out: TextIO, show_skips: bool = True) -> None:
        self.out = out
        self.show_skips = show_skips
        self.engine = Engine(
            max_samples=MAX_SAMPLES,
            timeout_s=100,
            features=ALL_FEATURES | {FEATURE_DELAYED_NAME_REMOVAL},
        )
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.skip_reasons: dict[str, int] = {}
        self.failures: list[str] = []

    def run_file(self, path: str) -> None:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        try:
            cmds = parse_script(text)
        except (TestDefinitionError, ParseError) as exc:
            self.failed += 1
            self._report(f"{path}: invalid test file: {exc}")
            return
        storage = MemoryStorage()
        hist_series: list[Labels] = []
        for cmd in cmds:
            if isinstance(cmd, _Clear):
                storage = MemoryStorage()
                hist_series = []
            elif isinstance(cmd, _Load):
                self._load(storage, cmd, hist_series)
            else:
                reason = self._skip_reason(cmd, hist_series)
                if reason is not None:
                    self.skipped += 1
                    self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + 1
                    if self.show_skips:
                        print(f"SKIP {path}:{cmd.line}: {cmd.expr} ({reason})", file=self.out)
                    continue
                try:
                    self._exec_eval(storage, cmd)
                except _Failure as exc:
                    self.failed += 1
                    self._report(f"FAIL {path}:{cmd.line}: {cmd.expr}: {exc}")
                except Exception as exc:  # an engine crash is a failed eval
                    self.failed += 1
                    self._report(
                        f"FAIL {path}:{cmd.line}: {cmd.expr}: unexpected {type(exc).__name__}: {exc}"
                    )
                else:
                    self.passed += 1

    def _report(self, line: str) -> None:
        self.failures.append(line)
        print(line, file=self.out)

    @staticmethod
    def _load(storage: MemoryStorage, cmd: _Load, hist_series: list[Labels]) -> None:
        for lbls, vals, st in cmd.series:
            ts = []
            fs = []
            has_hist = False
            sts: list[int] = []
            for k, v in enumerate(vals):
                if v.omitted:
                    continue
                if v.histogram is not None:
                    has_hist = True
                    continue
                ts.append(k * cmd.step)
                fs.append(v.value)
                if st is not None and k < len(st) and not st[k].omitted:
                    sts.append(k * cmd.step + int(st[k].value))
                else:
                    sts.append(0)
            if has_hist:
                hist_series.append(lbls)
            if st is not None and len(st) != len(vals):
                raise TestDefinitionError(f"@st line has {len(st)} values but sample line has {len(vals)}")
            storage.add_series(lbls, ts, fs, sts if st is not None else None)
            if cmd.with_nhcb:
                d = dict(lbls)
                name = d.get("__name__", "")
                for suffix in ("_bucket", "_count", "_sum"):
                    if name.endswith(suffix):
                        d["__name__"] = name[: -len(suffix)]
                        d.pop("le", None)
                        hist_series.append(_labels(d))
                        break

    @staticmethod
    def _skip_reason(ev: _Eval, hist_series: list[Labels]) -> str | None:
        if ev.has_histogram_expectation:
            return "native histograms are a later task"
        try:
            tree = parse_expr(ev.expr, features=ALL_FEATURES)
        except ParseError:
            return None
        for node, _ in walk(tree):
            if isinstance(node, Call) and node.func.name in _HISTOGRAM_FUNCTIONS:
                return "native histograms are a later task"
            if isinstance(node, VectorSelector) and any(
                series_matches(s, node.matchers) for s in hist_series
            ):
                return "native histograms are a later task"
        return None

    # -- evaluation -------------------------------------------------------------------------

    def _exec_eval(self, storage: MemoryStorage, ev: _Eval) -> None:
        if ev.is_range:
            res = self._query(storage, ev, ev.expr, None, (ev.start, ev.end, ev.step))
            if res is None:
                return
            self._check_annotations(ev, res)
            self._compare(ev, res.value)
            return
        tree = parse_expr(ev.expr, features=ALL_FEATURES)
        queries: list[tuple[Expr | str, int]] = [(ev.expr, ev.eval_time)]
        t = ev.eval_time
        at_tree, unsafe = _rebuild_with_at(tree, t)
        if not unsafe:
            extra = [-10 * t, 0, int(t / 5), t, 10 * t] if t != 0 else [-1000, 0, 1000]
            # As upstream, the rewritten query runs as its printed text (annotation positions
            # refer to that text).
            at_text = str(at_tree)
            queries.extend((at_text, et) for et in extra)
        for q, et in queries:
            res = self._query(storage, ev, q, et, None)
            if res is None:
                continue
            self._check_annotations(ev, res)
            self._compare(ev, res.value)
            if ev.exclude_from_range or _CONTEXT_FUNCS.search(ev.expr):
                continue
            try:
                rres = self.engine.range_query(storage, q, et - 60_000, et + 60_000, 60_000)
            except PromQLError as exc:
                raise _Failure(f"error evaluating query in range mode: {exc}") from None
            if ev.is_ordered():
                continue
            mat = rres.value
            assert isinstance(mat, Matrix)
            samples = []
            from narthex.promql.value import Sample

            for s in mat.series:
                hit = np.nonzero(s.timestamps == et)[0]
                if len(hit):
                    samples.append(Sample(s.labels, et, float(s.values[hit[0]])))
            if isinstance(res.value, Scalar):
                value: object = Scalar(et, samples[0].value if samples else math.nan)
            else:
                value = Vector(samples)
            try:
                self._compare(ev, value)
            except _Failure as exc:
                raise _Failure(f"range mode at {et}: {exc}") from None

    def _query(
        self,
        storage: MemoryStorage,
        ev: _Eval,
        q: Expr | str,
        at: int | None,
        rng: tuple[int, int, int] | None,
    ) -> Result | None:
        try:
            if rng is not None:
                res = self.engine.range_query(storage, q, *rng)
            else:
                assert at is not None
                res = self.engine.instant_query(storage, q, at)
        except PromQLError as exc:
            if ev.is_fail():
                self._check_failure(ev, str(exc))
                return None
            raise _Failure(f"error evaluating query: {exc}") from None
        if ev.is_fail():
            raise _Failure(f"expected error but got none; result {_describe(res.value)}")
        return res

    @staticmethod
    def _check_failure(ev: _Eval, msg: str) -> None:
        if ev.fail_message and ev.fail_message != msg:
            raise _Failure(f"expected error {ev.fail_message!r}, got {msg!r}")
        if ev.fail_regexp is not None and not ev.fail_regexp.search(msg):
            raise _Failure(f"expected error matching {ev.fail_regexp.pattern!r}, got {msg!r}")
        fails = ev.expects.get("fail")
        if fails and not fails[0].matches(msg):
            raise _Failure(f"expected error matching {fails[0].describe()!r}, got {msg!r}")

    @staticmethod
    def _check_annotations(ev: _Eval, res: Result) -> None:
        if ev.warn and not res.warnings:
            raise _Failure("expected warnings but got none")
        if ev.info and not res.infos:
            raise _Failure("expected info annotations but got none")
        for kind, actual in (("warn", res.warnings), ("info", res.infos)):
            exps = ev.expects.get(kind, [])
            if not exps:
                continue
            if not actual:
                raise _Failure(f"expected {kind} annotations but none were found")
            for e in exps:
                if not any(e.matches(a) for a in actual):
                    raise _Failure(f"expected {kind} annotation matching {e.describe()!r}, found: {actual}")
            for a in actual:
                if not any(e.matches(a) for e in exps):
                    raise _Failure(f"unexpected {kind} annotation {a!r}")
        if "no_warn" in ev.expects and res.warnings:
            raise _Failure(f"unexpected warning annotations: {res.warnings}")
        if "no_info" in ev.expects and res.infos:
            raise _Failure(f"unexpected info annotations: {res.infos}")

    def _compare(self, ev: _Eval, value: object) -> None:
        want = _expected_desc(ev)
        got = _describe(value)

        def fail(msg: str) -> _Failure:
            return _Failure(f"{msg}; expected {want}, got {got}")

        if isinstance(value, Matrix):
            if ev.is_ordered():
                raise fail("expected ordered result, but query returned a matrix")
            if ev.expect_scalar:
                raise fail("expected scalar result, but got matrix")
            keys = [s.labels for s in value.series]
            if keys != sorted(keys):
                raise fail("matrix results should always be sorted by labels")
            seen = set()
            for s in value.series:
                if s.labels not in ev.expected:
                    raise fail(f"unexpected metric {format_labels(s.labels)} in result")
                seen.add(s.labels)
                _, vals = ev.expected[s.labels]
                exp_points = []
                for i, e in enumerate(vals):
                    t = ev.start + i * ev.step
                    if t > ev.end:
                        raise fail(
                            f"expected {len(vals)} points, but query time range cannot return this many"
                        )
                    if e.histogram is None and not e.omitted:
                        exp_points.append((t, e.value))
                if len(exp_points) != len(s.timestamps):
                    raise fail(f"expected {len(exp_points)} float points for {format_labels(s.labels)}")
                for (et, evv), at, av in zip(
                    exp_points, s.timestamps.tolist(), s.values.tolist(), strict=True
                ):
                    if et != at:
                        raise fail(f"expected timestamp {et} for {format_labels(s.labels)}, got {at}")
                    if not almost_equal(av, evv):
                        raise fail(f"expected {evv} at t={at} for {format_labels(s.labels)}, got {av}")
            for lbls in ev.expected:
                if lbls not in seen:
                    raise fail(f"expected metric {format_labels(lbls)} not found")
            return
        if isinstance(value, Vector):
            if ev.expect_scalar:
                raise fail("expected scalar result, but got vector")
            seen = set()
            for pos, s in enumerate(value.samples):
                if s.labels not in ev.expected:
                    raise fail(f"unexpected metric {format_labels(s.labels)} in result")
                epos, vals = ev.expected[s.labels]
                if ev.is_ordered() and epos != pos + 1:
                    raise fail(
                        f"expected metric {format_labels(s.labels)} at position {epos} but was at {pos + 1}"
                    )
                if not almost_equal(vals[0].value, s.value):
                    raise fail(f"expected {vals[0].value} for {format_labels(s.labels)} but got {s.value}")
                seen.add(s.labels)
            for lbls in ev.expected:
                if lbls not in seen:
                    raise fail(f"expected metric {format_labels(lbls)} not found")
            return
        if isinstance(value, Scalar):
            if not ev.expect_scalar:
                raise fail("expected vector or matrix result, but got scalar")
            if not almost_equal(ev.expected[()][1][0].value, value.value):
                raise fail("scalar mismatch")
            return
        if isinstance(value, String):
            if ev.expected_string != value.value:
                raise fail("string mismatch")
            return
        raise fail(f"unexpected result type {type(value).__name__}")


def run_files(
    paths: Iterable[str], out: TextIO = sys.stdout, *, show_skips: bool = True
) -> tuple[int, int, int]:
    """Run test scripts, printing one line per failing (and skipped) eval, the skip reasons and
    ``N passed, N failed, N skipped``; returns (passed, failed, skipped)."""
    runner = Runner(out, show_skips)
    for path in paths:
        runner.run_file(path)
    for reason, count in sorted(runner.skip_reasons.items()):
        print(f"skipped {count}: {reason}", file=out)
    print(f"{runner.passed} passed, {runner.failed} failed, {runner.skipped} skipped", file=out)
    return runner.passed, runner.failed, runner.skipped
