"""Line-level parsing of the Prometheus text format (0.0.4 / 1.0.0) and OpenMetrics 1.0 text.

The grammar follows Prometheus's ``promlex``/``openmetricslex`` lexers (``model/textparse``):

* text format: blank lines and ``#`` comments are allowed, spaces and tabs may separate every token,
  commas between label pairs are optional, timestamps are integer milliseconds;
* OpenMetrics: exactly one space between tokens, only ``# HELP|TYPE|UNIT|EOF`` comments, timestamps are
  float seconds, exemplars (``value # {labels} value [timestamp]``) and a final ``# EOF``.

Both accept quoted UTF-8 metric and label names (``{"my.metric", "a.b"="c"}``). Values use Go's
``strconv.ParseFloat`` syntax minus hex floats and underscores (as Prometheus), which is stricter than
Python's :func:`float`. :func:`scan_line` is the single entry point used both by the full parsers and by
the scrape cache on a cache miss; it never builds labels itself (see :func:`build_labels`).

Input is ``str``; bodies are decoded with ``surrogateescape`` so invalid UTF-8 survives as lone
surrogates and is rejected where Prometheus rejects it (label values, help text, names).
"""

from __future__ import annotations

import functools
import json
import math
import re
from enum import StrEnum
from typing import NamedTuple

from narthex.model.labels import METRIC_NAME, Labels
from narthex.util.gofmt import format_float as format_go_float  # re-exported: Go's 'g' -1 formatting


class ParseError(ValueError):
    """A malformed exposition; ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return self.message if self.line is None else f"line {self.line}: {self.message}"


class Format(StrEnum):
    """An exposition text format."""

    TEXT = "text/plain"
    OPENMETRICS = "application/openmetrics-text"


# Metric types as Prometheus names them (model.MetricType); the text format's "untyped" is "unknown".
TEXT_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram", "summary": "summary"}
TEXT_TYPES["untyped"] = "unknown"
OPENMETRICS_TYPES = frozenset(
    {"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"}
)

# Kinds of scanned lines.
SERIES = 0
HELP = 1
TYPE = 2
UNIT = 3
COMMENT = 4
BLANK = 5
EOF = 6


class Exemplar(NamedTuple):
    """An OpenMetrics exemplar: its labels (sorted), value and optional timestamp (ms)."""

    labels: Labels
    value: float
    timestamp_ms: int | None


class ScannedSeries(NamedTuple):
    """One sample line split into its parts (labels not yet built)."""

    key_end: int  # the series text is line[:key_end]
    name: str
    pairs: list[tuple[str, str]]
    value: float
    timestamp_ms: int | None
    timestamp: float | None  # OpenMetrics timestamp in seconds as written (for ordering checks)
    exemplar: Exemplar | None


class ScannedMeta(NamedTuple):
    kind: int  # HELP, TYPE, UNIT, COMMENT, BLANK or EOF
    name: str
    text: str


# ---------------------------------------------------------------------------------------------------------
# Numbers.

_GO_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
    r"|[nN][aA][nN]"
)
_INT64_MAX = (1 << 63) - 1
_INT64_MIN = -(1 << 63)


def go_quote(s: str) -> str:
    """Double-quote like Go's %q (close enough for error messages)."""
    return json.dumps(s, ensure_ascii=False)


def parse_go_float(s: str) -> float:
    """``strconv.ParseFloat`` as Prometheus calls it: no hex floats, no underscores; overflow is an error."""
    if s.isdigit() and s.isascii() and len(s) < 300:
        return float(s)
    if _GO_FLOAT.fullmatch(s) is None:
        if "p" in s or "P" in s or "_" in s:
            raise ValueError("unsupported character in float")
        raise ValueError(f"strconv.ParseFloat: parsing {go_quote(s)}: invalid syntax")
    v = float(s)
    if v - v != 0 and v == v and s.lstrip("+-")[:1] not in ("i", "I"):
        raise ValueError(f"strconv.ParseFloat: parsing {go_quote(s)}: value out of range")
    return v


def seconds_to_ms(ts: float) -> int:
    """``int64(ts * 1000)``, truncating. Out of the int64 range Go (amd64) yields the minimum int64, a
    time storage rejects as out of bounds; we yield one more than that, so the minimum stays free to
    mean "no timestamp" (:data:`narthex.model.exposition.NO_TIMESTAMP`)."""
    ms = ts * 1000.0
    if not -9.223372036854776e18 < ms < 9.223372036854776e18:
        return _INT64_MIN + 1
    return int(ms)


