"""Line grammar of the text format and OpenMetrics: tokens, escapes, numbers, errors."""

from __future__ import annotations

import math

import pytest

from narthex.model.exposition_families import parse_families
from narthex.model.textparse import (
    BLANK,
    COMMENT,
    EOF,
    HELP,
    TYPE,
    UNIT,
    Format,
    ParseError,
    ScannedMeta,
    ScannedSeries,
    build_labels,
    format_go_float,
    format_openmetrics_float,
    parse_go_float,
    scan_line,
)

TEXT = Format.TEXT
OM = Format.OPENMETRICS


def series(line: str, fmt: Format = TEXT) -> ScannedSeries:
    sc = scan_line(line, fmt)
    assert isinstance(sc, ScannedSeries)
    return sc


def labels(line: str, fmt: Format = TEXT, mtype: str | None = None) -> dict[str, str]:
    sc = series(line, fmt)
    return dict(build_labels(sc.name, sc.pairs, mtype))


# --- numbers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0),
        ("-1.5e3", -1500.0),
        ("+Inf", math.inf),
        ("-Inf", -math.inf),
        ("inf", math.inf),
        ("Infinity", math.inf),
        ("1.", 1.0),
        (".5", 0.5),
        ("00001", 1.0),
        ("1e-400", 0.0),
        ("9223372036854775808", 9.223372036854776e18),
    ],
)
def test_parse_go_float_accepts(text: str, value: float) -> None:
    assert parse_go_float(text) == value


@pytest.mark.parametrize("text", ["NaN", "nan", "NAN"])
def test_parse_go_float_nan(text: str) -> None:
    assert math.isnan(parse_go_float(text))


@pytest.mark.parametrize(
    "text",
    [
        "1_000",
        "0x1p3",
        "0x10",
        "+nan",
        "-NaN",
        " 1",
        "1 ",
        "1e",
        "e1",
        "",
        ".",
        "--1",
        "1e400",
        "\u0661",
        "infin",
    ],
)
def test_parse_go_float_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_float(text)


@pytest.mark.parametrize(
    ("value", "go", "om"),
    [
        (1.0, "1", "1.0"),
        (0.0, "0", "0.0"),
        (-1.0, "-1", "-1.0"),
        (100000.0, "100000", "100000.0"),
        (1e6, "1e+06", "1e+06"),
        (123456789.0, "1.23456789e+08", "1.23456789e+08"),
        (0.0001, "0.0001", "0.0001"),
        (0.00001, "1e-05", "1e-05"),
        (2.5, "2.5", "2.5"),
        (1e23, "1e+23", "1e+23"),
        (math.inf, "+Inf", "+Inf"),
        (-math.inf, "-Inf", "-Inf"),
        (math.nan, "NaN", "NaN"),
    ],
)
def test_float_formatting(value: float, go: str, om: str) -> None:
    assert format_go_float(value) == go
    assert format_openmetrics_float(value) == om


# --- text format ---------------------------------------------------------------------------------------


def test_text_simple_and_timestamp() -> None:
    sc = series('http_requests_total{method="post",code="200"} 1027 1395066363000')
    assert (sc.name, sc.pairs, sc.value, sc.timestamp_ms) == (
        "http_requests_total",
        [("method", "post"), ("code", "200")],
        1027.0,
        1395066363000,
    )
    assert sc.key_end == len('http_requests_total{method="post",code="200"}')


def test_text_whitespace_rules() -> None:
    # Leading whitespace, spaces around tokens, tabs, no comma between pairs, trailing comma.
    sc = series('  a { b = "c" d="e", }\t1\t2  ')
    assert (sc.name, sc.pairs, sc.value, sc.timestamp_ms) == ("a", [("b", "c"), ("d", "e")], 1.0, 2)
    assert series('a{b="c"}1').value == 1.0


def test_text_escapes() -> None:
    assert labels(r'a{b="x\\y\n\"z\q"} 1') == {"__name__": "a", "b": 'x\\y\n"z\\q'}


