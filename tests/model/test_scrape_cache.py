"""The scrape cache fast path, content negotiation, body decoding and label limits."""

from __future__ import annotations

import gzip
import math
import zlib

import numpy as np
import pytest

from narthex.model.exposition import (
    NO_TIMESTAMP,
    NORMAL_NAN_BITS,
    BodySizeLimitError,
    ContentTypeError,
    Format,
    ScrapeCache,
    ScrapeError,
    accept_encoding_header,
    accept_header,
    check_label_limits,
    decode_body,
    select_format,
)
from narthex.model.labels import Labels

OM = Format.OPENMETRICS


class Registry:
    """A resolve callback that hands out refs and records what it saw."""

    def __init__(self, drop: set[str] | None = None) -> None:
        self.refs: dict[Labels, int] = {}
        self.calls: list[Labels] = []
        self.drop = drop or set()

    def __call__(self, labels: Labels) -> int | None:
        self.calls.append(labels)
        if dict(labels)["__name__"] in self.drop:
            return None
        return self.refs.setdefault(labels, len(self.refs))

    def ref(self, **kv: str) -> int:
        return self.refs[tuple(sorted(kv.items()))]


def samples(cache: ScrapeCache, reg: Registry, body: str, fmt: Format = Format.TEXT) -> dict[Labels, float]:
    res = cache.scrape(body.encode(), fmt)
    assert res.error is None, res.error
    by_ref = {v: k for k, v in reg.refs.items()}
    return {by_ref[int(r)]: float(v) for r, v in zip(res.refs, res.values, strict=True)}


BODY = """# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200",method="get"} 10
http_requests_total{code="500",method="get"} 2 1700000000000
# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="+Inf"} 3
h_sum 4.5
h_count 3
up 1
"""


def test_first_and_cached_scrape() -> None:
    reg = Registry()
    cache = ScrapeCache(reg)
    res = cache.scrape(BODY.encode())
    assert res.error is None
    assert (res.total, res.added, res.series_added, res.duplicates) == (7, 7, 7, 0)
    assert len(reg.calls) == 7
    assert (("__name__", "h_bucket"), ("le", "1.0")) in reg.refs  # le normalised like Prometheus
    assert res.timestamps is not None
    assert res.timestamps.tolist() == [NO_TIMESTAMP, 1700000000000] + [NO_TIMESTAMP] * 5
    assert res.values.tolist() == [10, 2, 1, 3, 4.5, 3, 1]

    res2 = cache.scrape(BODY.replace(" 10\n", " 11\n").encode())
    assert res2.error is None and res2.series_added == 0
    assert len(reg.calls) == 7  # no label parsing on cache hits
    assert res2.values.tolist() == [11, 2, 1, 3, 4.5, 3, 1]
    assert res2.refs.tolist() == res.refs.tolist()
    assert res2.refs.dtype == np.int64 and res2.values.dtype == np.float64
    assert len(cache) == 7


def test_metadata() -> None:
    reg = Registry()
    cache = ScrapeCache(reg)
    cache.scrape(BODY.encode())
    assert cache.metadata["http_requests_total"].type == "counter"
    assert cache.metadata["http_requests_total"].help == "Requests."
    assert cache.metadata["h"].type == "histogram"
    md = cache.get_metadata("h_bucket")
    assert md is not None and md.type == "histogram"
    cache.scrape(BODY.replace("Requests.", "Changed.").encode())
    assert cache.metadata["http_requests_total"].help == "Changed."
    om = ScrapeCache(Registry())
    om.scrape(b"# TYPE a_seconds gauge\n# UNIT a_seconds seconds\na_seconds 1\n# EOF\n", OM)
    assert (om.metadata["a_seconds"].type, om.metadata["a_seconds"].unit) == ("gauge", "seconds")


def test_dropped_series_are_cached_as_dropped() -> None:
    reg = Registry(drop={"up"})
    cache = ScrapeCache(reg)
    res = cache.scrape(BODY.encode())
    assert (res.total, res.added, res.series_added) == (7, 6, 6)
    assert len(res.refs) == 6
    cache.scrape(BODY.encode())
    assert len(reg.calls) == 7


def test_duplicates_are_counted_and_dropped() -> None:
    reg = Registry()
    cache = ScrapeCache(reg)
    res = cache.scrape(b"a 1\nb 2\na 3\na{} 4\n")
    assert res.error is None
    assert (res.total, res.added, res.duplicates) == (4, 4, 2)
    assert res.values.tolist() == [1, 2]  # the first sample of a series wins
    # With explicit timestamps the storage decides: not duplicates here.
    res = cache.scrape(b"a 1 1000\na 2 2000\n")
    assert (res.duplicates, res.values.tolist()) == (0, [1, 2])


def test_explicit_timestamps_and_honor_timestamps() -> None:
    reg = Registry()
    res = ScrapeCache(reg).scrape(b"a 1 1500\nb 2\n# EOF\n".replace(b"1500", b"1.5"), OM)
    assert res.timestamps is not None and res.timestamps.tolist() == [1500, NO_TIMESTAMP]
    cache = ScrapeCache(Registry(), honor_timestamps=False)
    res = cache.scrape(b"a 1 1500\na 2 2500\n")
    assert res.timestamps is None
    assert res.duplicates == 1


