"""Go text/template semantics: actions, trimming, variables, control structures, builtins, errors."""

from __future__ import annotations

from typing import Any

import pytest

from narthex.rules.template import AnyMap, Expander, TemplateError


def expand(text: str, data: Any = None, options: list[str] | None = None) -> str:
    return Expander(text, "t", data, options=options).expand()


def error_of(text: str, data: Any = None, options: list[str] | None = None) -> str:
    with pytest.raises(TemplateError) as info:
        expand(text, data, options)
    return str(info.value)


class Point:
    """A struct-like value with exported fields and a method."""

    def __init__(self, x: int, y: int) -> None:
        self.X = x
        self.Y = y
        self.hidden = 0

    def Sum(self, extra: int) -> int:
        return self.X + self.Y + extra


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a {{- 1 -}} b", "a1b"),
        ("a  \n {{- 1}} b", "a1 b"),
        ("a {{1 -}}\n\t b", "a 1b"),
        ("{{1}}-{{2}}", "1-2"),
        ("x {{-1}} y", "x -1 y"),
        ("a {{/* comment */}} b", "a  b"),
        ("a {{- /* comment */ -}} b", "ab"),
        ("{{/* multi\nline */}}ok", "ok"),
        ("{{`raw\\n`}}", "raw\\n"),
        ('{{"tab\\tq\\"x"}}', 'tab\tq"x'),
        ("{{'a'}} {{'\\n'}}", "97 10"),
        ("{{0x1F}} {{0o17}} {{0b101}} {{1_000}} {{017}}", "31 15 5 1000 15"),
        ("{{1.5}} {{1e3}} {{.5}} {{-2}} {{+3}}", "1.5 1000 0.5 -2 3"),
        ("{{1e21}} {{0.0001}} {{1e-5}}", "1e+21 0.0001 1e-05"),
        ("{{true}} {{false}}", "true false"),
        ("{{print nil}}", "<nil>"),
        ('{{ print 1 2 }} {{ print "a" "b" }} {{ println 1 }}', "1 2 ab 1\n"),
        ('{{printf "%d-%s" 3 "x"}}', "3-x"),
        ('{{"abc" | printf "%s!"}}', "abc!"),
        ('{{printf "%5.1f|%-4s|%q" 3.14159 "ab" "c"}}', '  3.1|ab  |"c"'),
        ("{{ (1) }} {{ ((print 2)) }}", "1 2"),
    ],
)
def test_lexical_forms(text: str, expected: str) -> None:
    assert expand(text) == expected


def test_variables_declare_assign_and_scope() -> None:
    assert expand("{{$x := 1}}{{$x}}{{$x = 2}}{{$x}}") == "12"
    assert expand("{{$x := 1}}{{if true}}{{$x = 2}}{{$y := 3}}{{end}}{{$x}}") == "2"
    assert expand("{{with $x := 5}}{{$x}}{{end}}") == "5"
    assert expand("{{$}}", "root") == "root"
    assert expand('{{define "t2"}}{{$}}{{end}}{{template "t2" 7}}') == "7"
    assert 'undefined variable "$y"' in error_of("{{if true}}{{$y := 3}}{{end}}{{$y}}")


def test_if_else_chains() -> None:
    text = "{{if eq . 1}}one{{else if eq . 2}}two{{else}}many{{end}}"
    assert [expand(text, v) for v in (1, 2, 3)] == ["one", "two", "many"]
    assert expand("{{if .}}y{{else}}n{{end}}", "") == "n"
    assert expand("{{if .}}y{{else}}n{{end}}", []) == "n"
    assert expand("{{if .}}y{{else}}n{{end}}", {"a": "b"}) == "y"
    assert expand("{{if .}}y{{else}}n{{end}}", 0.0) == "n"
    assert expand("{{if .X}}y{{else}}n{{end}}", {"X": None}) == "n"


def test_with_else_and_else_with() -> None:
    assert expand("{{with .A}}[{{.}}]{{else}}none{{end}}", {"A": "x"}) == "[x]"
    assert expand("{{with .A}}[{{.}}]{{else}}none{{end}}", {"A": ""}) == "none"
    text = "{{with .A}}a={{.}}{{else with .B}}b={{.}}{{else}}neither{{end}}"
    assert expand(text, {"A": "", "B": "2"}) == "b=2"
    assert expand(text, {"A": "", "B": ""}) == "neither"