def test_text_quoted_utf8_names() -> None:
    assert labels('{"my.metric", "a.b"="c", d="e"} 1') == {"__name__": "my.metric", "a.b": "c", "d": "e"}
    assert labels('a{"ü"="1"} 1') == {"__name__": "a", "ü": "1"}


def test_text_special_values() -> None:
    assert math.isnan(series("a NaN").value)
    assert series("a +Inf").value == math.inf
    assert series("a -Inf").value == -math.inf


def test_le_and_quantile_normalisation() -> None:
    assert labels('h_bucket{le="1"} 1', mtype="histogram")["le"] == "1.0"
    assert labels('h_bucket{le="+inf"} 1', mtype="histogram")["le"] == "+Inf"
    assert labels('h_bucket{le="1e3"} 1', mtype="histogram")["le"] == "1000.0"
    assert labels('s{quantile="0.50"} 1', mtype="summary")["quantile"] == "0.5"
    assert labels('h_bucket{le="1"} 1', mtype="gauge")["le"] == "1"
    assert labels('h_bucket{le="junk"} 1', mtype="histogram")["le"] == "junk"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a{b=c} 1", "expected label value"),
        ('a{b="c",,} 1', "expected label name"),
        ("a{b} 1", "expected equal"),
        ('a{b="c"', "expected label name"),
        ("a", "expected value after metric"),
        ("a 1 -5", "expected timestamp or new record"),
        ("a 1 2 3", "expected next entry after timestamp"),
        ("a 1 99999999999999999999", "value out of range"),
        ("a x", "invalid syntax"),
        ("a 1_0", "unsupported character"),
        ('{b="c"} 1', "metric name not set"),
        ('a{"x"} 1', "metric name already set"),
        ("0a 1", "expected a valid start token"),
        ('a{x="1",x="2"} 1', "not unique"),
    ],
)
def test_text_errors(line: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        sc = series(line)
        build_labels(sc.name, sc.pairs, None)


def test_text_comments_and_metadata() -> None:
    assert scan_line("# HELP a some\\nhelp \\\\ \\x", TEXT) == ScannedMeta(HELP, "a", "some\nhelp \\ \\x")
    assert scan_line("# TYPE a untyped", TEXT) == ScannedMeta(TYPE, "a", "unknown")
    assert scan_line('# TYPE "a.b" counter', TEXT) == ScannedMeta(TYPE, "a.b", "counter")
    assert scan_line("# HELP a", TEXT) == ScannedMeta(HELP, "a", "")
    assert scan_line("# HELP", TEXT).kind == COMMENT  # no whitespace after the keyword
    assert scan_line("#HELP a b", TEXT).kind == COMMENT
    assert scan_line("# anything at all", TEXT).kind == COMMENT
    assert scan_line("   ", TEXT).kind == BLANK
    assert scan_line("\0junk", TEXT).kind == EOF
    with pytest.raises(ParseError, match="invalid metric type"):
        scan_line("# TYPE a gaugehistogram", TEXT)


def test_text_families() -> None:
    body = """# HELP rpc_duration_seconds A summary.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693

# A comment.
metric_without_type 12.47 123456789012
"""
    fams = parse_families(body, TEXT)
    assert [(f.name, f.type, len(f.samples)) for f in fams] == [
        ("rpc_duration_seconds", "summary", 4),
        ("metric_without_type", "unknown", 1),
    ]
    assert fams[0].help == "A summary."
    assert fams[1].samples[0].timestamp_ms == 123456789012


def test_parse_error_has_line_number() -> None:
    with pytest.raises(ParseError) as info:
        parse_families("a 1\nb 2\nc{ 3\n", TEXT)
    assert info.value.line == 3
    assert str(info.value).startswith("line 3: ")


def test_invalid_utf8_label_value_is_rejected() -> None:
    body = b'a{b="\xff"} 1\n'
    with pytest.raises(ParseError, match="invalid UTF-8"):
        parse_families(body, TEXT)
    assert parse_families(b"# \xff comment\na 1\n", TEXT)[0].samples[0].value == 1.0


# --- OpenMetrics ---------------------------------------------------------------------------------------


def test_om_exemplar_and_timestamp() -> None:
    sc = series('a_total{a="b"} 1 1.5 # {trace_id="x"} 2 3.25', OM)
    assert (sc.value, sc.timestamp_ms, sc.timestamp) == (1.0, 1500, 1.5)
    assert sc.exemplar is not None
    assert (sc.exemplar.labels, sc.exemplar.value, sc.exemplar.timestamp_ms) == (
        (("trace_id", "x"),),
        2.0,
        3250,
    )


def test_om_exemplar_with_hash_in_values() -> None:
    sc = series('a_bucket{le="1.0",foo="bar # "} 0 # {a="b",foo="bar # bar"} 0.5', OM)
    assert sc.pairs == [("le", "1.0"), ("foo", "bar # ")]
    assert sc.exemplar is not None and sc.exemplar.labels == (("a", "b"), ("foo", "bar # bar"))


@pytest.mark.parametrize(
    "line",
    [
        "a  1",  # two spaces
        "a 1 ",  # trailing space
        'a{b="c", d="e"} 1',  # space in label set
        "a\t1",
        " a 1",
        "a 1 # {} 1 1 ",
        "a 1 NaN",
        "a 1 1 # {x} 1",
        "#a",
        "# foo bar",
        "# HELP a",
        "",
    ],
)
def test_om_rejects(line: str) -> None:
    with pytest.raises(ParseError):
        scan_line(line, OM)


def test_om_metadata() -> None:
    assert scan_line("# UNIT a_seconds seconds", OM) == ScannedMeta(UNIT, "a_seconds", "seconds")
    assert scan_line('# HELP a x\\"y\\\\z\\n', OM) == ScannedMeta(HELP, "a", 'x"y\\z\n')
    assert scan_line("# HELP a ", OM) == ScannedMeta(HELP, "a", "")
    assert scan_line("# EOF", OM).kind == EOF
    with pytest.raises(ParseError, match="not a suffix"):
        scan_line("# UNIT a seconds", OM)


def test_om_trailing_comma_only_rejected_when_strict() -> None:
    assert series('a{b="c",} 1', OM).pairs == [("b", "c")]
    with pytest.raises(ParseError):
        scan_line('a{b="c",} 1', OM, strict=True)


def test_om_families_and_created() -> None:
    body = """# TYPE a counter
# HELP a help
a_total{x="1"} 1
a_created{x="1"} 1700000000.5
# TYPE h histogram
h_bucket{le="1"} 0
h_bucket{le="+Inf"} 2
h_count 2
h_sum 1.5
# EOF
"""
    fams = parse_families(body, OM)
    assert [(f.name, f.type, [s.name for s in f.samples]) for f in fams] == [
        ("a", "counter", ["a_total", "a_created"]),
        ("h", "histogram", ["h_bucket", "h_bucket", "h_count", "h_sum"]),
    ]
    assert fams[1].samples[0].labels == (("__name__", "h_bucket"), ("le", "1.0"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("a 1\n", "does not end with # EOF"),
        ("a 1\n# EOF\n\n", "after # EOF"),
        ("# TYPE a counter\na_total 1\na_total 2\n# EOF\n", "duplicate sample"),
        ('# TYPE a counter\na_total{x="1"} 1 # {id="' + "x" * 130 + '"} 1\n# EOF\n', "128"),
        ('# TYPE a stateset\na{a="x"} 0.5\n# EOF\n', "0 or 1"),
    ],
)
def test_om_strict_rules(body: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_families(body, OM)


def test_om_non_strict_allows_spec_violations() -> None:
    body = "# TYPE a counter\na_total -1\n# EOF\n"
    with pytest.raises(ParseError):
        parse_families(body, OM)
    assert parse_families(body, OM, strict=False)[0].samples[0].value == -1.0
