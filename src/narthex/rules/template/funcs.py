"""Prometheus's template functions (template/template.go and prometheus/common helpers/templates)."""

from __future__ import annotations

import functools
import ipaddress
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import re2

from narthex.model.duration import DurationError
from narthex.model.duration import parse_duration as parse_prometheus_duration
from narthex.rules.template.builtins import query_escape
from narthex.rules.template.gofmt import format_float, format_value, go_quote, go_type_name, sprintf
from narthex.rules.template.gofunc import ANY, FuncError, GoFunc
from narthex.rules.template.gotime import GoDuration, GoTime
from narthex.rules.template.values import HTML, AnyMap, QueryResult, Sample

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False

MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)


class QueryFunc(Protocol):
    """Runs an instant PromQL query at a time (seconds since the epoch); returns samples.

    Each sample is an object with ``Labels``/``labels``/``metric`` (a mapping or narthex label tuple) and
    ``Value``/``value`` (or ``f`` and ``h``), or a ``(labels, value)`` pair. Raising an exception makes
    ``query`` fail with the exception's message.
    """

    def __call__(self, expr: str, ts: float) -> Any: ...


def _to_sample(item: Any) -> Sample:
    if isinstance(item, Sample):
        return item
    if isinstance(item, tuple) and len(item) == 2 and not isinstance(item[0], str):
        labels, value = item
    else:
        labels = next(
            (getattr(item, a) for a in ("Labels", "labels", "metric") if getattr(item, a, None) is not None),
            {},
        )
        value = getattr(item, "Value", getattr(item, "value", None))
        if value is None:
            h = getattr(item, "h", None)
            value = h if h is not None else getattr(item, "f", None)
    if not isinstance(labels, Mapping):
        labels = dict(labels)
    return Sample(labels, value)


# -- number conversion and humanizing ------------------------------------------------------------------------


def convert_to_float(value: Any) -> float:
    """helpers/templates.ConvertToFloat: float, string (strconv.ParseFloat), ints and durations."""
    if isinstance(value, float):
        return value
    if isinstance(value, str) and not isinstance(value, HTML):
        return parse_float(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, GoDuration):
        return value.Seconds()
    raise FuncError(f"can't convert {go_type_name(value)} to float")


def parse_float(text: str) -> float:
    """strconv.ParseFloat(text, 64) with Go's error text."""
    body = text.lstrip("+-")
    if body.lower() in ("inf", "infinity", "nan"):
        value = float(body)
        return -value if text.startswith("-") else value
    try:
        if body[:2].lower() == "0x":
            value = float.fromhex(text.replace("_", ""))
        elif not body or body[0] not in "0123456789." or "_" in text:
            raise ValueError(text)
        else:
            value = float(text)
    except (ValueError, OverflowError):
        raise FuncError(f"strconv.ParseFloat: parsing {go_quote(text)}: invalid syntax") from None
    if math.isinf(value):
        raise FuncError(f"strconv.ParseFloat: parsing {go_quote(text)}: value out of range")
    return value


def _g4(value: float) -> str:
    return sprintf("%.4g", value)


def humanize(value: Any) -> str:
    v = convert_to_float(value)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return _g4(v) + prefix
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return _g4(v) + prefix


def humanize1024(value: Any) -> str:
    v = convert_to_float(value)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return _g4(v) + prefix


def humanize_duration(value: Any) -> str:
    v = convert_to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        duration = int(v)
        seconds = duration % 60
        minutes = duration // 60 % 60
        hours = duration // 3600 % 24
        days = duration // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(value: Any) -> str:
    return _g4(convert_to_float(value) * 100) + "%"


def float_to_time(v: float) -> GoTime:
    """Seconds to a UTC time truncated to milliseconds, as Prometheus's floatToTime."""
    if math.isnan(v) or math.isinf(v):
        raise FuncError("value is NaN or Inf")
    timestamp = v * 1e9
    if timestamp > MAX_INT64 or timestamp < MIN_INT64:
        raise FuncError(
            f"{format_float(v)} cannot be represented as a nanoseconds timestamp since it overflows int64"
        )
    ns = int(timestamp)
    ms = abs(ns) // 1_000_000 * (1 if ns >= 0 else -1)
    return GoTime(ms * 1_000_000)


def humanize_timestamp(value: Any) -> str:
    v = convert_to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    return float_to_time(v).String()