def format_openmetrics_float(f: float) -> str:
    """Prometheus's ``labels.FormatOpenMetricsFloat``: Go formatting, with ``.0`` added to integers."""
    if f == 1:
        return "1.0"
    if f == 0:
        return "0.0"
    if f == -1:
        return "-1.0"
    s = format_go_float(f)
    if math.isnan(f) or math.isinf(f) or "e" in s or "." in s:
        return s
    return s + ".0"


@functools.lru_cache(maxsize=4096)
def normalize_float_label(value: str) -> str:
    """An ``le``/``quantile`` value in OpenMetrics float formatting (unchanged when not a number)."""
    try:
        return format_openmetrics_float(parse_go_float(value))
    except ValueError:
        return value


# ---------------------------------------------------------------------------------------------------------
# Escapes.

_LVAL_ESCAPES = re.compile(r'\\[\\"n]')
_HELP_ESCAPES = re.compile(r"\\[\\n]")
_ESCAPE_MAP = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _esc(m: re.Match[str]) -> str:
    return _ESCAPE_MAP[m.group(0)]


def unescape_label_value(s: str) -> str:
    """Prometheus's label value unescaping (``\\\\``, ``\\"``, ``\\n``; other escapes stay as written)."""
    return _LVAL_ESCAPES.sub(_esc, s) if "\\" in s else s


def unescape_help_text(s: str) -> str:
    """Text-format HELP unescaping (``\\\\`` and ``\\n`` only)."""
    return _HELP_ESCAPES.sub(_esc, s) if "\\" in s else s


def is_valid_utf8(s: str) -> bool:
    """False when ``s`` carries lone surrogates (invalid UTF-8 decoded with ``surrogateescape``)."""
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------------------
# Series text.

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LNAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_QVAL = r'[^"\\\n]*(?:\\.[^"\\\n]*)*'  # the inside of a quoted string, escapes allowed
_QSTR = rf'"{_QVAL}"'
_NAME_RE = re.compile(_NAME)
_LNAME_RE = re.compile(_LNAME)
_QSTR_RE = re.compile(_QSTR)
_NAME_FULL = re.compile(_NAME)
# A metric name, "{" and the label names of a series with its quoted values cut out: 'a{x=",y='.
_SERIES_SHAPE = re.compile(rf'{_NAME}\{{{_LNAME}=(?:",{_LNAME}=)*')
_WS = " \t"
# The end of a sample line after its series text, in the common shapes.
_TEXT_TAIL = re.compile(r"[ \t]*([^{ \t]+)(?:[ \t]+([0-9]+))?[ \t]*$")
_OM_TAIL = re.compile(r" ([^ ]+)(?: ([^ #][^ ]*))?$")


def _err_at(exp: str, line: str, i: int) -> ParseError:
    got = line[i : i + 1] if i < len(line) else "\\n"
    return ParseError(f"{exp}, got {go_quote(got)} while parsing: {go_quote(line[: i + 1])}")


def _skip_ws(line: str, i: int, n: int) -> int:
    while i < n and line[i] in _WS:
        i += 1
    return i