def test_range_forms() -> None:
    assert expand("{{range .}}<{{.}}>{{end}}", [1, 2, 3]) == "<1><2><3>"
    assert expand("{{range $i, $v := .}}{{$i}}={{$v}};{{end}}", ["a", "b"]) == "0=a;1=b;"
    assert expand("{{range $v := .}}{{$v}}{{end}}", ["a", "b"]) == "ab"
    assert expand("{{range .}}x{{else}}empty{{end}}", []) == "empty"
    assert expand("{{range .Missing}}x{{else}}empty{{end}}", {}) == "empty"
    assert expand("{{range 3}}{{.}}{{end}}") == "012"
    # Maps iterate in sorted key order.
    labels = {"zone": "b", "instance": "a", "job": "c"}
    assert expand("{{range $k, $v := .}}{{$k}}={{$v}} {{end}}", labels) == "instance=a job=c zone=b "
    assert expand("{{range $k, $v := .}}{{$k}}{{end}}", {10: 1, 2: 1, 33: 1}) == "21033"


def test_range_break_and_continue() -> None:
    text = "{{range .}}{{if eq . 3}}{{break}}{{end}}{{if eq . 1}}{{continue}}{{end}}{{.}}{{end}}"
    assert expand(text, [0, 1, 2, 3, 4]) == "02"
    assert "{{break}} outside {{range}}" in error_of("{{break}}")
    assert "{{continue}} outside {{range}}" in error_of("{{if true}}{{continue}}{{end}}")


def test_range_assignment_to_outer_variables() -> None:
    text = "{{$i := 0}}{{$last := 0}}{{range $i, $last = .}}{{end}}{{$i}}{{$last}}"
    assert expand(text, [4, 5, 6]) == "26"
    assert error_of("{{range $j = .}}{{end}}", [1]).endswith("undefined variable: $j")


def test_define_template_block() -> None:
    assert expand('{{define "a"}}A{{.}}{{end}}{{template "a" 1}}-{{template "a"}}') == "A1-A<no value>"
    assert expand('{{block "b" .}}default {{.}}{{end}}', "x") == "default x"
    # Redefining within one text is an error, as in Go.
    text = '{{define "b"}}override{{end}}{{block "b" .}}default{{end}}'
    assert error_of(text).endswith('multiple definition of template "b"')
    assert 'template "nope" not defined' in error_of('{{template "nope"}}')


def test_time_values_print_like_go() -> None:
    text = "{{ $t := 1435065584.128 | toTime }}{{ $t.Month }} {{ $t.Weekday }} {{ $t.Year }} {{ $t.Unix }}"
    assert expand(text) == "June Tuesday 2015 1435065584"
    assert expand('{{ (0 | toTime).Format "Monday, 02-Jan-06 3:04PM MST .000 -07:00 Z07:00" }}') == (
        "Thursday, 01-Jan-70 12:00AM UTC .000 +00:00 Z"
    )
    assert expand("{{ ((90 | toTime).Sub (30 | toTime)).Minutes }}") == "1"


def test_recursive_template_hits_depth_limit() -> None:
    message = error_of('{{define "r"}}{{template "r" .}}{{end}}{{template "r" .}}')
    assert "exceeded maximum template depth" in message


def test_and_or_not_short_circuit() -> None:
    assert expand('{{and 1 0 2}} {{and 1 2}} {{or 0 "" 3}} {{or 0 ""}}') == "0 2 3 "
    assert expand("{{not 0}} {{not 1}} {{not .}}", "") == "true false true"
    # The second operand would fail if evaluated.
    assert expand("{{or 1 (index . 5)}} {{and 0 (index . 5)}}", []) == "1 0"


def test_comparisons_follow_go_type_rules() -> None:
    assert expand('{{eq 1 1}} {{eq 1 2 3 1}} {{ne "a" "b"}} {{eq .A "x"}}', {"A": "x"}) == (
        "true true true true"
    )
    assert expand('{{lt 1 2}} {{le 2 2}} {{gt 2.5 1.5}} {{ge "b" "a"}}') == "true true true true"
    assert expand("{{gt . 80.0}}", 90.5) == "true"
    message = error_of("{{gt . 80}}", 90.5)
    assert message.endswith("error calling gt: incompatible types for comparison")
    assert error_of("{{lt true false}}").endswith("error calling lt: invalid type for comparison")
    assert error_of("{{eq 1}}").endswith("error calling eq: missing argument for comparison")
    # A missing label is "" (missingkey=zero on a string map); a missing interface value is nil.
    assert expand('{{eq .Missing ""}}', {"a": "b"}) == "true"
    assert expand('{{eq .Missing ""}}', {"a": 1}) == "false"