def test_timestamps_on_cached_lines() -> None:
    reg = Registry()
    cache = ScrapeCache(reg)
    cache.scrape(b'a{x="1"} 1 1000\n')
    res = cache.scrape(b'a{x="1"} 5 2000\n')
    assert len(reg.calls) == 1
    assert res.values.tolist() == [5] and res.timestamps is not None and res.timestamps.tolist() == [2000]
    res = cache.scrape(b'a{x="1"} 5 -2000\n')
    assert res.error is not None and "expected timestamp" in res.error


@pytest.mark.parametrize(
    ("body", "fmt", "message"),
    [
        ("a 1\nb{c=} 2\n", Format.TEXT, "line 2: expected label value"),
        ("a 1_000\n", Format.TEXT, "unsupported character"),
        ("a +nan\n", Format.TEXT, "invalid syntax"),
        ("a 1e999\n", Format.TEXT, "out of range"),
        ("a 1\n", OM, "does not end with # EOF"),
        ("a 1\n# EOF\na 2\n", OM, "unexpected data after # EOF"),
        ("a \t1\n# EOF\n", OM, "invalid syntax"),
        ('a{x="1",x="2"} 1\n', Format.TEXT, 'label name "x" is not unique'),
        ("a 0x1p3\n", Format.TEXT, "unsupported character"),
    ],
)
def test_errors_fail_the_scrape(body: str, fmt: Format, message: str) -> None:
    reg = Registry()
    cache = ScrapeCache(reg)
    # Warm the cache so the bad values go through the cached path too.
    cache.scrape(b"a 1\n# EOF\n" if fmt is OM else b"a 1\n", fmt)
    res = cache.scrape(body.encode(), fmt)
    assert res.error is not None and message in res.error, res.error
    assert len(res.refs) == 0 and len(res.values) == 0
    assert res.stale_refs.tolist() == [reg.ref(__name__="a")]


def test_values_special_and_nan_bits() -> None:
    cache = ScrapeCache(Registry())
    body = b"a NaN\nb +Inf\nc -Inf\nd nan\ne 1.5e3\n"
    for _ in range(2):  # first (scanned) and cached (bulk) paths
        res = cache.scrape(body)
        assert res.error is None
        assert math.isnan(res.values[0]) and math.isnan(res.values[3])
        assert res.values[1:3].tolist() == [math.inf, -math.inf] and res.values[4] == 1500
        assert int(res.values[:1].view(np.uint64)[0]) == NORMAL_NAN_BITS


def test_text_format_oddities_take_the_slow_path_correctly() -> None:
    reg = Registry()
    cache = ScrapeCache(reg)
    body = b'\n# random comment\n  a{b="c"}\t7  \n\na {b="d" e="f",} 8\n{"my.metric","x.y"="z"} 9\n'
    for _ in range(2):
        res = cache.scrape(body)
        assert res.error is None, res.error
        assert res.values.tolist() == [7, 8, 9]
    assert set(reg.refs) == {
        (("__name__", "a"), ("b", "c")),
        (("__name__", "a"), ("b", "d"), ("e", "f")),
        (("__name__", "my.metric"), ("x.y", "z")),
    }
    assert len(reg.calls) == 3


def test_openmetrics_exemplars_and_created() -> None:
    reg = Registry()
    cache = ScrapeCache(reg)
    body = b"""# TYPE a counter
a_total{x="1"} 3 # {trace_id="abc"} 1 1.5
a_created{x="1"} 1700000000
# EOF"""
    res = cache.scrape(body, OM)
    assert res.error is None
    ref = reg.ref(__name__="a_total", x="1")
    assert len(res.exemplars) == 1
    eref, ex = res.exemplars[0]
    assert eref == ref and ex.labels == (("trace_id", "abc"),) and ex.value == 1 and ex.timestamp_ms == 1500
    assert res.values.tolist() == [3, 1700000000]


def test_staleness_and_cache_sweep() -> None:
    reg = Registry()
    cache = ScrapeCache(reg)
    cache.scrape(b"a 1\nb 2\nc 3 1000\n")
    res = cache.scrape(b"a 1\nc 3 2000\n")
    assert res.stale_refs.tolist() == [reg.ref(__name__="b")]  # c has explicit timestamps: not tracked
    assert len(cache) == 2  # b was forgotten
    res = cache.scrape(b"a 1\nb 2\n")
    assert len(reg.calls) == 4  # b resolved again
    assert res.stale_refs.tolist() == []
    res = cache.scrape(b"")
    assert res.error is None and sorted(res.stale_refs.tolist()) == sorted(
        [reg.ref(__name__="a"), reg.ref(__name__="b")]
    )


def test_track_timestamps_staleness() -> None:
    reg = Registry()
    cache = ScrapeCache(reg, track_timestamps_staleness=True)
    cache.scrape(b"a 1 1000\n")
    assert cache.scrape(b"b 1\n").stale_refs.tolist() == [reg.ref(__name__="a")]