def _scan_labels(
    line: str, i: int, text: bool, exemplar: bool, strict: bool, name: str | None
) -> tuple[int, str | None, list[tuple[str, str]]]:
    """Scan a label set starting just after ``{``; returns (index after ``}``, metric name, pairs)."""
    n = len(line)
    pairs: list[tuple[str, str]] = []
    after_comma = False
    while True:
        if text:
            i = _skip_ws(line, i, n)
        if i >= n:
            raise _err_at("expected label name", line, i)
        c = line[i]
        if c == "}":
            if after_comma and strict:
                raise _err_at("expected label name", line, i)
            return i + 1, name, pairs
        quoted = False
        if c == '"':
            m = _QSTR_RE.match(line, i)
            if m is None:
                raise _err_at("expected label name", line, i)
            lname = unescape_label_value(m.group(0)[1:-1])
            if not is_valid_utf8(lname):
                raise ParseError(f"invalid UTF-8 label name: {go_quote(lname)}")
            quoted = True
        else:
            m = _LNAME_RE.match(line, i)
            if m is None:
                raise _err_at("expected label name", line, i)
            lname = m.group(0)
        i = m.end()
        if text:
            i = _skip_ws(line, i, n)
        c = line[i] if i < n else ""
        if quoted and c in (",", "}"):
            # A lone quoted string is the metric name.
            if exemplar:
                raise _err_at("expected label name", line, i)
            if name is not None:
                raise ParseError(f"metric name already set while parsing: {go_quote(line[: i + 1])}")
            name = lname
            after_comma = c == ","
            i += 1
            if c == "}":
                return i, name, pairs
            continue
        if c != "=":
            raise _err_at("expected equal", line, i)
        i += 1
        if text:
            i = _skip_ws(line, i, n)
        m = _QSTR_RE.match(line, i)
        if m is None:
            raise _err_at("expected label value", line, i)
        raw = m.group(0)[1:-1]
        if not is_valid_utf8(raw):
            raise ParseError(f"invalid UTF-8 label value: {go_quote(raw)}")
        pairs.append((lname, unescape_label_value(raw)))
        i = m.end()
        if text:
            i = _skip_ws(line, i, n)
        c = line[i] if i < n else ""
        after_comma = False
        if c == ",":
            i += 1
            after_comma = True
        elif c != "}" and not text:
            raise _err_at("expected comma or brace close", line, i)


def _split_pairs(line: str, brace: int) -> tuple[int, str, list[tuple[str, str]]] | None:
    """Fast path for ``name{a="x",b="y"}`` without escapes or quoted names; None when unsure."""
    parts = line[brace + 1 :].split('"')
    tail = parts[-1]
    if not len(parts) & 1 or tail[:1] != "}":
        return None
    name = line[:brace]
    if len(parts) == 1:
        if _NAME_FULL.fullmatch(name) is None:
            return None
        return brace + 2, name, []
    names = '"'.join(parts[0:-1:2])  # the text between the values, '"' marking where values were
    if _SERIES_SHAPE.fullmatch(f"{name}{{{names}") is None:
        return None
    pairs = list(zip(names[:-1].split('=",'), parts[1:-1:2], strict=True))
    if not line.isascii():
        for _, v in pairs:
            if not is_valid_utf8(v):
                raise ParseError(f"invalid UTF-8 label value: {go_quote(v)}")
    return len(line) - len(tail) + 1, name, pairs


def _scan_series_text(line: str, text: bool, strict: bool) -> tuple[int, str, list[tuple[str, str]]]:
    """The series part of a sample line: (end index, metric name, raw label pairs)."""
    brace = line.find("{")
    if brace > 0 and "\\" not in line:
        fast = _split_pairs(line, brace)
        if fast is not None:
            return fast
    n = len(line)
    i = 0
    name: str | None = None
    if line[0] != "{":
        m2 = _NAME_RE.match(line)
        if m2 is None:
            raise _err_at("expected a valid start token", line, 0)
        name = m2.group(0)
        i = m2.end()
        j = _skip_ws(line, i, n) if text else i
        if j >= n or line[j] != "{":
            return i, name, []
        i = j
    end, name, pairs = _scan_labels(line, i + 1, text, False, strict, name)
    if name is None:
        raise ParseError(f"metric name not set while parsing: {go_quote(line[:end])}")
    return end, name, pairs


def _scan_text_sample(line: str) -> ScannedSeries:
    n = len(line)
    start = _skip_ws(line, 0, n) if line[0] in _WS else 0
    if start:
        # Leading whitespace: scan the rest and shift the key (it keeps the whitespace).
        inner = _scan_text_sample(line[start:])
        return inner._replace(key_end=inner.key_end + start)
    end, name, pairs = _scan_series_text(line, True, False)
    m = _TEXT_TAIL.match(line, end)
    if m is not None:
        tok, ts_text = m.group(1), m.group(2)
        try:
            value = parse_go_float(tok)
        except ValueError as exc:
            raise ParseError(f"{exc} while parsing: {go_quote(line[: m.end(1)])}") from None
        if ts_text is None:
            return ScannedSeries(end, name, pairs, value, None, None, None)
        if len(ts_text) < 19 or int(ts_text) <= _INT64_MAX:
            return ScannedSeries(end, name, pairs, value, int(ts_text), None, None)
    i = _skip_ws(line, end, n)
    j = i
    while j < n and line[j] not in " \t{":
        j += 1
    if j == i:
        raise _err_at("expected value after metric", line, i)
    tok = line[i:j]
    try:
        value = parse_go_float(tok)
    except ValueError as exc:
        raise ParseError(f"{exc} while parsing: {go_quote(line[:j])}") from None
    i = _skip_ws(line, j, n)
    if i >= n:
        return ScannedSeries(end, name, pairs, value, None, None, None)
    j = i
    while j < n and "0" <= line[j] <= "9":
        j += 1
    if j == i:
        raise _err_at("expected timestamp or new record", line, i)
    ts = int(line[i:j])
    if ts > _INT64_MAX:
        raise ParseError(
            f"strconv.ParseInt: parsing {go_quote(line[i:j])}: value out of range while parsing: "
            f"{go_quote(line[:j])}"
        )
    k = _skip_ws(line, j, n)
    if k < n:
        raise _err_at("expected next entry after timestamp", line, k)
    return ScannedSeries(end, name, pairs, value, ts, None, None)