def test_len_index_slice() -> None:
    data = {"L": ["a", "b", "c"], "M": {"k": "v"}, "S": "héllo"}
    assert expand("{{len .L}} {{len .M}} {{len .S}}", data) == "3 1 6"
    assert expand('{{index .L 1}} {{index .M "k"}} {{index .M "zz"}}|', data) == "b v |"
    assert expand("{{index .S 0}}", data) == "104"
    assert expand("{{slice .L 1}} {{slice .L 1 2}} {{slice .S 0 1}}", data) == "[b c] [b] h"
    assert error_of("{{index .L 5}}", data).endswith("error calling index: index out of range: 5")
    assert error_of("{{len 3}}").endswith("error calling len: len of type int")
    assert error_of("{{slice .L 2 1}}", data).endswith("error calling slice: invalid slice index: 2 > 1")


def test_html_js_urlquery_builtins() -> None:
    assert expand('{{html "<a href=\'x\'>&\\""}}') == "&lt;a href=&#39;x&#39;&gt;&amp;&#34;"
    assert expand('{{js "it\'s <b>"}}') == "it\\'s \\u003Cb\\u003E"
    assert expand('{{urlquery "a b&c=d/é"}}') == "a+b%26c%3Dd%2F%C3%A9"
    assert expand('{{"x y" | urlquery}}') == "x+y"


def test_fields_maps_and_methods() -> None:
    point = Point(1, 2)
    assert expand("{{.X}},{{.Y}} {{.Sum 10}}", point) == "1,2 13"
    assert expand("{{.P.X}}", {"P": point}) == "1"
    message = error_of("{{.Nope}}", point)
    assert message.endswith("can't evaluate field Nope in type Point")
    assert "hidden is an unexported field of struct type Point" in error_of("{{.hidden}}", point)
    assert error_of("{{.X 1}}", point).endswith("X has arguments but cannot be invoked as function")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (None, ""),  # Prometheus's default: missingkey=zero
        ([], "<no value>"),
        (["missingkey=default"], "<no value>"),
        (["missingkey=invalid"], "<no value>"),
    ],
)
def test_missing_map_key_modes(options: list[str] | None, expected: str) -> None:
    assert expand("{{.labels.absent}}", {"labels": {"a": "b"}}, options) == expected


def test_missing_key_error_mode_and_bad_option() -> None:
    message = error_of("{{.labels.absent}}", {"labels": {"a": "b"}}, ["missingkey=error"])
    # Go positions a field chain at its second field.
    assert message == (
        'error executing template t: template: t:1:9: executing "t" at <.labels.absent>: '
        'map has no entry for key "absent"'
    )
    assert error_of("x", None, ["bogus"]) == "panic expanding template t: unrecognized option: bogus"