def to_duration(value: Any) -> GoDuration:
    seconds = convert_to_float(value) * 1e9
    if math.isnan(seconds) or math.isinf(seconds) or not MIN_INT64 <= seconds <= MAX_INT64:
        return GoDuration(MIN_INT64)
    return GoDuration(int(seconds))


def parse_duration(text: str) -> float:
    """model.ParseDurationAllowNegative, in seconds."""
    negative = text.startswith("-")
    try:
        ms = parse_prometheus_duration(text[1:] if negative else text)
    except DurationError as exc:
        raise FuncError(str(exc)) from None
    return (-ms if negative else ms) / 1000.0


# -- strings and regular expressions -------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def compile_go_regexp(pattern: str) -> Any:
    """An unanchored RE2 regexp with Go's defaults (``.`` does not match newline)."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        message = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise FuncError(f"error parsing regexp: {message}") from None


def match(pattern: str, text: str) -> bool:
    return compile_go_regexp(pattern).search(text) is not None


def _expand(template: str, match_obj: Any, names: Mapping[str, int], groups: int) -> str:
    """regexp.Expand: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``; unknown groups expand to ``""``."""
    out: list[str] = []
    i = 0
    while i < len(template):
        dollar = template.find("$", i)
        if dollar < 0:
            out.append(template[i:])
            break
        out.append(template[i:dollar])
        i = dollar + 1
        if i < len(template) and template[i] == "$":
            out.append("$")
            i += 1
            continue
        name, i = _expansion_name(template, i)
        if name is None:
            out.append("$")
            continue
        group = int(name) if name.isdigit() else names.get(name, -1)
        if 0 <= group <= groups:
            out.append(match_obj.group(group) or "")
    return "".join(out)


def _expansion_name(template: str, i: int) -> tuple[str | None, int]:
    braced = i < len(template) and template[i] == "{"
    start = i + 1 if braced else i
    j = start
    while j < len(template) and (template[j].isalnum() or template[j] == "_"):
        j += 1
    if j == start:
        return None, i
    if braced:
        if j >= len(template) or template[j] != "}":
            return None, i
        return template[start:j], j + 1
    return template[start:j], j


def re_replace_all(pattern: str, repl: str, text: str) -> str:
    """regexp.ReplaceAllString with Go's empty-match rules and ``$`` expansion."""
    try:
        regexp = compile_go_regexp(pattern)
    except FuncError as exc:
        raise FuncError(f"regexp: Compile({_backquote(pattern)}): {exc}") from None
    names = dict(regexp.groupindex)
    out: list[str] = []
    last_end = 0
    search_pos = 0
    last_match_end = -1
    while search_pos <= len(text):
        m = regexp.search(text, search_pos)
        if m is None:
            break
        start, end = m.span()
        if not (start == end and start == last_match_end):
            out.append(text[last_end:start])
            out.append(_expand(repl, m, names, regexp.groups))
            last_end = end
        last_match_end = end
        search_pos = end + 1 if end == start else end
    out.append(text[last_end:])
    return "".join(out)


def _backquote(pattern: str) -> str:
    return "`" + pattern + "`" if "`" not in pattern else go_quote(pattern)


_MID_LETTER = frozenset(".:'\u2019\u00b7")
_MID_NUM = frozenset(".,;'\u2019")


def _joins_word(text: str, i: int) -> bool:
    """Whether the punctuation at ``i`` sits inside a word (UAX #29 MidLetter/MidNum rules)."""
    if i == 0 or i + 1 >= len(text):
        return False
    before, ch, after = text[i - 1], text[i], text[i + 1]
    if ch in _MID_LETTER and before.isalpha() and after.isalpha():
        return True
    return ch in _MID_NUM and before.isdigit() and after.isdigit()


def title(text: str) -> str:
    """cases.Title(language.AmericanEnglish, cases.NoLower): upper-case the first letter of each word."""
    out: list[str] = []
    in_word = False
    for i, ch in enumerate(text):
        if ch.isalnum() or ch == "_" or (in_word and _joins_word(text, i)):
            out.append(ch if in_word else ch.upper())
            in_word = True
        else:
            out.append(ch)
            in_word = False
    return "".join(out)


def _split_host_port(host_port: str) -> tuple[str, str]:
    """net.SplitHostPort; ValueError when there is no valid port separator."""
    if host_port.startswith("["):
        end = host_port.find("]")
        if end < 0 or end + 1 >= len(host_port) or host_port[end + 1] != ":":
            raise ValueError(host_port)
        host, port = host_port[1:end], host_port[end + 2 :]
        if "[" in host or "]" in port or ":" in port:
            raise ValueError(host_port)
        return host, port
    colon = host_port.rfind(":")
    if colon < 0:
        raise ValueError(host_port)
    host, port = host_port[:colon], host_port[colon + 1 :]
    if ":" in host or "[" in host or "]" in host or "[" in port or "]" in port:
        raise ValueError(host_port)
    return host, port