def _om_token(line: str, i: int, n: int) -> int:
    """End of a ``{S}[^ \\n]+`` token starting at ``i`` (which must be a space), or -1."""
    if i >= n or line[i] != " ":
        return -1
    j = line.find(" ", i + 1)
    if j < 0:
        j = n
    return j if j > i + 1 else -1


def _om_float(line: str, i: int, j: int) -> float:
    try:
        return parse_go_float(line[i:j])
    except ValueError as exc:
        raise ParseError(f"{exc} while parsing: {go_quote(line[:j])}") from None


def _om_timestamp(line: str, i: int, j: int, what: str) -> float:
    ts = _om_float(line, i, j)
    if math.isnan(ts) or math.isinf(ts):
        raise ParseError(f"invalid {what} {format_go_float(ts)}")
    return ts


def _scan_exemplar(line: str, i: int, strict: bool) -> Exemplar:
    """Scan ``{labels} value [ts]`` starting just after ``# {``."""
    n = len(line)
    i, _, pairs = _scan_labels(line, i, False, True, strict, None)
    j = _om_token(line, i, n)
    if j < 0:
        raise _err_at("expected value after exemplar labels", line, i)
    value = _om_float(line, i + 1, j)
    ts_ms: int | None = None
    if j < n:
        k = _om_token(line, j, n)
        if k < 0:
            raise _err_at("expected timestamp or comment", line, j)
        ts_ms = seconds_to_ms(_om_timestamp(line, j + 1, k, "exemplar timestamp"))
        if k < n:
            raise _err_at("expected next entry after exemplar timestamp", line, k)
    if strict:
        size = sum(len(k) + len(v) for k, v in pairs)
        if size > 128:
            raise ParseError(f"exemplar label set is longer than 128 characters ({size}): {go_quote(line)}")
    seen = set()
    for k, _ in pairs:
        if k in seen:
            raise ParseError(f'label name "{k}" is not unique: invalid exemplar')
        seen.add(k)
    return Exemplar(tuple(sorted(pairs)), value, ts_ms)


def _scan_om_sample(line: str, strict: bool) -> ScannedSeries:
    n = len(line)
    end, name, pairs = _scan_series_text(line, False, strict)
    m = _OM_TAIL.match(line, end)
    if m is not None:
        value = _om_float(line, end + 1, m.end(1))
        if m.group(2) is None:
            return ScannedSeries(end, name, pairs, value, None, None, None)
        ts = _om_timestamp(line, m.start(2), m.end(2), "timestamp")
        return ScannedSeries(end, name, pairs, value, seconds_to_ms(ts), ts, None)
    j = _om_token(line, end, n)
    if j < 0:
        raise _err_at("expected value after metric", line, end)
    value = _om_float(line, end + 1, j)
    if j >= n:
        return ScannedSeries(end, name, pairs, value, None, None, None)
    if line.startswith(" # {", j):
        return ScannedSeries(end, name, pairs, value, None, None, _scan_exemplar(line, j + 4, strict))
    k = _om_token(line, j, n)
    if k < 0:
        raise _err_at("expected timestamp or comment", line, j)
    ts = _om_timestamp(line, j + 1, k, "timestamp")
    exemplar = None
    if k < n:
        if not line.startswith(" # {", k):
            raise _err_at("expected next entry after timestamp", line, k)
        exemplar = _scan_exemplar(line, k + 4, strict)
    return ScannedSeries(end, name, pairs, value, seconds_to_ms(ts), ts, exemplar)