def test_sample_limit() -> None:
    cache = ScrapeCache(Registry(drop={"x"}), sample_limit=2)
    assert cache.scrape(b"a 1\nb 2\nx 3\n").error is None
    res = cache.scrape(b"a 1\nb 2\nc 3\n")
    assert res.error == "sample limit exceeded" and len(res.refs) == 0 and res.total == 3


def test_resolve_can_fail_the_scrape() -> None:
    def resolve(labels: Labels) -> int:
        msg = check_label_limits(labels, label_limit=2)
        if msg:
            raise ScrapeError(msg)
        return 1

    res = ScrapeCache(resolve).scrape(b'a{x="1",y="2"} 1\n')
    assert res.error is not None and res.error.startswith(
        "label_limit exceeded (metric: a, number of labels: 3"
    )


def test_invalid_utf8() -> None:
    cache = ScrapeCache(Registry())
    assert cache.scrape(b"# \xff\xfe comment\na 1\n").error is None
    res = cache.scrape(b'a{b="\xff"} 1\n')
    assert res.error is not None and "invalid UTF-8" in res.error


def test_format_switch_starts_afresh() -> None:
    reg = Registry()
    cache = ScrapeCache(reg)
    cache.scrape(b'a{x="1",} 1\n')
    res = cache.scrape(b'a{x="1",} 1\n# EOF\n', OM)
    assert res.error is None  # Prometheus's OpenMetrics parser allows the trailing comma too
    assert len(reg.calls) == 2


def test_many_series_grow_the_tables() -> None:
    reg = Registry()
    cache = ScrapeCache(reg)
    body = "".join(f'm{{i="{i}"}} {i}\n' for i in range(5000)).encode()
    res = cache.scrape(body)
    assert res.error is None and len(res.refs) == 5000
    res = cache.scrape(body)
    assert res.values.tolist() == list(range(5000)) and len(reg.calls) == 5000


# --- negotiation, decoding, limits -----------------------------------------------------------------------


def test_accept_header() -> None:
    assert accept_header() == (
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
        "application/openmetrics-text;version=0.0.1;q=0.5,"
        "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
        "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    )
    assert accept_header(["PrometheusText0.0.4"], "underscores") == "text/plain;version=0.0.4;q=0.6,*/*;q=0.5"
    assert accept_encoding_header(True) == "gzip" and accept_encoding_header(False) == "identity"


@pytest.mark.parametrize(
    ("content_type", "fallback", "fmt", "warns"),
    [
        ("text/plain; version=0.0.4; charset=utf-8", "", Format.TEXT, False),
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", "", OM, False),
        ("Text/Plain", "", Format.TEXT, False),
        ("", "PrometheusText0.0.4", Format.TEXT, True),
        ("application/json", "OpenMetricsText1.0.0", OM, True),
        ("text/plain;;", "PrometheusText1.0.0", Format.TEXT, True),
    ],
)
def test_select_format(content_type: str, fallback: str, fmt: Format, warns: bool) -> None:
    got, warning = select_format(content_type, fallback)
    assert got is fmt and (warning is not None) == warns


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("", "blank Content-Type and no fallback_scrape_protocol"),
        ("application/json", 'unsupported Content-Type "application/json"'),
        ("garbage", "cannot parse Content-Type"),
        ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily", "protobuf"),
    ],
)
def test_select_format_errors(content_type: str, message: str) -> None:
    with pytest.raises(ContentTypeError, match=message):
        select_format(content_type)


def test_decode_body() -> None:
    raw = b"a 1\n" * 1000
    assert decode_body(raw) == raw
    assert decode_body(gzip.compress(raw), "gzip") == raw
    assert decode_body(zlib.compress(raw), "deflate") == raw
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert decode_body(raw_deflate.compress(raw) + raw_deflate.flush(), "deflate") == raw
    with pytest.raises(BodySizeLimitError, match="body size limit exceeded"):
        decode_body(gzip.compress(raw), "gzip", limit=len(raw))
    assert decode_body(gzip.compress(raw), "gzip", limit=len(raw) + 1) == raw
    with pytest.raises(BodySizeLimitError):
        decode_body(raw, "", limit=10)
    with pytest.raises(zlib.error):
        decode_body(gzip.compress(raw)[:20], "gzip")
    with pytest.raises(ValueError, match="unsupported Content-Encoding"):
        decode_body(raw, "br")


def test_check_label_limits() -> None:
    labels = (("__name__", "metric"), ("a", "x" * 60), ("long_label_name", "v"))
    assert check_label_limits(labels) is None
    assert check_label_limits(labels, label_limit=2) == (
        "label_limit exceeded (metric: metric, number of labels: 3, limit: 2)"
    )
    msg = check_label_limits(labels, name_length_limit=10)
    assert msg is not None and msg.startswith(
        "label_name_length_limit exceeded (metric: metric, label name: long_label"
    )
    msg = check_label_limits(labels, value_length_limit=50)
    assert msg == (
        "label_value_length_limit exceeded (metric: metric, label name: a, value: "
        f'"{"x" * 50}", length: 60, limit: 50)'
    )
