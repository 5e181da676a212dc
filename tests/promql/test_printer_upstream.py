# ruff: noqa: E501
"""Printer cases from Prometheus's promql/parser/printer_test.go and prettier_test.go."""

from __future__ import annotations

import pytest

from narthex.promql.parser import ALL_FEATURES, parse_expr
from narthex.promql.printer import expr_string, format_expr

STRING_CASES = [
    ('sum by() (task:errors:rate10s{job="s"})', 'sum(task:errors:rate10s{job="s"})'),
    ('sum by(code) (task:errors:rate10s{job="s"})', 'sum by (code) (task:errors:rate10s{job="s"})'),
    ('sum without() (task:errors:rate10s{job="s"})', 'sum without () (task:errors:rate10s{job="s"})'),
    (
        'sum without(instance) (task:errors:rate10s{job="s"})',
        'sum without (instance) (task:errors:rate10s{job="s"})',
    ),
    ('sum by("foo.bar") (task:errors:rate10s{job="s"})', 'sum by ("foo.bar") (task:errors:rate10s{job="s"})'),
    (
        'sum without("foo.bar") (task:errors:rate10s{job="s"})',
        'sum without ("foo.bar") (task:errors:rate10s{job="s"})',
    ),
    ('topk(5, task:errors:rate10s{job="s"})', 'topk(5, task:errors:rate10s{job="s"})'),
    (
        'count_values("value", task:errors:rate10s{job="s"})',
        'count_values("value", task:errors:rate10s{job="s"})',
    ),
    ("a - on() c", "a - on () c"),
    ("a - on(b) c", "a - on (b) c"),
    ("a - on(b) group_left(x) c", "a - on (b) group_left (x) c"),
    ("a - on(b) group_left(x, y) c", "a - on (b) group_left (x, y) c"),
    ("a - on(b) group_left c", "a - on (b) group_left () c"),
    ("a - on(b) group_left() (c)", "a - on (b) group_left () (c)"),
    ("a - ignoring(b) c", "a - ignoring (b) c"),
    ("a - ignoring() c", "a - c"),
    ("a - ignoring() group_left c", "a - ignoring () group_left () c"),
    ("a + fill(-23) b", "a + fill (-23) b"),
    ("a + fill_left(-23) b", "a + fill_left (-23) b"),
    ("a + fill_right(42) b", "a + fill_right (42) b"),
    ("a + fill_left(-23) fill_right(42) b", "a + fill_left (-23) fill_right (42) b"),
    ("a + fill_left(5) fill_right(5) b", "a + fill (5) b"),
    ("a + on(b) group_left fill(-23) c", "a + on (b) group_left () fill (-23) c"),
    ("up > bool 0", "up > bool 0"),
    ("a offset 1m", "a offset 1m"),
    ("a offset -7m", "a offset -7m"),
    ('a{c="d"}[5m] offset 1m', 'a{c="d"}[5m] offset 1m'),
    ("a[5m] offset 1m", "a[5m] offset 1m"),
    ("a[12m] offset -3m", "a[12m] offset -3m"),
    ("a[1h:5m] offset 1m", "a[1h:5m] offset 1m"),
    ("a anchored", "a anchored"),
    ("a[5m] anchored", "a[5m] anchored"),
    ('a{b="c"}[5m] anchored', 'a{b="c"}[5m] anchored'),
    ('a{b="c"}[5m] anchored offset 1m', 'a{b="c"}[5m] anchored offset 1m'),
    ('a{b="c"}[5m] anchored @ start() offset 1m', 'a{b="c"}[5m] anchored @ start() offset 1m'),
    ("a smoothed", "a smoothed"),
    ("a[5m] smoothed", "a[5m] smoothed"),
    ('a{b="c"}[5m] smoothed', 'a{b="c"}[5m] smoothed'),
    ('a{b="c"}[5m] smoothed offset 1m', 'a{b="c"}[5m] smoothed offset 1m'),
    ('a{b="c"}[5m] smoothed @ start() offset 1m', 'a{b="c"}[5m] smoothed @ start() offset 1m'),
    ('{__name__="a"}', '{__name__="a"}'),
    ('a{b!="c"}[1m]', 'a{b!="c"}[1m]'),
    ('a{b=~"c"}[1m]', 'a{b=~"c"}[1m]'),
    ('a{b!~"c"}[1m]', 'a{b!~"c"}[1m]'),
    ("a @ 10", "a @ 10.000"),
    ("a[1m] @ 10", "a[1m] @ 10.000"),
    ("a @ start()", "a @ start()"),
    ("a @ end()", "a @ end()"),
    ("a[1m] @ start()", "a[1m] @ start()"),
    ("a[1m] @ end()", "a[1m] @ end()"),
    ('{__name__="",a="x"}', '{__name__="",a="x"}'),
    ('{"a.b"="c"}', '{"a.b"="c"}'),
    ('{"0"="1"}', '{"0"="1"}'),
    ('{"_0"="1"}', '{_0="1"}'),
    ('{""="0"}', '{""="0"}'),
    ('{``="0"}', '{""="0"}'),
    ("1048576", "1048576"),
    ("foo[step()]", "foo[step()]"),
    ("foo[-step()]", "foo[-step()]"),
    ("foo[(step())]", "foo[(step())]"),
    ("foo[-(step())]", "foo[-(step())]"),
    ("foo offset step()", "foo offset step()"),
    ("foo offset -step()", "foo offset -step()"),
    ("foo offset (step())", "foo offset (step())"),
    ("foo offset -(step())", "foo offset -(step())"),
    ("foo offset +(5)", "foo offset (5)"),
    ("foo offset -(5)", "foo offset -(5)"),
    ("foo offset (5)", "foo offset (5)"),
    ("foo offset (5m)", "foo offset (5m)"),
    ("foo[(5s)]", "foo[(5s)]"),
    ("foo[(5m):(1m)]", "foo[(5m):(1m)]"),
    ("foo offset +min_of(10s, 20s)", "foo offset min_of(10s, 20s)"),
    ("foo offset -min_of(10s, 20s)", "foo offset -min_of(10s, 20s)"),
    ("foo offset -min_of(10s, +max_of(step() ^ 2, 2))", "foo offset -min_of(10s, max_of(step() ^ 2, 2))"),
    ("foo[200-min_of(-step()^+step(),1)]", "foo[200 - min_of(-step() ^ step(), 1)]"),
    (
        "foo[200 - min_of(step() + 10s, -max_of(step() ^ 2, 3))]",
        "foo[200 - min_of(step() + 10s, -max_of(step() ^ 2, 3))]",
    ),
    ("foo[range()]", "foo[range()]"),
    ("foo[-range()]", "foo[-range()]"),
    ("foo offset range()", "foo offset range()"),
    ("foo offset -range()", "foo offset -range()"),
    ("foo[max_of(range(), 5s)]", "foo[max_of(range(), 5s)]"),
    ("predict_linear(foo[1h], 3000)", "predict_linear(foo[1h], 3000)"),
    ('sum by("üüü") (foo)', 'sum by ("üüü") (foo)'),
    ('sum without("äää") (foo)', 'sum without ("äää") (foo)'),
    ('count by("ööö", job) (foo)', 'count by ("ööö", job) (foo)'),
]

