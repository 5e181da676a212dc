"""One scrape at a time: samples, synthetic series, staleness markers, errors and limits."""

from __future__ import annotations

import numpy as np

from tests.scrape.helpers import is_stale, one, series

BODY = """# HELP a_total A counter.
# TYPE a_total counter
a_total 1
b{x="1"} 2
b{x="2"} 3
"""
T1, T2, T3 = 1_700_000_000.0, 1_700_000_001.0, 1_700_000_002.0


def value_at(db, name: str, **labels: str) -> float:
    _, _, v = one(db, __name__=name, **labels)
    return float(v[-1])


async def test_samples_and_synthetic_series(db, exporter, make_loop):
    exporter.set("/metrics", BODY)
    loop = make_loop(
        exporter.address,
        "    metric_relabel_configs:\n      - {source_labels: [x], regex: '2', action: drop}",
    )
    await loop.scrape_and_report(T1)
    await loop.scrape_and_report(T2)
    job = {"job": "test", "instance": exporter.address}
    assert value_at(db, "up", **job) == 1
    assert value_at(db, "scrape_samples_scraped", **job) == 3
    assert value_at(db, "scrape_samples_post_metric_relabeling", **job) == 2
    assert value_at(db, "scrape_series_added", **job) == 0
    _, t, v = one(db, __name__="scrape_series_added")
    assert list(v) == [2, 0] and list(t) == [T1 * 1000, T2 * 1000]
    assert 0 < value_at(db, "scrape_duration_seconds") < 1
    assert set(series(db, __name__="b")) == {
        (("__name__", "b"), ("instance", exporter.address), ("job", "test"), ("x", "1"))
    }
    assert loop.target.health == "up" and loop.target.last_error == ""
    assert loop.cache.metadata["a_total"].type == "counter"
    assert loop.cache.metadata["a_total"].help == "A counter."
    request = exporter.requests[-1]
    assert request.headers["Accept"].startswith("application/openmetrics-text;version=1.0.0")
    assert request.headers["Accept-Encoding"] == "gzip"
    assert request.headers["X-Prometheus-Scrape-Timeout-Seconds"] == "1"


async def test_extra_scrape_metrics(db, exporter, make_loop):
    exporter.set("/metrics", BODY)
    loop = make_loop(exporter.address, "    extra_scrape_metrics: true\n    sample_limit: 10")
    await loop.scrape_and_report(T1)
    assert value_at(db, "scrape_timeout_seconds") == 1
    assert value_at(db, "scrape_sample_limit") == 10
    assert value_at(db, "scrape_body_size_bytes") == len(BODY)


async def test_disappearing_series_gets_stale_marker(db, exporter, make_loop):
    exporter.set("/metrics", BODY)
    loop = make_loop(exporter.address)
    await loop.scrape_and_report(T1)
    exporter.set("/metrics", "a_total 2\n")
    await loop.scrape_and_report(T2)
    _, t, v = one(db, __name__="b", x="2")
    assert list(t) == [T1 * 1000, T2 * 1000]
    assert v[0] == 3 and is_stale(v[1:]).all()
    _, _, v = one(db, __name__="a_total")
    assert list(v) == [1, 2]


async def test_failed_scrape_marks_everything_stale(db, exporter, make_loop):
    exporter.set("/metrics", BODY)
    loop = make_loop(exporter.address)
    await loop.scrape_and_report(T1)
    exporter.routes.clear()
    await loop.scrape_and_report(T2)
    assert loop.target.health == "down"
    assert loop.target.last_error == "server returned HTTP status 404 Not Found"
    for name in ("a_total", "b"):
        for _, (t, v) in series(db, __name__=name).items():
            assert t[-1] == T2 * 1000 and is_stale(v[-1:]).all()
    assert value_at(db, "up") == 0
    assert value_at(db, "scrape_samples_scraped") == 0
    # Recovery: samples come back, no second stale marker.
    exporter.set("/metrics", BODY)
    await loop.scrape_and_report(T3)
    assert value_at(db, "up") == 1 and value_at(db, "a_total") == 1


async def test_timeout(db, exporter, make_loop):
    exporter.set("/metrics", BODY, delay_s=1.0)
    loop = make_loop(exporter.address, "    scrape_timeout: 100ms")
    await loop.scrape_and_report(T1)
    assert loop.target.last_error == f'Get "http://{exporter.address}/metrics": context deadline exceeded'
    assert value_at(db, "up") == 0


async def test_connection_refused(db, make_loop):
    loop = make_loop("127.0.0.1:1")
    await loop.scrape_and_report(T1)
    assert loop.target.last_error == (
        'Get "http://127.0.0.1:1/metrics": dial tcp 127.0.0.1:1: connect: connection refused'
    )
    assert value_at(db, "up", instance="127.0.0.1:1") == 0


