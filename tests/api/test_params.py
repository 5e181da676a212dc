"""Parameter parsing with Prometheus's rules: times, durations, limits, match[]."""

from __future__ import annotations

import pytest

from narthex.web.api.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    ApiError,
    go_parse_float,
    matchers_param,
    parse_duration_ns,
    parse_time,
)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("4", 4000),
        ("0", 0),
        ("1718003612.345", 1718003612345),
        ("1718003612.1234999", 1718003612123),  # the UI's JS floats: rounded to ms
        ("1718003612.123456789", 1718003612123),  # promtool's 9 decimals
        ("1718003612.9996", 1718003613000),
        ("-1.5", -1500),
        ("1e3", 1_000_000),
        ("1718000000000", 1718000000000000),  # Grafana's exemplar probe: ms sent as seconds
        ("0x10p0", 16000),
        ("2015-07-01T20:10:51.781Z", 1435781451781),
        ("2015-07-01T20:10:51Z", 1435781451000),
        ("2015-07-01T22:10:51.781123+02:00", 1435781451781),
        ("1970-01-01T00:00:00-00:30", 1_800_000),
        ("0001-01-01T00:00:00Z", -62135596800000),
        ("-292273086-05-16T16:47:06Z", MIN_TIME_MS),
        ("292277025-08-18T07:12:54.999999999Z", MAX_TIME_MS),
    ],
)
def test_parse_time(text: str, ms: int) -> None:
    assert parse_time(text) == ms


@pytest.mark.parametrize(
    "text", ["", "yesterday", "1_000", "2015-07-01 20:10:51Z", "2015-13-01T00:00:00Z", "2015-02-29T00:00:00Z",
             "2015-07-01T20:10:51", " 4", "1e400"],
)  # fmt: skip
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"^cannot parse .* to a valid timestamp$"):
        parse_time(text)


def test_min_max_time_defaults_match_prometheus() -> None:
    assert MIN_TIME_MS == -9223309901257974000
    assert MAX_TIME_MS == 9223309901257974999


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("15", 15 * 10**9),
        ("0.5", 5 * 10**8),
        ("1m0s", 60 * 10**9),
        ("1h0m0s", 3600 * 10**9),
        ("2m30s", 150 * 10**9),
        ("500ms", 5 * 10**8),
        ("1d", 86400 * 10**9),
        ("0", 0),
        ("-15", -15 * 10**9),
    ],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration_ns(text) == ns


def test_parse_duration_errors() -> None:
    with pytest.raises(ValueError, match=r'^cannot parse "1e10" to a valid duration. It overflows int64$'):
        parse_duration_ns("1e10")
    for text in ("", "1x", "m1", "1s1m", "1.5m"):
        with pytest.raises(ValueError, match=r"^cannot parse .* to a valid duration$"):
            parse_duration_ns(text)


def test_go_parse_float() -> None:
    assert go_parse_float("Inf") == float("inf")
    assert go_parse_float("-infinity") == float("-inf")
    assert go_parse_float(".5") == 0.5
    assert go_parse_float("5.") == 5.0
    assert go_parse_float("1_0") is None
    assert go_parse_float("0x1_0p0") == 16.0
    assert go_parse_float("1e309") is None
    assert go_parse_float("abc") is None


def test_matchers_param() -> None:
    sets = matchers_param(['{__name__!=""}', 'up{job="x"}'])
    assert [len(s) for s in sets] == [1, 2]
    with pytest.raises(ApiError, match="match\\[\\] must contain at least one non-empty matcher"):
        matchers_param(['{job=~".*"}'])
    with pytest.raises(ApiError) as info:
        matchers_param(["up{"])
    assert info.value.error_type == "bad_data"
    assert info.value.message.startswith("1:4: parse error")
