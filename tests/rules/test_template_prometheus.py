"""Prometheus's template functions and Expander behaviour (expectations follow template/template_test.go)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest

from narthex.rules.template import Expander, TemplateError

EXTERNAL_URL = "http://testhost:9090/path/prefix"
NOW = 1353755652.0
MAX_INT64 = 2**63 - 1
MAX_UINT64 = 2**64 - 1


@dataclass
class FakeSample:
    labels: dict[str, str]
    value: Any


class FakeHistogram:
    """Stands in for a native histogram: printed through its String method."""

    def String(self) -> str:
        return "{count:3, sum:10}"


def run(
    text: str,
    data: Any = None,
    *,
    samples: list[Any] | None = None,
    html: bool = False,
    options: list[str] | None = None,
) -> str:
    def query_func(expr: str, ts: float) -> list[Any]:
        assert ts == NOW
        return samples or []

    expander = Expander(
        text, "test", data, timestamp_s=NOW, query_func=query_func, external_url=EXTERNAL_URL, options=options
    )
    return expander.expand_html() if html else expander.expand()


def run_error(text: str, data: Any = None, **kwargs: Any) -> str:
    with pytest.raises(TemplateError) as info:
        run(text, data, **kwargs)
    return str(info.value)


METRIC_A = FakeSample({"__name__": "metric", "instance": "a"}, 11.0)


@pytest.mark.parametrize(
    ("text", "samples", "expected"),
    [
        ('{{ query "1.5" | first | value }}', [FakeSample({}, 1.5)], "1.5"),
        ("{{ query \"metric{instance='a'}\" | first | value }}", [METRIC_A], "11"),
        ('{{ query "metric" | first | label "instance" }}', [METRIC_A], "a"),
        ('{{ query "metric" | first | label "foo" }}', [METRIC_A], ""),
        ('{{ $x := query "metric" | first }}{{ $x.Labels.foo }}', [METRIC_A], ""),
        ('{{ $x := query "metric" | first }}{{ $x.Labels.instance }}:{{ $x.Value }}', [METRIC_A], "a:11"),
        (
            '{{ query "m" | first | strvalue }}',
            [FakeSample({"__name__": "m", "__value__": "a"}, 11.0)],
            "a",
        ),
        (
            '{{ range query "metric" | sortByLabel "instance" }}{{.Labels.instance}}:{{.Value}}: {{end}}',
            [FakeSample({"instance": "b"}, 21.0), FakeSample({"instance": "a"}, 11.0)],
            "a:11: b:21: ",
        ),
        ('{{ query "m" | first | value }}', [FakeSample({}, FakeHistogram())], "{count:3, sum:10}"),
        ('{{ query "m" | len }}', [METRIC_A, METRIC_A], "2"),
        ('{{ query "m" | first }}', [METRIC_A], "{map[__name__:metric instance:a] 11}"),
        ('{{ query "m" | first | printf "%v" }}', [METRIC_A], "&{map[__name__:metric instance:a] 11}"),
        ('{{ with query "m" }}{{ . | first | value | humanize }}{{ else }}none{{ end }}', [], "none"),
        ('{{ with query "m" }}{{ . | first | value | humanize }}{{ end }}', [METRIC_A], "11"),
        ('{{ query "m" | first | value | printf "%.1f" }}', [((("instance", "x"),), 2.0)], "2.0"),
        ('{{ query "m" | first | label "instance" }}', [((("instance", "x"),), 2.0)], "x"),
    ],
)
def test_query_functions(text: str, samples: list[Any], expected: str) -> None:
    assert run(text, samples=samples) == expected


def test_query_errors() -> None:
    assert run_error('{{ query "missing" | first }}') == (
        'error executing template test: template: test:1:21: executing "test" at <first>: '
        "error calling first: first() called on vector with no elements"
    )
    assert run_error('{{ (query "missing").banana }}') == (
        'error executing template test: template: test:1:10: executing "test" at <"missing">: '
        "can't evaluate field banana in type template.queryResult"
    )

    def failing(expr: str, ts: float) -> list[Any]:
        raise RuntimeError(f"bad query {expr}")

    with pytest.raises(TemplateError) as info:
        Expander('{{ query "up" }}', "q", None, query_func=failing).expand()
    assert str(info.value).endswith("error calling query: bad query up")


@pytest.mark.parametrize(
    ("text", "data", "expected"),
    [
        ("plain text", None, "plain text"),
        ("{{ 1 }}", None, "1"),
        ('{{ "<b>" }}', None, "<b>"),
        ('{{define "x"}}{{.arg0}} {{.arg1}}{{end}}{{template "x" (args 1 "2")}}', None, "1 2"),
        ('{{ "foo.example.com" | stripPort }}', None, "foo.example.com"),
        ('{{ "foo.example.com:12345" | stripPort }}', None, "foo.example.com"),
        ('{{ "192.0.2.1:12345" | stripPort }}', None, "192.0.2.1"),
        ('{{ "2001:0DB8::1" | stripPort }}', None, "2001:0DB8::1"),
        ('{{ "[2001:0DB8::1]:12345" | stripPort }}', None, "2001:0DB8::1"),
        ('{{ "[2001:0DB8::1]::12345" | stripPort }}', None, "[2001:0DB8::1]::12345"),
        ('{{ "foo.example.com" | stripDomain }}', None, "foo"),
        ('{{ "foo.example.com:12345" | stripDomain }}', None, "foo:12345"),
        ('{{ "192.0.2.1" | stripDomain }}', None, "192.0.2.1"),
        ('{{ "192.0.2.1:12345" | stripDomain }}', None, "192.0.2.1:12345"),
        ('{{ "2001:0DB8::1" | stripDomain }}', None, "2001:0DB8::1"),
        ('{{ "[2001:0DB8::1]:12345" | stripDomain }}', None, "[2001:0DB8::1]:12345"),
        ('{{ "[2001:0DB8::1]::12345" | stripDomain }}', None, "[2001:0DB8::1]::12345"),
        ("{{ .Foo }}", None, "<no value>"),
        ('{{ "aa bb CC" | title }}', None, "Aa Bb CC"),
        ('{{ "hello-world foo_bar" | title }}', None, "Hello-World Foo_bar"),
        ('{{ "node.example.com it\'s ünïcode" | title }}', None, "Node.example.com It's Ünïcode"),
        ('{{ "aa bb CC" | toUpper }}', None, "AA BB CC"),
        ('{{ "aA bB CC" | toLower }}', None, "aa bb cc"),
        ('{{ match "a+" "aa" }} {{ match "a+" "b" }} {{ match "^b" "ab" }}', None, "true false false"),
        ('{{ graphLink "up" }}', None, "/graph?g0.expr=up&g0.tab=0"),
        ('{{ tableLink "up" }}', None, "/graph?g0.expr=up&g0.tab=1"),
        (
            '{{ graphLink "rate(x{a=\\"b c\\"}[5m])" }}',
            None,
            "/graph?g0.expr=rate%28x%7Ba%3D%22b+c%22%7D%5B5m%5D%29&g0.tab=0",
        ),
        ('{{ urlQueryEscape "a b/c" }}', None, "a+b%2Fc"),
        ("{{ pathPrefix }}", None, "/path/prefix"),
        ("{{ externalURL }}", None, EXTERNAL_URL),
        ('{{ printf "%0.2f" (parseDuration "1h2m10ms") }}', None, "3720.01"),
        ('{{ printf "%0.2f" (parseDuration "-1h2m10ms") }}', None, "-3720.01"),
        ("{{ now }}", None, "1.353755652e+09"),
        ('{{ (now | toTime).Format "Mon Jan 2 15:04:05 2006" }}', None, "Sat Nov 24 11:14:12 2012"),
        ('{{ ("-30m" | parseDuration | toDuration | (now | toTime).Add).UnixMilli }}', None, "1353753852000"),
        ('{{ (1435065584.128 | toTime).Format "2006" }}', None, "2015"),
        (
            '{{ ("1435065584.128" | toTime).Format "2006-01-02T15:04:05.000Z07:00" }}',
            None,
            "2015-06-23T13:19:44.128Z",
        ),
        ("{{ 1435065584.128 | toTime }}", None, "2015-06-23 13:19:44.128 +0000 UTC"),
        ("{{ (1800 | toDuration).String }}", None, "30m0s"),
        ('{{ ("1800" | toDuration).String }}', None, "30m0s"),
        (
            "{{ 5400.5 | toDuration }} {{ 0.0015 | toDuration }} {{ 0 | toDuration }}",
            None,
            "1h30m0.5s 1.5ms 0s",
        ),
        ("{{ (3600 | toDuration) | humanizeDuration }}", None, "1h 0m 0s"),
        ("{{ 1435065584.128 | humanizeTimestamp }}", None, "2015-06-23 13:19:44.128 +0000 UTC"),
        ('{{ "1435065584.128" | humanizeTimestamp }}', None, "2015-06-23 13:19:44.128 +0000 UTC"),
    ],
)
def test_functions(text: str, data: Any, expected: str) -> None:
    assert run(text, data) == expected


@pytest.mark.parametrize(
    ("func", "values", "expected"),
    [
        ("humanize", [0.0, 1.0, 1234567.0, 0.12], "0:1:1.235M:120m:"),
        ("humanize", ["0.0", "1.0", "1234567.0", ".12"], "0:1:1.235M:120m:"),
        ("humanize", [0, -1, 1, 1234567, MAX_INT64], "0:-1:1:1.235M:9.223E:"),
        ("humanize", [MAX_UINT64], "18.45E:"),
        ("humanize", [0.000001234, -2500.0, 1e27], "1.234u:-2.5k:1000Y:"),
        ("humanize1024", [0.0, 1.0, 1048576.0, 0.12], "0:1:1Mi:0.12:"),
        ("humanize1024", ["0.0", "1.0", "1048576.0", ".12"], "0:1:1Mi:0.12:"),
        ("humanize1024", [0, -1, 1, 1234567, MAX_INT64], "0:-1:1:1.177Mi:8Ei:"),
        ("humanize1024", [MAX_UINT64], "16Ei:"),
        (
            "humanizeDuration",
            [0, 1, 60, 3600, 86400, 86400 + 3600, -(86400 * 2 + 3600 * 3 + 60 * 4 + 5), 899.99],
            "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:",
        ),
        ("humanizeDuration", ["0", "1", "60", "3600", "86400"], "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:"),
        (
            "humanizeDuration",
            [0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345],
            "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:",
        ),
        ("humanizeDuration", [0, -1, 1, 1234567], "0s:-1s:1s:14d 6h 56m 7s:"),
        ("humanizePercentage", [0, -1, 1, 1234567, MAX_INT64], "0%:-100%:100%:1.235e+08%:9.223e+20%:"),
        ("humanizePercentage", [MAX_UINT64], "1.845e+21%:"),
        (
            "humanizeTimestamp",
            [0, -1, 1, 1234567, 9223372036],
            "1970-01-01 00:00:00 +0000 UTC:1969-12-31 23:59:59 +0000 UTC:1970-01-01 00:00:01 +0000 UTC:"
            "1970-01-15 06:56:07 +0000 UTC:2262-04-11 23:47:16 +0000 UTC:",
        ),
    ],
)
def test_humanize_families(func: str, values: list[Any], expected: str) -> None:
    assert run("{{ range . }}{{ " + func + " . }}:{{ end }}", values) == expected


def test_humanize_inf_and_nan() -> None:
    text = (
        "{{ range . }}{{ humanize . }}:{{ humanize1024 . }}:{{ humanizeDuration . }}:"
        "{{humanizeTimestamp .}}:{{ end }}"
    )
    expected = "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:"
    assert run(text, [math.inf, -math.inf, math.nan]) == expected
    assert run(text, ["+Inf", "-Inf", "NaN"]) == expected


def test_humanize_percentage_of_constants() -> None:
    text = (
        "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:"
        "{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}"
    )
    assert run(text) == "-22.22%:0%:12.35%:123.5%"


@pytest.mark.parametrize("func", ["humanize", "humanize1024", "humanizeDuration"])
def test_humanize_parse_error(func: str) -> None:
    assert run_error("{{ " + func + ' "one" }}') == (
        f'error executing template test: template: test:1:3: executing "test" at <{func} "one">: '
        f'error calling {func}: strconv.ParseFloat: parsing "one": invalid syntax'
    )


def test_humanize_errors() -> None:
    assert run_error('{{ "one" | humanizePercentage }}') == (
        'error executing template test: template: test:1:11: executing "test" at <humanizePercentage>: '
        'error calling humanizePercentage: strconv.ParseFloat: parsing "one": invalid syntax'
    )
    assert run_error("{{ range . }}{{ humanizeTimestamp . }}:{{ end }}", [-(2**63), MAX_INT64]) == (
        'error executing template test: template: test:1:16: executing "test" at <humanizeTimestamp .>: '
        "error calling humanizeTimestamp: -9.223372036854776e+18 cannot be represented as a nanoseconds "
        "timestamp since it overflows int64"
    )
    assert run_error("{{ range . }}{{ humanizeTimestamp . }}:{{ end }}", [MAX_UINT64]).endswith(
        "1.8446744073709552e+19 cannot be represented as a nanoseconds timestamp since it overflows int64"
    )
    assert run_error("{{ humanize true }}").endswith("error calling humanize: can't convert bool to float")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{{ reReplaceAll "(a)b" "x$1" "ab" }}', "xa"),
        ('{{ reReplaceAll "a*" "x" "baaac" }}', "xbxcx"),
        ('{{ reReplaceAll "(?P<host>[^:]+):(\\\\d+)" "${host}/$2" "web:80" }}', "web/80"),
        ('{{ reReplaceAll "(a)" "$1x" "a" }}', ""),
        ('{{ reReplaceAll "(a)" "${1}x" "a" }}', "ax"),
        ('{{ reReplaceAll "a" "$$" "aba" }}', "$b$"),
        ('{{ reReplaceAll "(\\\\w+)@(\\\\w+)" "$2 at $1" "user@host" }}', "host at user"),
        ('{{ reReplaceAll "^" ">" "x" }}', ">x"),
        ('{{ reReplaceAll "é" "e" "héhé" }}', "hehe"),
        ('{{ reReplaceAll "\\\\pL+" "W" "ab 12 cd" }}', "W 12 W"),
        ('{{ reReplaceAll "." "-" "a\\nb" }}', "-\n-"),
    ],
)
def test_re_replace_all_uses_go_semantics(text: str, expected: str) -> None:
    assert run(text) == expected


def test_regex_errors() -> None:
    message = run_error('{{ reReplaceAll "(a" "x" "ab" }}')
    assert "error calling reReplaceAll: regexp: Compile(`(a`): error parsing regexp: missing" in message
    assert "error calling match: error parsing regexp:" in run_error('{{ match "(?<!a)b" "b" }}')


def test_html_mode() -> None:
    assert run('{{ "<b>" }}', html=True) == "&lt;b&gt;"
    assert run('{{ "<b>" | safeHtml }}', html=True) == "<b>"
    assert run('{{ "a+b \'c\' \\"d\\" & e" }}', html=True) == "a&#43;b &#39;c&#39; &#34;d&#34; &amp; e"
    assert run("<p>{{ . }}</p>", 1.5, html=True) == "<p>1.5</p>"
    assert (
        run('{{ define "a" }}x<{{ . }}>{{ end }}{{ $name := "a"}}{{ tmpl $name "&" }}', html=True)
        == "x<&amp;>"
    )
    assert run("{{ .Foo }}", html=True) == ""
    assert run("{{ .Foo }}", html=True, options=[]) == ""
    assert run('{{ $x := query "m" | first }}{{ $x.Labels.foo }}', html=True, samples=[METRIC_A]) == ""
    assert run_error('{{ tmpl "nope" . }}', html=True).endswith(
        'error calling tmpl: html/template: "nope" is undefined'
    )
    assert run_error("{{ .Foo }}", html=True, options=["missingkey=error"]) == (
        'error executing template test: template: test:1:3: executing "test" at <.Foo>: '
        'nil data; no entry for key "Foo"'
    )


def test_html_mode_with_template_files(tmp_path: Any) -> None:
    lib = tmp_path / "lib.tmpl"
    lib.write_text('{{ define "head" }}<h1>{{ . }}</h1>{{ end }}')
    expander = Expander('{{ template "head" "A&B" }}', "console", None, external_url=EXTERNAL_URL)
    assert expander.expand_html([lib]) == "<h1>A&amp;B</h1>"


def test_parse_and_option_errors() -> None:
    assert run_error("{{") == "error parsing template test: template: test:1: unclosed action"
    assert run_error("{{ \u00a0}}") == (
        "error parsing template test: template: test:1: unrecognized character in action: U+00A0"
    )
    assert run_error("{{ .Foo }}", options=["missingkey=error"]) == (
        'error executing template test: template: test:1:3: executing "test" at <.Foo>: '
        'nil data; no entry for key "Foo"'
    )


def test_add_funcs_and_parse_test() -> None:
    expander = Expander("{{ double 21 }}", "f", None)
    expander.add_funcs({"double": lambda x: x * 2})
    assert expander.expand() == "42"
    expander.parse_test()
