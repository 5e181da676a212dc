"""Run promtool rule unit test files: load input series lazily, evaluate the rule groups at every
evaluation interval, compare firing alerts and PromQL results; promtool's output and exit codes."""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from narthex.model.duration import format_duration
from narthex.model.labels import Labels
from narthex.promql.engine import Engine
from narthex.promql.lexer import go_quote
from narthex.promql.parser import DEFAULT_FEATURES, ParseError, parse_series_desc
from narthex.promql.value import STALE_NAN, PromQLError
from narthex.rules.alerting import AlertingRule, AlertState
from narthex.rules.appendable import MemoryRuleStorage
from narthex.rules.group import Group, GroupOptions
from narthex.rules.manager import build_groups
from narthex.rules.metrics import RuleMetrics
from narthex.rules.rule import RuleResultTypeError, engine_query_func
from narthex.rules.unittest.gofmt import format_float_e, go_duration, sort_key
from narthex.rules.unittest.junit import JUnitReport, JUnitSuite
from narthex.rules.unittest.spec import PromQLTestCase, TestGroup, UnitTestFile, parse_unit_test_file
from narthex.rules.yamldecode import YAMLError
from narthex.util.gofmt import labels_string

SUCCESS = 0
FAILURE = 1
DEFAULT_EVAL_INTERVAL_MS = 60_000
UNIT_TEST_FEATURES = DEFAULT_FEATURES


class LoadError(Exception):
    """An input series that does not parse."""


@dataclass
class LazyLoader:
    """Input series samples, appended to the storage only up to the evaluation time reached."""

    storage: MemoryRuleStorage
    pending: list[tuple[Labels, list[tuple[int, float]]]] = field(default_factory=list)

    @classmethod
    def from_group(cls, group: TestGroup, start_ms: int) -> LazyLoader:
        loader = cls(MemoryRuleStorage())
        for item in group.input_series:
            try:
                labels, values = parse_series_desc(f"{item.series} {item.values}")
            except ParseError as exc:
                raise LoadError(str(exc)) from None
            samples = []
            for i, sv in enumerate(values):
                if sv.omitted:
                    continue
                if sv.histogram is not None:
                    raise LoadError("native histograms in input_series are not supported by Narthex")
                value = STALE_NAN if _is_stale(sv.value) else sv.value
                samples.append((start_ms + i * group.interval_ms, value))
            loader.pending.append((tuple(sorted(labels.items())), samples))
        return loader

    def append_till(self, ts: int) -> None:
        app = self.storage.rule_appender()
        remaining = []
        for labels, samples in self.pending:
            keep = []
            for t, v in samples:
                if t <= ts:
                    app.append(labels, t, v)
                else:
                    keep.append((t, v))
            if keep:
                remaining.append((labels, keep))
        app.commit()
        self.pending = remaining


def _is_stale(value: float) -> bool:
    from narthex.promql.parser import is_stale_nan

    return is_stale_nan(value)


