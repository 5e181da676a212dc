"""Alert label/annotation expansion exactly as rules/alerting.go drives the template expander."""

from __future__ import annotations

from typing import Any

from narthex.rules.template import ALERT_DEFS, expand_alert_template

LABELS = {"__name__": "up", "instance": "node-1.example.com:9100", "job": "node", "severity": "page"}
EXTERNAL = {"cluster": "eu-1"}
URL = "http://prom.example.com:9090/prom"
TS = 1700000000.0


def alert(text: str, value: Any = 0.5, query_func: Any = None, labels: dict[str, str] | None = None) -> str:
    return expand_alert_template(
        text, labels or LABELS, EXTERNAL, URL, value, TS, query_func, alert_name="InstanceDown"
    )


def test_convenience_variables() -> None:
    assert alert("{{ $labels.instance }} of {{ $labels.job }}") == "node-1.example.com:9100 of node"
    assert alert("{{ $externalLabels.cluster }} {{ $externalURL }}") == f"eu-1 {URL}"
    assert alert("{{ .Labels.severity }} {{ .ExternalURL }}") == f"page {URL}"
    assert alert("{{ $value }}", 1e6) == "1e+06"
    assert alert("{{ $value }}", 123456789.0) == "1.23456789e+08"
    assert alert("{{ $value }}", 0.25) == "0.25"
    assert alert("{{ $value | humanize }}", 1234567.0) == "1.235M"
    assert alert("{{ $value | humanizePercentage }}", 0.953) == "95.3%"
    assert alert('{{ printf "%.2f" $value }}', 2.0 / 3) == "0.67"


def test_missing_labels_are_empty() -> None:
    assert alert("[{{ $labels.nonexistent }}]") == "[]"
    assert alert("[{{ $externalLabels.nonexistent }}]") == "[]"


def test_plain_text_and_range_over_labels() -> None:
    assert alert("static text") == "static text"
    text = "{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}"
    assert alert(text) == "__name__=up,instance=node-1.example.com:9100,job=node,severity=page,"


def test_helpers_on_labels() -> None:
    assert alert("{{ $labels.instance | stripPort | stripDomain }}") == "node-1"
    assert alert('{{ reReplaceAll ":[0-9]+$" "" $labels.instance }}') == "node-1.example.com"
    assert alert('{{ if match "^node" $labels.job }}yes{{ end }}') == "yes"
    assert alert("{{ if gt $value 0.9 }}high{{ else }}low{{ end }}", 0.95) == "high"
    assert alert("{{ now | humanizeTimestamp }}") == "2023-11-14 22:13:20 +0000 UTC"


def test_query_inside_alert_template() -> None:
    calls: list[tuple[str, float]] = []

    def query_func(expr: str, ts: float) -> list[dict[str, Any]]:
        calls.append((expr, ts))
        return [type("S", (), {"labels": {"instance": "x"}, "value": 42.0})()]

    text = '{{ with query "up{job=\\"node\\"}" }}{{ . | first | value }}{{ end }}'
    assert alert(text, query_func=query_func) == "42"
    assert calls == [('up{job="node"}', TS)]


def test_errors_become_the_value() -> None:
    # Positions count the prepended variable definitions, as in Prometheus.
    offset = len(ALERT_DEFS)
    result = alert("{{ $labels.instance | nofunc }}")
    assert result == (
        "<error expanding template: error parsing template __alert_InstanceDown: "
        'template: __alert_InstanceDown:1: function "nofunc" not defined>'
    )
    text = "{{ $value | humanize1024 | title 1 }}"
    assert alert(text) == (
        "<error expanding template: error executing template __alert_InstanceDown: "
        f'template: __alert_InstanceDown:1:{offset + text.index("title")}: executing "__alert_InstanceDown" '
        "at <title>: wrong number of args for title: want 1 got 2>"
    )
    text = "{{ toUpper 1 }}"
    assert alert(text) == (
        "<error expanding template: error executing template __alert_InstanceDown: "
        f'template: __alert_InstanceDown:1:{offset + text.index("1")}: executing "__alert_InstanceDown" '
        "at <1>: expected string; found 1>"
    )
    # Go positions a variable's field chain at its first field.
    text = "{{ $labels.job.foo }}"
    assert alert(text) == (
        "<error expanding template: error executing template __alert_InstanceDown: "
        f'template: __alert_InstanceDown:1:{offset + text.index(".job")}: executing "__alert_InstanceDown" '
        "at <$labels.job.foo>: can't evaluate field foo in type string>"
    )
    assert alert('{{ query "up" }}') == (
        "<error expanding template: error executing template __alert_InstanceDown: "
        f'template: __alert_InstanceDown:1:{offset + 3}: executing "__alert_InstanceDown" at <query "up">: '
        "error calling query: no query function configured>"
    )


def test_label_pairs_and_engine_style_samples() -> None:
    pairs = (("instance", "a:1"), ("job", "j"))

    class EngineSample:
        def __init__(self, metric: tuple[tuple[str, str], ...], f: float) -> None:
            self.metric, self.f, self.h = metric, f, None

    def query_func(expr: str, ts: float) -> list[EngineSample]:
        return [EngineSample((("instance", "b"),), 3.0), EngineSample((("instance", "a"),), 7.0)]

    text = (
        '{{ $labels.job }}:{{ range query "x" | sortByLabel "instance" }}'
        "{{ .Labels.instance }}={{ .Value }} {{ end }}"
    )
    result = expand_alert_template(text, pairs, (), URL, 1, TS, query_func)
    assert result == "j:a=7 b=3 "
    assert expand_alert_template("{{ $value }}", pairs, (), URL, 2, TS, None) == "2"


def test_repeated_expansion_reuses_the_parse() -> None:
    for value in (1.0, 2.0, 3.0):
        assert alert("{{ $value }}", value) == str(int(value))