def test_args_map_missing_key_prints_no_value() -> None:
    assert expand('{{define "x"}}{{.arg0}}/{{.arg3}}/{{print .arg3}}{{end}}{{template "x" (args 1)}}') == (
        "1/<no value>/<nil>"
    )
    assert isinstance(AnyMap(), dict)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{", "template: t:1: unclosed action"),
        ("{{\n", "template: t:2: unclosed action started at t:1"),
        ("{{ .X ", "template: t:1: unclosed action"),
        ("{{end}}", "template: t:1: unexpected {{end}}"),
        ("{{else}}", "template: t:1: unexpected {{else}}"),
        ("{{if true}}x", "template: t:1: unexpected EOF"),
        ("{{nofunc 1}}", 'template: t:1: function "nofunc" not defined'),
        ("{{$x}}", 'template: t:1: undefined variable "$x"'),
        ("{{}}", "template: t:1: missing value for command"),
        ("{{ 1 | 2 }}", "template: t:1: non executable command in pipeline stage 2"),
        ("{{ \u00a0}}", "template: t:1: unrecognized character in action: U+00A0"),
        ("{{ 3k }}", 'template: t:1: bad number syntax: "3k"'),
        ('{{ "abc }}', "template: t:1: unterminated quoted string"),
        ("{{ ( 1 }}", "template: t:1: unclosed left paren"),
        ("{{ 1) }}", 'template: t:1: unexpected ")" in command'),
        ("{{/* x }}", "template: t:1: unclosed comment"),
        ("{{/* x */ 1}}", "template: t:1: comment ends before closing delimiter"),
        ("{{ $x := 1 }}{{ $x : 1 }}", "template: t:1: expected :="),
        ("{{ 99999999999999999999 }}", 'template: t:1: integer overflow: "99999999999999999999"'),
        (
            '{{define "a"}}1{{end}}{{define "a"}}2{{end}}',
            'template: t:1: template: multiple definition of template "a"',
        ),
        ("line1\n{{ if }}", "template: t:2: missing value for if"),
        ("{{ .X.1 }}", 'template: t:1: unexpected ".1" in operand'),
        ("{{ .X! }}", "template: t:1: bad character U+0021 '!'"),
        ('{{ "a".B }}', 'template: t:1: unexpected . after term "\\"a\\""'),
        ("{{range $a, $b, $c := .}}{{end}}", "template: t:1: too many declarations in range"),
        ("{{with $a, $b := .}}{{end}}", "template: t:1: too many declarations in with"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    assert error_of(text) == f"error parsing template t: {message}"


@pytest.mark.parametrize(
    ("text", "data", "message"),
    [
        (
            "{{.A.B}}",
            {"A": 5},
            'template: t:1:4: executing "t" at <.A.B>: can\'t evaluate field B in type int',
        ),
        ("{{nil}}", None, 'template: t:1:2: executing "t" at <nil>: nil is not a command'),
        ("{{1 2}}", None, 'template: t:1:2: executing "t" at <1>: can\'t give argument to non-function 1'),
        (
            "x\n  {{index . 1}}",
            [],
            'template: t:2:4: executing "t" at <index . 1>: error calling index: index out of range: 1',
        ),
        (
            "{{range .}}{{end}}",
            "str",
            'template: t:1:8: executing "t" at <.>: range can\'t iterate over str',
        ),
        (
            "{{toUpper 1}}",
            None,
            'template: t:1:10: executing "t" at <1>: expected string; found 1',
        ),
        (
            "{{toUpper .}}",
            5,
            'template: t:1:10: executing "t" at <.>: wrong type for value; expected string; got int',
        ),
        (
            "{{title}}",
            None,
            'template: t:1:2: executing "t" at <title>: wrong number of args for title: want 1 got 0',
        ),
        (
            "{{18446744073709551615}}",
            None,
            'template: t:1:2: executing "t" at <18446744073709551615>: 18446744073709551615 overflows int',
        ),
    ],
)
def test_exec_errors(text: str, data: Any, message: str) -> None:
    assert error_of(text, data) == f"error executing template t: {message}"


def test_error_in_nested_template_names_it() -> None:
    message = error_of('{{define "inner"}}\n{{.X.Y}}{{end}}{{template "inner" .}}', {"X": 1})
    assert message == (
        'error executing template t: template: t:2:4: executing "inner" at <.X.Y>: '
        "can't evaluate field Y in type int"
    )


def test_error_columns_count_bytes_and_lines() -> None:
    # Go reports 0-based byte columns: "é" is two bytes.
    assert error_of("é {{ .A.B }}", {"A": 1}).startswith(
        'error executing template t: template: t:1:8: executing "t"'
    )
    assert error_of("a\r\nbc {{ .A.B }}", {"A": 1}).startswith("error executing template t: template: t:2:8:")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{- 1 -}}", "1"),
        ("\r\n\t {{- 1 -}} \r\n\t", "1"),
        ("a {{- /* c */ -}} b {{- 2}}", "ab2"),
        ("{{1}} {{- \n 2 -}} {{3}}", "123"),
        ("{{ 1\n}}", "1"),
        ("{{ print\n 1\n 2 }}", "1 2"),
        ('{{ "a}}b" }}', "a}}b"),
        ("{{ `x\ny` }}", "x\ny"),
    ],
)
def test_trim_and_layout_edge_cases(text: str, expected: str) -> None:
    assert expand(text) == expected