async def test_garbage_fails_whole_scrape(db, exporter, make_loop):
    exporter.set("/metrics", "a_total 1\nthis is { garbage\n")
    loop = make_loop(exporter.address)
    await loop.scrape_and_report(T1)
    assert loop.target.health == "down" and loop.target.last_error
    assert series(db, __name__="a_total") == {}
    assert value_at(db, "up") == 0


async def test_body_size_limit(db, exporter, make_loop):
    exporter.set("/metrics", BODY)
    loop = make_loop(exporter.address, "    body_size_limit: 20B\n    extra_scrape_metrics: true")
    await loop.scrape_and_report(T1)
    assert loop.target.last_error == "body size limit exceeded"
    assert value_at(db, "scrape_body_size_bytes") == -1
    exporter.set("/metrics", BODY, gzip=True)
    await loop.scrape_and_report(T2)
    assert loop.target.last_error == "body size limit exceeded"


async def test_gzip_body(db, exporter, make_loop):
    exporter.set("/metrics", BODY, gzip=True)
    loop = make_loop(exporter.address)
    await loop.scrape_and_report(T1)
    assert loop.target.health == "up"
    assert value_at(db, "b", x="2") == 3


async def test_sample_limit(db, exporter, make_loop):
    exporter.set("/metrics", BODY)
    loop = make_loop(exporter.address, "    sample_limit: 2")
    await loop.scrape_and_report(T1)
    assert loop.target.last_error == "sample limit exceeded"
    assert value_at(db, "up") == 0
    assert value_at(db, "scrape_samples_scraped") == 3
    assert series(db, __name__="b") == {}
    assert loop.metrics.exceeded_sample_limit._value.get() == 1


async def test_label_limits(db, exporter, make_loop):
    exporter.set("/metrics", 'm{a="1",b="2"} 1\n')
    loop = make_loop(exporter.address, "    label_limit: 3")
    await loop.scrape_and_report(T1)
    assert loop.target.last_error == "label_limit exceeded (metric: m, number of labels: 5, limit: 3)"
    exporter.set("/metrics", 'm{a="123456"} 1\n')
    loop = make_loop(exporter.address, "    label_value_length_limit: 5")
    await loop.scrape_and_report(T1)
    assert loop.target.last_error.startswith("label_value_length_limit exceeded (metric: m, label name: a")
    exporter.set("/metrics", 'm{abcdefghi="1"} 1\n')
    loop = make_loop(exporter.address, "    label_name_length_limit: 8")
    await loop.scrape_and_report(T1)
    assert loop.target.last_error.startswith(
        "label_name_length_limit exceeded (metric: m, label name: abcdefghi"
    )


async def test_exported_labels(db, exporter, make_loop):
    exporter.set("/metrics", 'm{job="exposed",instance="i",exported_job="x"} 1\n')
    loop = make_loop(exporter.address)
    await loop.scrape_and_report(T1)
    labels, _, _ = one(db, __name__="m")
    assert dict(labels) == {
        "__name__": "m",
        "job": "test",
        "instance": exporter.address,
        "exported_instance": "i",
        "exported_job": "x",
        "exported_exported_job": "exposed",
    }


async def test_honor_labels(db, exporter, make_loop):
    exporter.set("/metrics", 'm{job="exposed"} 1\n')
    loop = make_loop(exporter.address, "    honor_labels: true")
    await loop.scrape_and_report(T1)
    labels, _, _ = one(db, __name__="m")
    assert dict(labels) == {"__name__": "m", "job": "exposed", "instance": exporter.address}
    # The synthetic series always carry the target's labels.
    assert dict(one(db, __name__="up")[0])["job"] == "test"


async def test_honor_timestamps(db, exporter, make_loop):
    exporter.set("/metrics", "m 1 1600000000000\n")
    loop = make_loop(exporter.address)
    await loop.scrape_and_report(T1)
    _, t, _ = one(db, __name__="m")
    assert list(t) == [1_600_000_000_000]
    loop = make_loop(exporter.address, "    honor_timestamps: false")
    exporter.set("/metrics", "n 1 1600000000000\n")
    await loop.scrape_and_report(T1)
    _, t, _ = one(db, __name__="n")
    assert list(t) == [T1 * 1000]