def _meta_name(line: str, i: int, what: str) -> tuple[str, int]:
    if i < len(line) and line[i] == '"':
        m = _QSTR_RE.match(line, i)
        if m is not None:
            return unescape_label_value(m.group(0)[1:-1]), m.end()
    else:
        m = _NAME_RE.match(line, i)
        if m is not None:
            return m.group(0), m.end()
    raise _err_at(f"expected metric name after {what}", line, i)


def _scan_text_comment(line: str, i: int) -> ScannedMeta:
    n = len(line)
    j = i + 1
    if j >= n or line[j] not in _WS:
        return ScannedMeta(COMMENT, "", line)
    j = _skip_ws(line, j, n)
    kw = line[j : j + 4]
    if kw not in ("HELP", "TYPE") or j + 4 >= n or line[j + 4] not in _WS:
        return ScannedMeta(COMMENT, "", line)
    k = _skip_ws(line, j + 4, n)
    name, e = _meta_name(line, k, kw)
    rest = line[e:]
    text = "" if rest.strip(_WS) == "" else rest[1:]
    if kw == "TYPE":
        mtype = TEXT_TYPES.get(text)
        if mtype is None:
            raise ParseError(f"invalid metric type {go_quote(text)}")
        return ScannedMeta(TYPE, name, mtype)
    if not is_valid_utf8(text):
        raise ParseError(f"help text {go_quote(text)} is not a valid utf8 string")
    return ScannedMeta(HELP, name, unescape_help_text(text))


def _scan_om_comment(line: str) -> ScannedMeta:
    if line == "# EOF":
        return ScannedMeta(EOF, "", "")
    kw = line[2:6]
    if not line.startswith("# ") or kw not in ("HELP", "TYPE", "UNIT") or line[6:7] != " ":
        raise _err_at("expected a valid start token", line, 0)
    name, e = _meta_name(line, 7, kw)
    if e >= len(line) or line[e] != " ":
        raise ParseError(f"expected text in {kw}")
    text = line[e + 1 :]
    if kw == "TYPE":
        if text not in OPENMETRICS_TYPES:
            raise ParseError(f"invalid metric type {go_quote(text)}")
        return ScannedMeta(TYPE, name, text)
    if kw == "UNIT":
        if text and not (name.endswith(text) and name[: -len(text)].endswith("_")):
            raise ParseError(f"unit {go_quote(text)} not a suffix of metric {go_quote(name)}")
        return ScannedMeta(UNIT, name, text)
    if not is_valid_utf8(text):
        raise ParseError(f"help text {go_quote(text)} is not a valid utf8 string")
    return ScannedMeta(HELP, name, unescape_label_value(text))


def scan_line(line: str, fmt: Format, strict: bool = False) -> ScannedSeries | ScannedMeta:
    """Scan one line (without its newline). ``strict`` adds OpenMetrics spec rules Prometheus skips
    (no trailing comma in label sets, exemplar label sets of at most 128 characters)."""
    if fmt is Format.OPENMETRICS:
        if not line:
            raise ParseError('expected a valid start token, got "\\n"')
        if line[0] == "#":
            return _scan_om_comment(line)
        return _scan_om_sample(line, strict)
    n = len(line)
    i = _skip_ws(line, 0, n)
    if i >= n:
        return ScannedMeta(BLANK, "", "")
    c = line[i]
    if c == "#":
        return _scan_text_comment(line, i)
    if c == "\0":
        return ScannedMeta(EOF, "", "")
    return _scan_text_sample(line)


def build_labels(name: str, pairs: list[tuple[str, str]], mtype: str | None) -> Labels:
    """The sorted label set of a scanned series, with Prometheus's ``le``/``quantile`` normalisation for
    classic histograms and summaries; duplicate label names are an error."""
    if not pairs:
        return ((METRIC_NAME, name),)
    if mtype == "histogram" or mtype == "summary":
        special = "le" if mtype == "histogram" else "quantile"
        items = [(k, normalize_float_label(v)) if k == special else (k, v) for k, v in pairs]
    else:
        items = list(pairs)
    items.append((METRIC_NAME, name))
    items.sort()
    if len(dict(items)) != len(items):
        prev = None
        for k, _ in items:
            if k == prev:
                raise ParseError(f'label name "{k}" is not unique: invalid sample')
            prev = k
    return tuple(items)
