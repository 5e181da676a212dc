"""``/federate``: upstream's federate_test.go scenarios on the same data (load 1m, now = 101 min)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from narthex.promql.value import STALE_NAN
from narthex.tsdb import TSDBOptions, open_db
from tests.api.conftest import load

MIN = 60_000


@pytest.fixture
def fed_db(tmp_path: Any) -> Any:
    db = open_db(tmp_path / "fed", TSDBOptions(background_compaction=False), CollectorRegistry())
    t = np.arange(101, dtype=np.int64) * MIN
    stale = np.concatenate([1 + 10 * np.arange(100.0), [STALE_NAN]])
    load(
        db,
        [
            ({"__name__": "test_metric1", "foo": "bar", "instance": "i"}, t, 100 * np.arange(101.0)),
            ({"__name__": "test_metric1", "foo": "boo", "instance": "i"}, t, np.ones(101)),
            ({"__name__": "test_metric2", "foo": "boo", "instance": "i"}, t, np.ones(101)),
            ({"__name__": "test_metric_without_labels"}, t, 1 + 10 * np.arange(101.0)),
            ({"__name__": "test_metric_stale"}, t, stale),
            ({"__name__": "test_metric_old"}, t[:99], 1 + 10 * np.arange(99.0)),
        ],
    )
    yield db
    db.close()


async def federate(api_factory: Any, db: Any, query: str, external: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None) -> Any:  # fmt: skip
    config = SimpleNamespace(global_config=SimpleNamespace(external_labels=external or {}))
    api = await api_factory(db, config=config, now_ms=lambda: 101 * MIN)
    return await api.client.get("/federate?" + query, headers=headers or {})


ALL = """\
# TYPE test_metric1 untyped
test_metric1{foo="bar",instance="i"} 10000 6000000
test_metric1{foo="boo",instance="i"} 1 6000000
# TYPE test_metric2 untyped
test_metric2{foo="boo",instance="i"} 1 6000000
# TYPE test_metric_old untyped
test_metric_old{instance=""} 981 5880000
# TYPE test_metric_without_labels untyped
test_metric_without_labels{instance=""} 1001 6000000
"""

OLD = '# TYPE test_metric_old untyped\ntest_metric_old{instance=""} 981 5880000\n'
BOO = (
    '# TYPE test_metric1 untyped\ntest_metric1{foo="boo",instance="i"} 1 6000000\n'
    '# TYPE test_metric2 untyped\ntest_metric2{foo="boo",instance="i"} 1 6000000\n'
)
SCENARIOS = [
    ("", 200, ""),
    ("match[]=does_not_match_anything", 200, ""),
    ("match[]=-not-a-valid-metric-name", 400, "1:1: parse error: unexpected <op:->\n"),
    ("match[]=not-a-valid-metric-name", 400, "1:4: parse error: unexpected <op:->\n"),
    ("match[]=test_metric1", 200, ALL.split("# TYPE test_metric2")[0]),
    ("match[]=test_metric_without_labels", 200,
     "# TYPE test_metric_without_labels untyped\ntest_metric_without_labels{instance=\"\"} 1001 6000000\n"),
    ("match[]=test_metric_stale", 200, ""),
    ("match[]=test_metric_old", 200, OLD),
    ("match[]={foo='boo'}", 200, BOO),
    ("match[]={__name__=~'test_metric1'}&match[]={foo='bar'}", 200, ALL.split("# TYPE test_metric2")[0]),
    ("match[]={__name__=~'.%2b'}", 200, ALL),
    ("match[]={foo='',__name__=~'.%2b'}", 200, ALL[ALL.index("# TYPE test_metric_old"):]),
]  # fmt: skip


@pytest.mark.parametrize(("query", "status", "body"), SCENARIOS)
async def test_federation(api_factory: Any, fed_db: Any, query: str, status: int, body: str) -> None:
    resp = await federate(api_factory, fed_db, query)
    assert (resp.status, await resp.text()) == (status, body)
    if status == 200:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")


async def test_external_labels_are_added_if_absent(api_factory: Any, fed_db: Any) -> None:
    resp = await federate(api_factory, fed_db, "match[]={__name__=~'.%2b'}", {"foo": "baz", "zone": "ie"})
    assert await resp.text() == (
        "# TYPE test_metric1 untyped\n"
        'test_metric1{foo="bar",instance="i",zone="ie"} 10000 6000000\n'
        'test_metric1{foo="boo",instance="i",zone="ie"} 1 6000000\n'
        "# TYPE test_metric2 untyped\n"
        'test_metric2{foo="boo",instance="i",zone="ie"} 1 6000000\n'
        "# TYPE test_metric_old untyped\n"
        'test_metric_old{foo="baz",instance="",zone="ie"} 981 5880000\n'
        "# TYPE test_metric_without_labels untyped\n"
        'test_metric_without_labels{foo="baz",instance="",zone="ie"} 1001 6000000\n'
    )


async def test_instance_as_external_label(api_factory: Any, fed_db: Any) -> None:
    resp = await federate(api_factory, fed_db, "match[]=test_metric_old", {"instance": "baz"})
    assert (
        await resp.text() == '# TYPE test_metric_old untyped\ntest_metric_old{instance="baz"} 981 5880000\n'
    )


async def test_openmetrics_when_accepted(api_factory: Any, fed_db: Any) -> None:
    accept = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2"
    resp = await federate(api_factory, fed_db, "match[]=test_metric2", headers={"Accept": accept})
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert await resp.text() == (
        '# TYPE test_metric2 unknown\ntest_metric2{foo="boo",instance="i"} 1.0 6000.0\n# EOF\n'
    )
    resp = await federate(api_factory, fed_db, "match[]=test_metric2", headers={"Accept": "text/plain"})
    assert resp.headers["Content-Type"].startswith("text/plain")


async def test_gzip(api_factory: Any, fed_db: Any) -> None:
    resp = await federate(api_factory, fed_db, "match[]=test_metric2", headers={"Accept-Encoding": "gzip"})
    assert resp.headers["Content-Encoding"] == "gzip"
    assert "test_metric2" in await resp.text()
