"""Go fmt/strconv formatting used by templates: %v of floats, Sprintf verbs and diagnostics."""

from __future__ import annotations

import math

import pytest

from narthex.rules.template import format_float, format_value, sprint, sprintf, sprintln


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1e21, "1e+21"),
        (123456789.0, "1.23456789e+08"),
        (0.0001, "0.0001"),
        (1e-05, "1e-05"),
        (1e6, "1e+06"),
        (100000.0, "100000"),
        (999999.0, "999999"),
        (0.1, "0.1"),
        (1.5, "1.5"),
        (3.0, "3"),
        (0.0, "0"),
        (-0.0, "-0"),
        (-2.5, "-2.5"),
        (1353755652.0, "1.353755652e+09"),
        (0.30000000000000004, "0.30000000000000004"),
        (2.5e-300, "2.5e-300"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_float_v(value: float, expected: str) -> None:
    assert format_value(value) == expected
    assert sprintf("%v", value) == expected


@pytest.mark.parametrize(
    ("fmt", "args", "expected"),
    [
        ("%s", ("abc",), "abc"),
        ("%d", (42,), "42"),
        ("%5d|%-5d|%05d", (42, 42, 42), "   42|42   |00042"),
        ("%+d % d", (3, 3), "+3  3"),
        ("%.3d", (7,), "007"),
        ("%f", (1.5,), "1.500000"),
        ("%.2f", (3.14159,), "3.14"),
        ("%0.2f", (3720.01,), "3720.01"),
        ("%5.1f|", (3.14159,), "  3.1|"),
        ("%-8.3f|", (2.5,), "2.500   |"),
        ("%08.3f", (-2.5,), "-002.500"),
        ("%+.1f", (2.0,), "+2.0"),
        ("%e", (1234.5678,), "1.234568e+03"),
        ("%E", (1234.5678,), "1.234568E+03"),
        ("%g", (1e6,), "1e+06"),
        ("%g", (123456.0,), "123456"),
        ("%.4g", (1234567.0,), "1.235e+06"),
        ("%.3g", (0.0001234,), "0.000123"),
        ("%G", (1e-7,), "1E-07"),
        ("%v", (0.1,), "0.1"),
        ("%.2v", (3.14159,), "3.1"),
        ("%f", (math.inf,), "+Inf"),
        ("%5.1f", (math.nan,), "  NaN"),
        ("%q", ("hi\n",), '"hi\\n"'),
        ("%q", ('a"b',), '"a\\"b"'),
        ("%x", (255,), "ff"),
        ("%X", (255,), "FF"),
        ("%#x", (255,), "0xff"),
        ("%x", ("hi",), "6869"),
        ("% x", ("hi",), "68 69"),
        ("%o", (8,), "10"),
        ("%b", (5,), "101"),
        ("%c", (65,), "A"),
        ("%q", (65,), "'A'"),
        ("%U", (0x1F600,), "U+1F600"),
        ("%-10s|", ("ab",), "ab        |"),
        ("%10s|", ("ab",), "        ab|"),
        ("%.2s", ("abcdef",), "ab"),
        ("%t %v", (True, False), "true false"),
        ("%T %T %T %T", (1, 1.0, "s", True), "int float64 string bool"),
        ("100%%", (), "100%"),
        ("%v", ([1, "a", 2.5],), "[1 a 2.5]"),
        ("%v", ({"b": "2", "a": "1"},), "map[a:1 b:2]"),
        ("%d", ([1, 2],), "[1 2]"),
        ("%v", (None,), "<nil>"),
        ("%*d|", (4, 7), "   7|"),
        ("%[2]d %[1]d", (1, 2), "2 1"),
        ("%x %x %X", (3.0, 0.0, -0.5), "0x1.8p+01 0x0p+00 -0X1P-01"),
        ("%[1]s-%[1]s", ("x",), "x-x"),
        ("%[3]d", (1,), "%!d(BADINDEX)"),
    ],
)
def test_sprintf(fmt: str, args: tuple[object, ...], expected: str) -> None:
    assert sprintf(fmt, *args) == expected


@pytest.mark.parametrize(
    ("fmt", "args", "expected"),
    [
        ("%d", ("x",), "%!d(string=x)"),
        ("%s", (5,), "%!s(int=5)"),
        ("%d", (1.5,), "%!d(float64=1.5)"),
        ("%t", (1,), "%!t(int=1)"),
        ("%d", (None,), "%!d(<nil>)"),
        ("%d %d", (1,), "1 %!d(MISSING)"),
        ("%d", (1, "a", 2), "1%!(EXTRA string=a, int=2)"),
        ("%z", (1,), "%!z(int=1)"),
        ("abc%", (), "abc%!(NOVERB)"),
    ],
)
def test_sprintf_diagnostics(fmt: str, args: tuple[object, ...], expected: str) -> None:
    assert sprintf(fmt, *args) == expected


def test_sprint_spacing_follows_go() -> None:
    # Spaces only between operands when neither is a string.
    assert sprint("a", 1, 2, "b", 3.0) == "a1 2b3"
    assert sprint(1.5, True, None) == "1.5 true <nil>"
    assert sprintln("a", 1, 2.5) == "a 1 2.5\n"


@pytest.mark.parametrize(
    ("value", "fmt", "prec", "expected"),
    [
        (1.0, "e", -1, "1e+00"),
        (123.456, "e", -1, "1.23456e+02"),
        (0.000123, "f", -1, "0.000123"),
        (1e21, "f", -1, "1000000000000000000000"),
        (2.5, "f", 0, "2"),
        (3.5, "f", 0, "4"),
        (1234.5678, "g", 3, "1.23e+03"),
    ],
)
def test_format_float(value: float, fmt: str, prec: int, expected: str) -> None:
    assert format_float(value, fmt, prec) == expected
