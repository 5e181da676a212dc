"""Contextual escaping in HTML mode (console templates), following html/template's escapers."""

from __future__ import annotations

from typing import Any

import pytest

from narthex.rules.template import HTML, Expander


def html(text: str, data: Any = None) -> str:
    return Expander(text, "console", data, external_url="http://h:9090/prefix").expand_html()


@pytest.mark.parametrize(
    ("text", "data", "expected"),
    [
        ("<p>{{ . }}</p>", "<b>&'+\"", "<p>&lt;b&gt;&amp;&#39;&#43;&#34;</p>"),
        ("<p>{{ . }}</p>", HTML("<b>ok</b>"), "<p><b>ok</b></p>"),
        ("<p>{{ . }}</p>", None, "<p></p>"),
        ("<p>{{ . }}</p>", 2.5, "<p>2.5</p>"),
        ('<a href="{{ . }}">x</a>', "javascript:alert(1)", '<a href="#ZgotmplZ">x</a>'),
        ('<a href="{{ . }}">x</a>', "http://x/a b?q=<1>", '<a href="http://x/a%20b?q=%3c1%3e">x</a>'),
        ('<a href="/q?x={{ . }}">', "a&b c", '<a href="/q?x=a%26b%20c">'),
        (
            '<a href="{{ pathPrefix }}/graph?g0.expr={{ . }}">',
            'up{job="a"}',
            '<a href="/prefix/graph?g0.expr=up%7bjob%3d%22a%22%7d">',
        ),
        ("<a title={{ . }}>", "a b", "<a title=a&#32;b>"),
        ('<a title="{{ . }}">', 'a "b" <c>', '<a title="a &#34;b&#34; &lt;c&gt;">'),
        ("<a title='{{ . }}'>", "it's", "<a title='it&#39;s'>"),
        (
            "<script>var x = {{ . }};</script>",
            'a"</script>',
            '<script>var x = "a\\"\\u003c/script\\u003e";</script>',
        ),
        ("<script>var x = {{ . }};</script>", 1.5, "<script>var x =  1.5 ;</script>"),
        ("<script>var x = {{ . }};</script>", None, "<script>var x =  null ;</script>"),
        ("<script>var x = {{ . }};</script>", ["a", 1], '<script>var x = ["a",1];</script>'),
        (
            "<script>var x = '{{ . }}';</script>",
            "it's </x>",
            "<script>var x = 'it\\u0027s \\u003c\\/x\\u003e';</script>",
        ),
        (
            '<script>var x = "{{ . }}";</script>',
            'say "hi"\n',
            '<script>var x = "say \\u0022hi\\u0022\\n";</script>',
        ),
        ("<script>// {{ . }}\nvar y = 1;</script>", "gone", "<script>\nvar y = 1;</script>"),
        ("<script>a /* {{ . }} */ + b</script>", "gone", "<script>a  + b</script>"),
        ("<p>x<!-- note -->y</p>", None, "<p>xy</p>"),
        ("<p title='<!-- kept -->'>", None, "<p title='<!-- kept -->'>"),
        ("a<{{ . }}", "b", "a<b"),
        ('<button onclick="f({{ . }})">', "a'b", '<button onclick="f(&#34;a&#39;b&#34;)">'),
        ('<div style="color: {{ . }}">', "red", '<div style="color: red">'),
        ('<div style="color: {{ . }}">', "expression(alert(1))", '<div style="color: ZgotmplZ">'),
        ("<style>p { color: {{ . }} }</style>", "#fff", "<style>p { color: #fff }</style>"),
        ("<!-- {{ . }} -->x", "secret", "x"),
        ("<textarea>{{ . }}</textarea>", "<b>", "<textarea>&lt;b&gt;</textarea>"),
        (
            '<script>var s = "a";</script><p>{{ . }}</p>',
            "<i>",
            '<script>var s = "a";</script><p>&lt;i&gt;</p>',
        ),
        ('<p {{ . }}="1">', "onclick", '<p ZgotmplZ="1">'),
        ('<p {{ . }}="1">', "title", '<p title="1">'),
    ],
)
def test_contextual_escaping(text: str, data: Any, expected: str) -> None:
    assert html(text, data) == expected


def test_contexts_follow_template_calls_and_ranges() -> None:
    text = (
        '{{ define "cell" }}<td title="{{ . }}">{{ . }}</td>{{ end }}'
        '<tr>{{ range . }}{{ template "cell" . }}{{ end }}</tr>'
    )
    assert html(text, ["a<b", 'c"d']) == (
        '<tr><td title="a&lt;b">a&lt;b</td><td title="c&#34;d">c&#34;d</td></tr>'
    )


def test_text_mode_does_not_escape() -> None:
    assert Expander("<p>{{ . }}</p>", "t", "<b>").expand() == "<p><b></p>"
