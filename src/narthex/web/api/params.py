"""Request parameters as Prometheus's API reads them: merged forms, times, durations, limits, match[].

Times and durations are parsed with Go's rules (``strconv.ParseFloat``, ``time.Parse(RFC3339Nano)``,
``model.ParseDuration``) straight to int64 milliseconds, without Python datetimes, so any magnitude
Prometheus accepts is accepted here too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from narthex.model.matcher import Matcher
from narthex.promql.errors import ParseError
from narthex.promql.lexer import go_quote
from narthex.promql.parser import parse_duration_ms, parse_metric_selector

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
MIN_TIME_MS = -9223309901257974 * 1000
MAX_TIME_MS = 9223309901257974 * 1000 + 999
_MIN_TIME_TEXT = "-292273086-05-16T16:47:06Z"
_MAX_TIME_TEXT = "292277025-08-18T07:12:54.999999999Z"

ERROR_STATUS = {
    "bad_data": 400,
    "execution": 422,
    "canceled": 499,
    "timeout": 503,
    "internal": 500,
    "unavailable": 500,
    "not_found": 404,
    "not_acceptable": 406,
}


class ApiError(Exception):
    """An API error: its ``errorType`` and message, answered with the matching HTTP status."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message

    @property
    def status(self) -> int:
        return ERROR_STATUS.get(self.error_type, 500)


def bad_data(message: str) -> ApiError:
    return ApiError("bad_data", message)


def invalid_param(parameter: str, message: str) -> ApiError:
    """``invalidParamError``: ``invalid parameter "<name>": <err>``."""
    return bad_data(f'invalid parameter "{parameter}": {message}')


@dataclass(frozen=True)
class Form:
    """``r.Form``: the form-encoded body's values first, then the URL query's (Go's ParseForm order)."""

    values: MultiDict[str]
    url: MultiDictProxy[str]

    def get(self, name: str) -> str:
        """``r.FormValue``: the first value, or ``""``."""
        return self.values.get(name, "")

    def getall(self, name: str) -> list[str]:
        return self.values.getall(name, [])

    def url_get(self, name: str) -> str:
        """``r.URL.Query().Get``: the URL's value only (targets and rules ignore the body)."""
        return self.url.get(name, "")


async def read_form(request: web.Request) -> Form:
    """Merge the URL query with an ``application/x-www-form-urlencoded`` (or multipart) body."""
    merged: MultiDict[str] = MultiDict()
    if request.method in ("POST", "PUT", "PATCH") and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        try:
            body = await request.post()
        except ValueError as exc:
            raise bad_data(f"error parsing form values: {exc}") from None
        for key, value in body.items():
            if isinstance(value, str):
                merged.add(key, value)
    merged.extend(request.query)
    return Form(merged, request.query)


# ---------------------------------------------------------------------------------------------
# Numbers with Go's syntax.

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:_\d+)*\.?(?:\d+(?:_\d+)*)?|\.\d+(?:_\d+)*)(?:[eE][+-]?\d+(?:_\d+)*)?")
_HEX = re.compile(r"[+-]?0[xX](?:_?[0-9a-fA-F]+)*\.?(?:[0-9a-fA-F]+(?:_?[0-9a-fA-F]+)*)?[pP][+-]?\d+")
_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf,
            "+infinity": math.inf, "-infinity": -math.inf, "nan": math.nan, "+nan": math.nan,
            "-nan": math.nan}  # fmt: skip


def go_parse_float(text: str) -> float | None:
    """``strconv.ParseFloat(s, 64)``; None where Go returns an error (syntax or out of range)."""
    special = _SPECIAL.get(text.lower())
    if special is not None:
        return special
    if _DECIMAL.fullmatch(text):
        if "_" in text:
            return None  # underscores are only allowed after a base prefix
        value = float(text)
    elif _HEX.fullmatch(text):
        try:
            value = float.fromhex(text.replace("_", ""))
        except OverflowError:
            return None
    else:
        return None
    return None if math.isinf(value) else value


def _go_int64(value: float) -> int:
    """Go's float64 to int64 conversion on amd64 (out of range gives the minimum int64)."""
    if value != value or value >= 2.0**63 or value < -(2.0**63):
        return INT64_MIN
    return int(value)


def _wrap64(value: int) -> int:
    return (value + (1 << 63)) % (1 << 64) - (1 << 63)


def _go_round(value: float) -> float:
    """``math.Round``: half away from zero."""
    return math.copysign(math.floor(abs(value) + 0.5), value)