async def test_explicit_timestamps_get_no_stale_marker_unless_tracked(db, exporter, make_loop):
    exporter.set("/metrics", "m 1 1699999999000\n")
    loop = make_loop(exporter.address)
    await loop.scrape_and_report(T1)
    exporter.set("/metrics", "")
    await loop.scrape_and_report(T2)
    _, _, v = one(db, __name__="m")
    assert not is_stale(v).any()
    exporter.set("/metrics", "k 1 1699999999000\n")
    loop = make_loop(exporter.address, "    track_timestamps_staleness: true")
    await loop.scrape_and_report(T1)
    exporter.set("/metrics", "")
    await loop.scrape_and_report(T2)
    _, _, v = one(db, __name__="k")
    assert is_stale(v[-1:]).all()


async def test_params_scheme_path_and_auth(db, exporter, make_loop, tmp_path):
    password = tmp_path / "pw"
    password.write_text("secret\n")
    exporter.set("/probe", "m 1\n")
    extra = f"""    metrics_path: /probe
    params: {{module: [http_2xx], target: [a, b]}}
    basic_auth: {{username: user, password_file: {password}}}"""
    loop = make_loop(exporter.address, extra)
    assert loop.target.url == f"http://{exporter.address}/probe?module=http_2xx&target=a&target=b"
    await loop.scrape_and_report(T1)
    assert loop.target.health == "up", loop.target.last_error
    request = exporter.requests[-1]
    assert request.query.getall("target") == ["a", "b"]
    assert request.headers["Authorization"] == "Basic dXNlcjpzZWNyZXQ="
    labels = dict(loop.target.labels)
    assert labels["__param_module"] == "http_2xx"


async def test_bearer_token_file(db, exporter, make_loop, tmp_path):
    token = tmp_path / "token"
    token.write_text("tok")
    exporter.set("/metrics", "m 1\n")
    loop = make_loop(exporter.address, f"    authorization: {{credentials_file: {token}}}")
    await loop.scrape_and_report(T1)
    assert exporter.requests[-1].headers["Authorization"] == "Bearer tok"
    token.unlink()
    await loop.scrape_and_report(T2)
    assert loop.target.last_error.startswith(
        f'Get "http://{exporter.address}/metrics": unable to read authorization credentials file'
    )


async def test_openmetrics_and_duplicates(db, exporter, make_loop):
    exporter.set(
        "/metrics",
        "# TYPE m gauge\nm 1\nm 2\n# EOF\n",
        content_type="application/openmetrics-text; version=1.0.0",
    )
    loop = make_loop(exporter.address)
    await loop.scrape_and_report(T1)
    assert loop.target.health == "up"
    _, _, v = one(db, __name__="m")
    assert list(v) == [1]
    assert loop.metrics.sample_duplicate._value.get() == 1


async def test_out_of_order_counted(db, exporter, make_loop):
    exporter.set("/metrics", "m 1\n")
    loop = make_loop(exporter.address)
    await loop.scrape_and_report(T2)
    await loop.scrape_and_report(T1)
    assert loop.metrics.sample_out_of_order._value.get() >= 1
    _, t, _ = one(db, __name__="m")
    assert list(t) == [T2 * 1000]


async def test_stale_marker_bits(db, exporter, make_loop):
    exporter.set("/metrics", "m 1\n")
    loop = make_loop(exporter.address)
    await loop.scrape_and_report(T1)
    exporter.set("/metrics", "n 1\n")
    await loop.scrape_and_report(T2)
    _, _, v = one(db, __name__="m")
    assert np.asarray(v[-1:]).view(np.uint64)[0] == 0x7FF0000000000002


async def test_duplicate_label_names_fail_the_scrape(db, exporter, make_loop):
    exporter.set("/metrics", 'm{a="1",a="2"} 1\nok 1\n')
    loop = make_loop(exporter.address)
    await loop.scrape_and_report(T1)
    assert loop.target.health == "down"
    assert loop.target.last_error == 'line 1: label name "a" is not unique: invalid sample'
    assert series(db, __name__="ok") == {}


async def test_missing_metric_name_after_relabeling(db, exporter, make_loop):
    exporter.set("/metrics", "m 1\n")
    loop = make_loop(exporter.address, "    metric_relabel_configs: [{regex: __name__, action: labeldrop}]")
    await loop.scrape_and_report(T1)
    assert loop.target.last_error == "missing metric name (__name__ label)"


async def test_sample_limit_marks_previous_series_stale(db, exporter, make_loop):
    exporter.set("/metrics", "a 1\nb 1\n")
    loop = make_loop(exporter.address, "    sample_limit: 2")
    await loop.scrape_and_report(T1)
    exporter.set("/metrics", "a 1\nb 1\nc 1\n")
    await loop.scrape_and_report(T2)
    for name in ("a", "b"):
        _, t, v = one(db, __name__=name)
        assert list(t) == [T1 * 1000, T2 * 1000] and is_stale(v[1:]).all()
    assert series(db, __name__="c") == {}