def _go_float(value: float) -> str:
    """``strconv.FormatFloat(v, 'f', -1, 64)``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(repr(value)), "f")
    return text[:-2] if text.endswith(".0") else text


def _float_equal(a: float, b: float, fuzzy: bool) -> bool:
    if a == b:
        return True
    return fuzzy and (math.nextafter(a, -math.inf) == b or math.nextafter(a, math.inf) == b)


def _parse_metric(text: str) -> Labels:
    if text.strip() == "":
        return ()
    labels, values = parse_series_desc(text)
    if values:
        raise ParseError(f"unexpected values in metric {text!r}")
    return tuple(sorted(labels.items()))


@dataclass
class _AlertEntry:
    labels: Labels
    annotations: Labels

    def key(self) -> tuple[object, ...]:
        return (sort_key(self.labels), sort_key(self.annotations))

    def __str__(self) -> str:
        return f"Labels:{labels_string(self.labels)}\nAnnotations:{labels_string(self.annotations)}"


def _indent(text: str, indent: str) -> str:
    return ("\n" + indent).join(text.split("\n"))


def _alerts_string(alerts: list[_AlertEntry]) -> str:
    if not alerts:
        return "[]"
    parts = [f"{i}:" + _indent("\n" + str(a), "  ") for i, a in enumerate(alerts)]
    return "[\n" + ",\n".join(parts) + "\n]"


def _alerts_equal(exp: list[_AlertEntry], got: list[_AlertEntry]) -> bool:
    return len(exp) == len(got) and all(
        e.labels == g.labels and e.annotations == g.annotations for e, g in zip(exp, got, strict=True)
    )


def _samples_string(samples: list[tuple[Labels, float]]) -> str:
    if not samples:
        return "nil"
    return ", ".join(f"{labels_string(lbls)} {format_float_e(v)}" for lbls, v in samples)


class TestGroupRunner:
    """Runs one test group against the rule files."""

    def __init__(
        self,
        test: TestGroup,
        name: str,
        spec: UnitTestFile,
        order: dict[str, int],
        eval_ms: int,
        debug: bool = False,
    ) -> None:
        self.debug = debug
        self.test = test
        self.name = name
        self.spec = spec
        self.order = order
        self.eval_ms = eval_ms
        self.fuzzy = spec.fuzzy_compare

    def run(self, ignore_unknown_fields: bool) -> list[str]:
        test = self.test
        mint = test.start_timestamp_ms or 0
        try:
            loader = LazyLoader.from_group(test, mint)
        except LoadError as exc:
            return [str(exc)]
        engine = Engine(features=UNIT_TEST_FEATURES, default_subquery_step_ms=self.eval_ms)
        storage = loader.storage
        query = engine_query_func(engine, storage)
        opts = GroupOptions(
            storage=storage,
            query_func=query,
            metrics=RuleMetrics(),
            query_for=lambda queryable: engine_query_func(engine, queryable),
        )
        groups_map, errors = build_groups(
            self.spec.rule_files,
            test.interval_ms,
            opts,
            test.external_labels,
            test.external_url,
            should_restore=False,
            features=UNIT_TEST_FEATURES,
            ignore_unknown_fields=ignore_unknown_fields,
        )
        if errors:
            return errors
        groups = sorted(groups_map.values(), key=lambda g: (self.order.get(g.name, 0), g.file, g.name))
        maxt = mint + test.max_eval_time_ms()
        for case in test.alert_rule_tests:
            if case.alertname == "":
                where = f" (in TestGroup {test.name})" if test.name else ""
                return [
                    "an item under alert_rule_test misses required attribute alertname at eval_time "
                    f"{format_duration(case.eval_time_ms)}{where}"
                ]
        eval_times = sorted({c.eval_time_ms for c in test.alert_rule_tests})
        errs: list[str] = []
        curr = 0
        ts = mint
        while ts <= maxt:
            loader.append_till(ts)
            eval_errs = self._eval_groups(groups, ts)
            errs.extend(eval_errs)
            if eval_errs:
                return errs
            while curr < len(eval_times) and ts - mint <= eval_times[curr] < ts + self.eval_ms - mint:
                errs.extend(self._check_alerts(groups, eval_times[curr]))
                curr += 1
            ts += self.eval_ms
        for case in test.promql_expr_tests:
            errs.extend(self._check_expr(engine, storage, case, mint))
        if self.debug:
            self._dump(engine, storage, mint)
        return errs

    def _dump(self, engine: Engine, storage: MemoryRuleStorage, mint: int) -> None:
        """``--debug``: every stored sample up to the last evaluation, as promtool prints a matrix."""
        span = (self.test.max_eval_time_ms() + 1000) // 1000 * 1000
        expr = f'{{__name__=~".+"}}[{format_duration(span)}]'
        try:
            result = engine.instant_query(storage, expr, mint + span).value
        except PromQLError as exc:
            print(f"DEBUG: Failed query exec, expr: {go_quote(expr)}, err: {exc}", file=sys.stderr)
            return
        print(f"DEBUG: Dump of all data (input_series and rules) at {go_duration(span)}:", file=sys.stderr)
        blocks = []
        for s in getattr(result, "series", []):
            points = [
                f"{_go_float(v)} @[{t}]"
                for t, v in zip(s.timestamps.tolist(), s.values.tolist(), strict=True)
            ]
            blocks.append(f"{labels_string(s.labels)} =>\n" + "\n".join(points))
        print("\n".join(blocks), file=sys.stderr)

    def _eval_groups(self, groups: list[Group], ts: int) -> list[str]:
        errs = []
        for group in groups:
            group.eval(ts)
            for rule in group.rules:
                if rule.last_error:
                    errs.append(f"    rule: {rule.name}, time: {go_duration(ts)}, err: {rule.last_error}")
        return errs

    def _check_alerts(self, groups: list[Group], eval_time: int) -> list[str]:
        cases = [c for c in self.test.alert_rule_tests if c.eval_time_ms == eval_time]
        wanted = {c.alertname for c in cases}
        got: dict[str, list[_AlertEntry]] = {}
        for group in groups:
            for rule in group.rules:
                if isinstance(rule, AlertingRule) and rule.name in wanted:
                    firing = [
                        _AlertEntry(a.labels, a.annotations)
                        for a in rule.active_alerts()
                        if a.state == AlertState.FIRING
                    ]
                    got.setdefault(rule.name, []).extend(firing)
        errs = []
        for case in cases:
            got_alerts = sorted(got.get(case.alertname, []), key=_AlertEntry.key)
            expected = []
            for exp in case.exp_alerts:
                lbls = dict(exp.labels)
                lbls["alertname"] = case.alertname
                expected.append(
                    _AlertEntry(
                        tuple(sorted((k, v) for k, v in lbls.items() if v != "")),
                        tuple(sorted((k, v) for k, v in exp.annotations.items() if v != "")),
                    )
                )
            expected.sort(key=_AlertEntry.key)
            if not _alerts_equal(expected, got_alerts):
                name = f"    name: {self.test.name},\n" if self.test.name else ""
                exp_s = _indent(_alerts_string(expected), "            ")
                got_s = _indent(_alerts_string(got_alerts), "            ")
                errs.append(
                    f"{name}    alertname: {case.alertname}, time: {format_duration(case.eval_time_ms)}, \n"
                    f"        exp:{exp_s}, \n        got:{got_s}"
                )
        return errs

    def _check_expr(
        self, engine: Engine, storage: MemoryRuleStorage, case: PromQLTestCase, mint: int
    ) -> list[str]:
        expr, eval_ms = case.expr, case.eval_time_ms
        where = f"    expr: {go_quote(expr)}, time: {format_duration(eval_ms)}"
        try:
            got = engine_query_func(engine, storage)(expr, mint + eval_ms)
        except (PromQLError, RuleResultTypeError, ParseError) as exc:
            return [f"{where}, err: {exc}"]
        expected: list[tuple[Labels, float]] = []
        for sample in case.exp_samples:
            try:
                labels = _parse_metric(sample.labels)
                if sample.histogram:
                    raise ParseError("native histogram samples are not supported by Narthex")
            except ParseError as exc:
                return [f"{where}, err: labels {go_quote(sample.labels)}: {exc}"]
            expected.append((labels, sample.value))
        expected.sort(key=lambda s: sort_key(s[0]))
        got = sorted(got, key=lambda s: sort_key(s[0]))
        equal = len(expected) == len(got) and all(
            e[0] == g[0] and _float_equal(e[1], g[1], self.fuzzy) for e, g in zip(expected, got, strict=True)
        )
        if equal:
            return []
        return [f"{where},\n        exp: {_samples_string(expected)}\n        got: {_samples_string(got)}"]


def _resolve_rule_files(base_dir: str, patterns: list[str]) -> list[str]:
    import glob

    out = []
    for pattern in patterns:
        if pattern and not os.path.isabs(pattern):
            pattern = os.path.join(base_dir, pattern)
        matches = sorted(glob.glob(pattern))
        if not matches:
            print("  WARNING: no file match pattern", pattern, file=sys.stderr)
        out.extend(matches)
    return out


def run_test_file(
    path: str,
    run: re.Pattern[str] | None,
    ignore_unknown_fields: bool,
    suite: JUnitSuite,
    debug: bool = False,
) -> list[str]:
    """Errors of one unit test file (empty when every selected test group passed)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        message = f"open {path}: {(exc.strerror or str(exc)).lower()}"
        suite.abort(message)
        return [message]
    try:
        spec = parse_unit_test_file(text)
    except YAMLError as exc:
        suite.abort(str(exc))
        return [str(exc)]
    spec.rule_files = _resolve_rule_files(os.path.dirname(path), spec.rule_files)
    eval_ms = spec.evaluation_interval_ms or DEFAULT_EVAL_INTERVAL_MS
    order: dict[str, int] = {}
    for i, name in enumerate(spec.group_eval_order):
        if name in order:
            message = f"group name repeated in evaluation order: {name}"
            suite.abort(message)
            return [message]
        order[name] = i
    errs: list[str] = []
    for i, test in enumerate(spec.tests):
        if run is not None and not run.search(test.name):
            continue
        name = test.name or f"unnamed#{i}"
        case = suite.case(name)
        if test.interval_ms == 0:
            test.interval_ms = eval_ms
        started = time.monotonic()
        if debug:
            print(f"DEBUG: Starting test {name}", file=sys.stderr)
        found = TestGroupRunner(test, name, spec, order, eval_ms, debug).run(ignore_unknown_fields)
        if debug:
            print(f"DEBUG: Test {name} finished, took {time.monotonic() - started:.3f}s", file=sys.stderr)
        for error in found:
            case.fail(error)
        errs.extend(found)
    return errs