# ---------------------------------------------------------------------------------------------
# Times.

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|[+-](\d{2}):(\d{2}))", re.ASCII
)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _parse_rfc3339(text: str) -> int | None:
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)):
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    frac = match.group(7) or ""
    ms = int((frac + "000")[:3])
    offset = 0
    if match.group(8) != "Z":
        oh, om = int(match.group(9)), int(match.group(10))
        if oh > 23 or om > 59:
            return None
        offset = (oh * 60 + om) * 60 * (1 if match.group(8)[0] == "+" else -1)
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset
    return seconds * 1000 + ms


def parse_time(text: str) -> int:
    """``parseTime``: unix seconds (fraction rounded to ms) or RFC3339; milliseconds since the epoch."""
    value = go_parse_float(text)
    if value is not None:
        if math.isfinite(value):
            whole = math.trunc(value)
            frac_ns = _go_int64(_go_round((value - whole) * 1000) / 1000 * 1e9)
        else:  # Go converts the infinite or NaN parts to the minimum int64
            whole, frac_ns = INT64_MIN, INT64_MIN
        total_ns = _go_int64(whole) * 1_000_000_000 + frac_ns
        return _wrap64(total_ns // 1_000_000)
    ms = _parse_rfc3339(text)
    if ms is not None:
        return ms
    if text == _MIN_TIME_TEXT:
        return MIN_TIME_MS
    if text == _MAX_TIME_TEXT:
        return MAX_TIME_MS
    raise ValueError(f"cannot parse {go_quote(text)} to a valid timestamp")


def time_param(form: Form, name: str, default: int) -> int:
    """``parseTimeParam``: the default when absent, else :func:`parse_time` with the param's error."""
    text = form.get(name)
    if text == "":
        return default
    try:
        return parse_time(text)
    except ValueError as exc:
        raise invalid_param(name, f"invalid time value for '{name}': {exc}") from None


def required_time(form: Form, name: str) -> int:
    """A time that must be given (``query_range``'s start and end)."""
    try:
        return parse_time(form.get(name))
    except ValueError as exc:
        raise invalid_param(name, str(exc)) from None


# ---------------------------------------------------------------------------------------------
# Durations, limits, matchers.


def parse_duration_ns(text: str) -> int:
    """``parseDuration``: float seconds or a Prometheus duration, as Go nanoseconds."""
    value = go_parse_float(text)
    if value is not None:
        ns = value * 1e9
        if ns > float(INT64_MAX) or ns < float(INT64_MIN):
            raise ValueError(f"cannot parse {go_quote(text)} to a valid duration. It overflows int64")
        return _go_int64(ns)
    try:
        return parse_duration_ms(text) * 1_000_000
    except ValueError:
        raise ValueError(f"cannot parse {go_quote(text)} to a valid duration") from None


def duration_param(form: Form, name: str) -> int | None:
    """An optional duration parameter in nanoseconds (None when absent)."""
    text = form.get(name)
    if text == "":
        return None
    try:
        return parse_duration_ns(text)
    except ValueError as exc:
        raise invalid_param(name, str(exc)) from None


def go_atoi(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text, re.ASCII):
        raise ValueError(f"strconv.Atoi: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"strconv.Atoi: parsing {go_quote(text)}: value out of range")
    return value


def limit_param(form: Form) -> int:
    """``parseLimitParam``: 0 (no limit) when absent; negative is an error."""
    text = form.get("limit")
    if text == "":
        return 0
    try:
        limit = go_atoi(text)
    except ValueError as exc:
        raise invalid_param("limit", str(exc)) from None
    if limit < 0:
        raise invalid_param("limit", "limit must be non-negative")
    return limit


def int_param(form: Form, name: str, message: str) -> int:
    """An integer parameter that defaults to -1 (``metadata``'s limits); ``message`` on bad input."""
    text = form.get(name)
    if text == "":
        return -1
    try:
        return go_atoi(text)
    except ValueError:
        raise bad_data(message) from None


def parse_selectors(texts: list[str]) -> list[list[Matcher]]:
    """``ParseMetricSelectors``: every selector, raising the first parse error."""
    return [parse_metric_selector(text) for text in texts]


def matchers_param(texts: list[str]) -> list[list[Matcher]]:
    """``parseMatchersParam``: selectors that each contain a matcher not matching the empty string."""
    try:
        sets = parse_selectors(texts)
    except ParseError as exc:
        raise bad_data(str(exc)) from None
    for matchers in sets:
        if all(m.matches("") for m in matchers):
            raise bad_data("match[] must contain at least one non-empty matcher")
    return sets