# (query, max line width, expected prettified text)
PRETTY_CASES = [
    ("sum(foo)", 10, "sum(foo)"),
    ('sum by() (task:errors:rate10s{job="s"})', 10, 'sum(\n  task:errors:rate10s{job="s"}\n)'),
    (
        'sum without(job,foo) (task:errors:rate10s{job="s"})',
        10,
        'sum without (job, foo) (\n  task:errors:rate10s{job="s"}\n)',
    ),
    (
        'sum(task:errors:rate10s{job="s"}) without(job,foo)',
        10,
        'sum without (job, foo) (\n  task:errors:rate10s{job="s"}\n)',
    ),
    (
        'sum by(job,foo) (task:errors:rate10s{job="s"})',
        10,
        'sum by (job, foo) (\n  task:errors:rate10s{job="s"}\n)',
    ),
    (
        'sum (task:errors:rate10s{job="s"}) by(job,foo)',
        10,
        'sum by (job, foo) (\n  task:errors:rate10s{job="s"}\n)',
    ),
    ('topk(10, ask:errors:rate10s{job="s"})', 10, 'topk(\n  10,\n  ask:errors:rate10s{job="s"}\n)'),
    (
        'sum by(job,foo) (sum by(job,foo) (task:errors:rate10s{job="s"}))',
        10,
        'sum by (job, foo) (\n  sum by (job, foo) (\n    task:errors:rate10s{job="s"}\n  )\n)',
    ),
    (
        'sum by(job,foo) (sum by(job,foo) (sum by(job,foo) (task:errors:rate10s{job="s"})))',
        10,
        'sum by (job, foo) (\n  sum by (job, foo) (\n    sum by (job, foo) (\n      task:errors:rate10s{job="s"}\n    )\n  )\n)',
    ),
    (
        'sum by(job,foo)\n(sum by(job,foo) (task:errors:rate10s{job="s"}))',
        10,
        'sum by (job, foo) (\n  sum by (job, foo) (\n    task:errors:rate10s{job="s"}\n  )\n)',
    ),
    (
        'sum by(job,foo)\n(sum(task:errors:rate10s{job="s"}) without(job,foo))',
        10,
        'sum by (job, foo) (\n  sum without (job, foo) (\n    task:errors:rate10s{job="s"}\n  )\n)',
    ),
    (
        'sum by(job,foo) # Comment 1.\n(sum by(job,foo) ( # Comment 2.\ntask:errors:rate10s{job="s"}))',
        10,
        'sum by (job, foo) (\n  sum by (job, foo) (\n    task:errors:rate10s{job="s"}\n  )\n)',
    ),
    ("a+b", 10, "a + b"),
    ("a == bool 1", 10, "  a\n== bool\n  1"),
    ("a + ignoring(job) b", 10, "  a\n+ ignoring (job)\n  b"),
    ("foo_1 + foo_2", 10, "  foo_1\n+\n  foo_2"),
    ("foo_1 + foo_2 + foo_3", 10, "    foo_1\n  +\n    foo_2\n+\n  foo_3"),
    ("foo + baar + foo_3", 10, "  foo + baar\n+\n  foo_3"),
    ("foo_1 + foo_2 + foo_3 + foo_4", 10, "      foo_1\n    +\n      foo_2\n  +\n    foo_3\n+\n  foo_4"),
    (
        "foo_1 + ignoring(foo) foo_2 + ignoring(job) group_left foo_3 + on(instance) group_right foo_4",
        10,
        "      foo_1\n    + ignoring (foo)\n      foo_2\n  + ignoring (job) group_left ()\n    foo_3\n+ on (instance) group_right ()\n  foo_4",
    ),
    ("rate(foo[1m])", 10, "rate(\n  foo[1m]\n)"),
    ("sum_over_time(foo[1m])", 10, "sum_over_time(\n  foo[1m]\n)"),
    (
        "rate(long_vector_selector[10m:1m] @ start() offset 1m)",
        10,
        "rate(\n  long_vector_selector[10m:1m] @ start() offset 1m\n)",
    ),
    (
        "histogram_quantile(0.9, rate(foo[1m]))",
        10,
        "histogram_quantile(\n  0.9,\n  rate(\n    foo[1m]\n  )\n)",
    ),
    (
        "max_over_time(rate(demo_api_request_duration_seconds_count[1m])[1m:] @ start() offset 1m)",
        10,
        "max_over_time(\n  rate(\n    demo_api_request_duration_seconds_count[1m]\n  )[1m:] @ start() offset 1m\n)",
    ),
    (
        'label_replace(up{job="api-server",service="a:c"}, "foo", "$1", "service", "(.*):.*")',
        10,
        'label_replace(\n  up{job="api-server",service="a:c"},\n  "foo",\n  "$1",\n  "service",\n  "(.*):.*"\n)',
    ),
    (
        'label_replace(label_replace(up{job="api-server",service="a:c"}, "foo", "$1", "service", "(.*):.*"), "foo", "$1", "service", "(.*):.*")',
        10,
        'label_replace(\n  label_replace(\n    up{job="api-server",service="a:c"},\n    "foo",\n    "$1",\n    "service",\n    "(.*):.*"\n  ),\n  "foo",\n  "$1",\n  "service",\n  "(.*):.*"\n)',
    ),
    ("(foo)", 10, "(foo)"),
    ("(_foo_long_)", 10, "(\n  _foo_long_\n)"),
    ("((foo_long))", 10, "(\n  (foo_long)\n)"),
    ("((_foo_long_))", 10, "(\n  (\n    _foo_long_\n  )\n)"),
    ("(((foo_long)))", 10, "(\n  (\n    (foo_long)\n  )\n)"),
    ("a @ 1", 10, "a @ 1.000"),
    ("a @ start()", 10, "a @ start()"),
    ("vector_selector @ start()", 10, "vector_selector @ start()"),
    ("(1 + 2)", 10, "(1 + 2)"),
    ("(foo + bar)", 10, "(\n  foo + bar\n)"),
    ("(foo_long + bar_long)", 10, "(\n    foo_long\n  +\n    bar_long\n)"),
    (
        "(foo_long + bar_long + bar_2_long)",
        10,
        "(\n      foo_long\n    +\n      bar_long\n  +\n    bar_2_long\n)",
    ),
    (
        "((foo_long + bar_long) + bar_2_long)",
        10,
        "(\n    (\n        foo_long\n      +\n        bar_long\n    )\n  +\n    bar_2_long\n)",
    ),
    ("(1111 + 2222)", 10, "(\n    1111\n  +\n    2222\n)"),
    ("(sum_over_time(foo[1m]))", 10, "(\n  sum_over_time(\n    foo[1m]\n  )\n)"),
    (
        "histogram_quantile(0.9, rate(foo[1m] @ start()))",
        10,
        "histogram_quantile(\n  0.9,\n  rate(\n    foo[1m] @ start()\n  )\n)",
    ),
    (
        '(label_replace(up{job="api-server",service="a:c"}, "foo", "$1", "service", "(.*):.*"))',
        10,
        '(\n  label_replace(\n    up{job="api-server",service="a:c"},\n    "foo",\n    "$1",\n    "service",\n    "(.*):.*"\n  )\n)',
    ),
    (
        '(label_replace(label_replace(up{job="api-server",service="a:c"}, "foo", "$1", "service", "(.*):.*"), "foo", "$1", "service", "(.*):.*"))',
        10,
        '(\n  label_replace(\n    label_replace(\n      up{job="api-server",service="a:c"},\n      "foo",\n      "$1",\n      "service",\n      "(.*):.*"\n    ),\n    "foo",\n    "$1",\n    "service",\n    "(.*):.*"\n  )\n)',
    ),
    (
        '(label_replace(label_replace((up{job="api-server",service="a:c"}), "foo", "$1", "service", "(.*):.*"), "foo", "$1", "service", "(.*):.*"))',
        10,
        '(\n  label_replace(\n    label_replace(\n      (\n        up{job="api-server",service="a:c"}\n      ),\n      "foo",\n      "$1",\n      "service",\n      "(.*):.*"\n    ),\n    "foo",\n    "$1",\n    "service",\n    "(.*):.*"\n  )\n)',
    ),
    (
        '(node_filesystem_avail_bytes{job="node",fstype!=""} / node_filesystem_size_bytes{job="node",fstype!=""} * 100 < 40 and predict_linear(node_filesystem_avail_bytes{job="node",fstype!=""}[6h], 24*60*60) < 0 and node_filesystem_readonly{job="node",fstype!=""} == 0)',
        10,
        '(\n            node_filesystem_avail_bytes{fstype!="",job="node"}\n          /\n            node_filesystem_size_bytes{fstype!="",job="node"}\n        *\n          100\n      <\n        40\n    and\n        predict_linear(\n          node_filesystem_avail_bytes{fstype!="",job="node"}[6h],\n            24 * 60\n          *\n            60\n        )\n      <\n        0\n  and\n      node_filesystem_readonly{fstype!="",job="node"}\n    ==\n      0\n)',
    ),
    (
        '(node_filesystem_avail_bytes{job="node",fstype!=""} / node_filesystem_size_bytes{job="node",fstype!=""} * 100 < 20 and predict_linear(node_filesystem_avail_bytes{job="node",fstype!=""}[6h], 4*60*60) < 0 and node_filesystem_readonly{job="node",fstype!=""} == 0)',
        10,
        '(\n            node_filesystem_avail_bytes{fstype!="",job="node"}\n          /\n            node_filesystem_size_bytes{fstype!="",job="node"}\n        *\n          100\n      <\n        20\n    and\n        predict_linear(\n          node_filesystem_avail_bytes{fstype!="",job="node"}[6h],\n            4 * 60\n          *\n            60\n        )\n      <\n        0\n  and\n      node_filesystem_readonly{fstype!="",job="node"}\n    ==\n      0\n)',
    ),
    (
        "(node_timex_offset_seconds > 0.05 and deriv(node_timex_offset_seconds[5m]) >= 0) or (node_timex_offset_seconds < -0.05 and deriv(node_timex_offset_seconds[5m]) <= 0)",
        10,
        "  (\n        node_timex_offset_seconds\n      >\n        0.05\n    and\n        deriv(\n          node_timex_offset_seconds[5m]\n        )\n      >=\n        0\n  )\nor\n  (\n        node_timex_offset_seconds\n      <\n        -0.05\n    and\n        deriv(\n          node_timex_offset_seconds[5m]\n        )\n      <=\n        0\n  )",
    ),
    (
        '1 - ((node_memory_MemAvailable_bytes{job="node"} or (node_memory_Buffers_bytes{job="node"} + node_memory_Cached_bytes{job="node"} + node_memory_MemFree_bytes{job="node"} + node_memory_Slab_bytes{job="node"}) ) / node_memory_MemTotal_bytes{job="node"})',
        10,
        '  1\n-\n  (\n      (\n          node_memory_MemAvailable_bytes{job="node"}\n        or\n          (\n                  node_memory_Buffers_bytes{job="node"}\n                +\n                  node_memory_Cached_bytes{job="node"}\n              +\n                node_memory_MemFree_bytes{job="node"}\n            +\n              node_memory_Slab_bytes{job="node"}\n          )\n      )\n    /\n      node_memory_MemTotal_bytes{job="node"}\n  )',
    ),
    (
        'min by (job, integration) (rate(alertmanager_notifications_failed_total{job="alertmanager", integration=~".*"}[5m]) / rate(alertmanager_notifications_total{job="alertmanager", integration="~.*"}[5m])) > 0.01',
        10,
        '  min by (job, integration) (\n      rate(\n        alertmanager_notifications_failed_total{integration=~".*",job="alertmanager"}[5m]\n      )\n    /\n      rate(\n        alertmanager_notifications_total{integration="~.*",job="alertmanager"}[5m]\n      )\n  )\n>\n  0.01',
    ),
    (
        '(count by (job) (changes(process_start_time_seconds{job="alertmanager"}[10m]) > 4) / count by (job) (up{job="alertmanager"})) >= 0.5',
        10,
        '  (\n      count by (job) (\n          changes(\n            process_start_time_seconds{job="alertmanager"}[10m]\n          )\n        >\n          4\n      )\n    /\n      count by (job) (\n        up{job="alertmanager"}\n      )\n  )\n>=\n  0.5',
    ),
    ("-1", 10, "-1"),
    ("-vector_selector", 10, "-vector_selector"),
    ("(-vector_selector)", 10, "(\n  -vector_selector\n)"),
    (
        "-histogram_quantile(0.9,rate(foo[1m]))",
        10,
        "-histogram_quantile(\n  0.9,\n  rate(\n    foo[1m]\n  )\n)",
    ),
    (
        "-histogram_quantile(0.99, sum by (le) (rate(foo[1m])))",
        10,
        "-histogram_quantile(\n  0.99,\n  sum by (le) (\n    rate(\n      foo[1m]\n    )\n  )\n)",
    ),
    (
        "-histogram_quantile(0.9, -rate(foo[1m] @ start()))",
        10,
        "-histogram_quantile(\n  0.9,\n  -rate(\n    foo[1m] @ start()\n  )\n)",
    ),
    (
        "(-histogram_quantile(0.9, -rate(foo[1m] @ start())))",
        10,
        "(\n  -histogram_quantile(\n    0.9,\n    -rate(\n      foo[1m] @ start()\n    )\n  )\n)",
    ),
    ("rate(foo[2*1h])", 10, "rate(\n  foo[2 * 1h]\n)"),
    ("rate(foo[2*1h])", 10, "rate(\n  foo[2 * 1h]\n)"),
    ("rate(foo[-5m+35m])", 10, "rate(\n  foo[-5m + 35m]\n)"),
]


@pytest.mark.parametrize(("query", "expected"), STRING_CASES)
def test_upstream_string(query: str, expected: str) -> None:
    assert expr_string(parse_expr(query, features=ALL_FEATURES)) == expected


@pytest.mark.parametrize(("query", "width", "expected"), PRETTY_CASES)
def test_upstream_prettify(query: str, width: int, expected: str) -> None:
    expr = parse_expr(query, features=ALL_FEATURES)
    assert format_expr(expr, max_width=width) == expected
    assert expr_string(parse_expr(expected, features=ALL_FEATURES)) == expr_string(expr)