def run_test_files(
    files: Sequence[str],
    run: Sequence[str] = (),
    ignore_unknown_fields: bool = False,
    junit_path: str = "",
    debug: bool = False,
) -> int:
    """``promtool test rules``: prints per file ``SUCCESS`` or ``FAILED:`` and the errors."""
    pattern = re.compile("|".join(run)) if run else None
    quiet = logging.NullHandler()
    narthex_logger = logging.getLogger("narthex")
    if not narthex_logger.handlers:
        narthex_logger.addHandler(quiet)  # rule evaluation warnings are reported as test errors instead
    try:
        return _run_files(files, pattern, ignore_unknown_fields, junit_path, debug)
    finally:
        narthex_logger.removeHandler(quiet)


def _run_files(
    files: Sequence[str],
    pattern: re.Pattern[str] | None,
    ignore_unknown_fields: bool,
    junit_path: str,
    debug: bool,
) -> int:
    report = JUnitReport()
    failed = False
    for path in files:
        errs = run_test_file(path, pattern, ignore_unknown_fields, report.suite(path), debug)
        if errs:
            sys.stdout.flush()
            print("  FAILED:", file=sys.stderr)
            for error in errs:
                print(error, file=sys.stderr)
                sys.stderr.flush()
                print()
            failed = True
        else:
            print("  SUCCESS")
        print()
    if junit_path:
        try:
            report.write(junit_path)
        except OSError as exc:
            print(f"failed to write JUnit XML: {exc}", file=sys.stderr)
    return FAILURE if failed else SUCCESS