def strip_port(host_port: str) -> str:
    try:
        return _split_host_port(host_port)[0]
    except ValueError:
        return host_port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def strip_domain(host_port: str) -> str:
    try:
        host, port = _split_host_port(host_port)
    except ValueError:
        host, port = host_port, ""
    if _is_ip(host):
        return host_port
    host = host.split(".")[0]
    if port:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return host


def graph_link(expr: str) -> str:
    return f"/graph?g0.expr={query_escape(expr)}&g0.tab=0"


def table_link(expr: str) -> str:
    return f"/graph?g0.expr={query_escape(expr)}&g0.tab=1"


def args(*values: Any) -> AnyMap:
    return AnyMap({f"arg{i}": v for i, v in enumerate(values)})


def first(result: QueryResult | None) -> Sample:
    if not result:
        raise FuncError("first() called on vector with no elements")
    return result[0]


def _nil_sample(sample: Sample | None) -> Sample:
    if sample is None:
        raise FuncError("runtime error: invalid memory address or nil pointer dereference")
    return sample


def sort_by_label(label: str, result: QueryResult | None) -> QueryResult | None:
    if result is None:
        return None
    result.sort(key=lambda s: s.Labels.get(label, "").encode("utf-8", "surrogatepass"))
    return result


def prometheus_funcs(
    *,
    query_func: Callable[[str, float], Any] | None,
    timestamp_s: float,
    external_url: str,
    path_prefix: str,
) -> dict[str, GoFunc]:
    """Prometheus's function map, bound to a query function, evaluation time and external URL."""

    def query(expr: str) -> QueryResult:
        if query_func is None:
            raise FuncError("no query function configured")
        try:
            vector = query_func(expr, timestamp_s)
        except FuncError:
            raise
        except Exception as exc:
            raise FuncError(str(exc)) from None
        return QueryResult(_to_sample(item) for item in vector or ())

    sample = "*template.sample"
    result = "template.queryResult"
    return {
        "query": GoFunc(query, ("string",)),
        "first": GoFunc(first, (result,)),
        "label": GoFunc(lambda name, s: _nil_sample(s).Labels.get(name, ""), ("string", sample)),
        "value": GoFunc(lambda s: _nil_sample(s).Value, (sample,)),
        "strvalue": GoFunc(lambda s: _nil_sample(s).Labels.get("__value__", ""), (sample,)),
        "args": GoFunc(args, (), ANY),
        "reReplaceAll": GoFunc(re_replace_all, ("string", "string", "string")),
        "safeHtml": GoFunc(HTML, ("string",)),
        "match": GoFunc(match, ("string", "string")),
        "title": GoFunc(title, ("string",)),
        "toUpper": GoFunc(str.upper, ("string",)),
        "toLower": GoFunc(str.lower, ("string",)),
        "graphLink": GoFunc(graph_link, ("string",)),
        "tableLink": GoFunc(table_link, ("string",)),
        "sortByLabel": GoFunc(sort_by_label, ("string", result)),
        "stripPort": GoFunc(strip_port, ("string",)),
        "stripDomain": GoFunc(strip_domain, ("string",)),
        "humanize": GoFunc(humanize, (ANY,)),
        "humanize1024": GoFunc(humanize1024, (ANY,)),
        "humanizeDuration": GoFunc(humanize_duration, (ANY,)),
        "humanizePercentage": GoFunc(humanize_percentage, (ANY,)),
        "humanizeTimestamp": GoFunc(humanize_timestamp, (ANY,)),
        "toTime": GoFunc(lambda v: float_to_time(convert_to_float(v)), (ANY,)),
        "toDuration": GoFunc(to_duration, (ANY,)),
        "now": GoFunc(lambda: timestamp_s),
        "pathPrefix": GoFunc(lambda: path_prefix),
        "externalURL": GoFunc(lambda: external_url),
        "parseDuration": GoFunc(parse_duration, ("string",)),
        "urlQueryEscape": GoFunc(query_escape, ("string",)),
    }


__all__ = ["QueryFunc", "convert_to_float", "format_value", "humanize", "prometheus_funcs"]
