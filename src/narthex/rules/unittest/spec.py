"""The unit test file format (``promtool test rules``), decoded strictly like yaml.v2's
``UnmarshalStrict`` into promtool's types."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field

import yaml

from narthex.rules.yamldecode import AbortDecode, Decoder, YAMLError, compose


@dataclass
class InputSeries:
    series: str = ""
    values: str = ""


@dataclass
class ExpectedAlert:
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class AlertTestCase:
    eval_time_ms: int = 0
    alertname: str = ""
    exp_alerts: list[ExpectedAlert] = field(default_factory=list)


@dataclass
class ExpectedSample:
    labels: str = ""
    value: float = 0.0
    histogram: str = ""


@dataclass
class PromQLTestCase:
    expr: str = ""
    eval_time_ms: int = 0
    exp_samples: list[ExpectedSample] = field(default_factory=list)


@dataclass
class TestGroup:
    interval_ms: int = 0
    input_series: list[InputSeries] = field(default_factory=list)
    alert_rule_tests: list[AlertTestCase] = field(default_factory=list)
    promql_expr_tests: list[PromQLTestCase] = field(default_factory=list)
    external_labels: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    name: str = ""
    start_timestamp_ms: int | None = None

    def max_eval_time_ms(self) -> int:
        times = [t.eval_time_ms for t in self.alert_rule_tests] + [
            t.eval_time_ms for t in self.promql_expr_tests
        ]
        return max(times, default=0)


@dataclass
class UnitTestFile:
    rule_files: list[str] = field(default_factory=list)
    evaluation_interval_ms: int = 0
    group_eval_order: list[str] = field(default_factory=list)
    tests: list[TestGroup] = field(default_factory=list)
    fuzzy_compare: bool = False


def parse_start_time(text: str) -> int:
    """promtool's ``parseTime``: Unix seconds (possibly fractional) or RFC 3339; milliseconds."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return round(seconds * 1000)
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise AbortDecode(f'cannot parse "{text}" to a valid timestamp') from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return round(parsed.timestamp() * 1000)


class _SpecDecoder(Decoder):
    def strings(self, node: yaml.Node | None) -> list[str]:
        return [self.string(n) for n in self.sequence(node, "[]string")]

    def series(self, node: yaml.Node) -> InputSeries:
        out = InputSeries()
        self.struct(
            node,
            "main.series",
            {
                "series": lambda _k, v: setattr(out, "series", self.string(v)),
                "values": lambda _k, v: setattr(out, "values", self.string(v)),
            },
        )
        return out

    def expected_alert(self, node: yaml.Node) -> ExpectedAlert:
        out = ExpectedAlert()
        self.struct(
            node,
            "main.alert",
            {
                "exp_labels": lambda _k, v: setattr(out, "labels", self.string_map(v)),
                "exp_annotations": lambda _k, v: setattr(out, "annotations", self.string_map(v)),
            },
        )
        return out

    def alert_test(self, node: yaml.Node) -> AlertTestCase:
        out = AlertTestCase()
        self.struct(
            node,
            "main.alertTestCase",
            {
                "eval_time": lambda _k, v: setattr(out, "eval_time_ms", self.duration(v)),
                "alertname": lambda _k, v: setattr(out, "alertname", self.string(v)),
                "exp_alerts": lambda _k, v: setattr(
                    out, "exp_alerts", [self.expected_alert(a) for a in self.sequence(v, "[]main.alert")]
                ),
            },
        )
        return out

    def sample(self, node: yaml.Node) -> ExpectedSample:
        out = ExpectedSample()
        self.struct(
            node,
            "main.sample",
            {
                "labels": lambda _k, v: setattr(out, "labels", self.string(v)),
                "value": lambda _k, v: setattr(out, "value", self.go_float(v)),
                "histogram": lambda _k, v: setattr(out, "histogram", self.string(v)),
            },
        )
        return out

    def go_float(self, node: yaml.Node | None) -> float:
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":str"):
            special = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "nan": math.nan}
            if node.value.lower() in special:
                return special[node.value.lower()]
        return self.number(node)

    def promql_test(self, node: yaml.Node) -> PromQLTestCase:
        out = PromQLTestCase()
        self.struct(
            node,
            "main.promqlTestCase",
            {
                "expr": lambda _k, v: setattr(out, "expr", self.string(v)),
                "eval_time": lambda _k, v: setattr(out, "eval_time_ms", self.duration(v)),
                "exp_samples": lambda _k, v: setattr(
                    out, "exp_samples", [self.sample(s) for s in self.sequence(v, "[]main.sample")]
                ),
            },
        )
        return out

    def start_time(self, node: yaml.Node) -> int | None:
        if self.is_null(node):
            return None
        return parse_start_time(self.string(node))

    def test_group(self, node: yaml.Node) -> TestGroup:
        out = TestGroup()
        self.struct(
            node,
            "main.testGroup",
            {
                "interval": lambda _k, v: setattr(out, "interval_ms", self.duration(v)),
                "input_series": lambda _k, v: setattr(
                    out, "input_series", [self.series(s) for s in self.sequence(v, "[]main.series")]
                ),
                "alert_rule_test": lambda _k, v: setattr(
                    out,
                    "alert_rule_tests",
                    [self.alert_test(a) for a in self.sequence(v, "[]main.alertTestCase")],
                ),
                "promql_expr_test": lambda _k, v: setattr(
                    out,
                    "promql_expr_tests",
                    [self.promql_test(p) for p in self.sequence(v, "[]main.promqlTestCase")],
                ),
                "external_labels": lambda _k, v: setattr(out, "external_labels", self.string_map(v)),
                "external_url": lambda _k, v: setattr(out, "external_url", self.string(v)),
                "name": lambda _k, v: setattr(out, "name", self.string(v)),
                "start_timestamp": lambda _k, v: setattr(out, "start_timestamp_ms", self.start_time(v)),
            },
        )
        return out


def parse_unit_test_file(text: str) -> UnitTestFile:
    """Decode a unit test file; raises :class:`YAMLError` with yaml.v2-style messages."""
    dec = _SpecDecoder(known_fields=True)
    out = UnitTestFile()
    root = compose(text)
    try:
        dec.struct(
            root,
            "main.unitTestFile",
            {
                "rule_files": lambda _k, v: setattr(out, "rule_files", dec.strings(v)),
                "evaluation_interval": lambda _k, v: setattr(out, "evaluation_interval_ms", dec.duration(v)),
                "group_eval_order": lambda _k, v: setattr(out, "group_eval_order", dec.strings(v)),
                "tests": lambda _k, v: setattr(
                    out, "tests", [dec.test_group(g) for g in dec.sequence(v, "[]main.testGroup")]
                ),
                "fuzzy_compare": lambda _k, v: setattr(out, "fuzzy_compare", dec.boolean(v)),
            },
        )
    except AbortDecode as exc:
        raise YAMLError(str(exc)) from None
    dec.finish()
    return out
