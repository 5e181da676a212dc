"""Error answers: Prometheus's status codes, errorType values and messages."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from narthex.promql.engine import Engine

TOO_MANY = (
    "exceeded maximum resolution of 11,000 points per timeseries. "
    "Try decreasing the query resolution (?step=XX)"
)
DUPLICATE = 'label_replace(label_replace(up, "instance", "", "", ""), "job", "", "", "")'


def error(status: int, error_type: str, message: str) -> tuple[int, dict[str, str]]:
    return status, {"status": "error", "errorType": error_type, "error": message}


@pytest.mark.parametrize(
    ("path", "params", "expected"),
    [
        ("/api/v1/query", {"query": "sum(up", "time": "1"},
         error(400, "bad_data", 'invalid parameter "query": 1:7: parse error: unclosed left parenthesis')),
        ("/api/v1/query", {"query": "up", "time": "soon"},
         error(400, "bad_data", "invalid parameter \"time\": invalid time value for 'time': "
                                'cannot parse "soon" to a valid timestamp')),
        ("/api/v1/query", {"query": "up", "limit": "-1"},
         error(400, "bad_data", 'invalid parameter "limit": limit must be non-negative')),
        ("/api/v1/query", {"query": "up", "limit": "x"},
         error(400, "bad_data", 'invalid parameter "limit": strconv.Atoi: parsing "x": invalid syntax')),
        ("/api/v1/query", {"query": "up", "timeout": "x"},
         error(400, "bad_data", 'invalid parameter "timeout": cannot parse "x" to a valid duration')),
        ("/api/v1/query", {"query": "up", "lookback_delta": "x"},
         error(400, "bad_data",
               'error parsing lookback delta duration: cannot parse "x" to a valid duration')),
        ("/api/v1/query_range", {"query": "up"},
         error(400, "bad_data", 'invalid parameter "start": cannot parse "" to a valid timestamp')),
        ("/api/v1/query_range", {"query": "up", "start": "0"},
         error(400, "bad_data", 'invalid parameter "end": cannot parse "" to a valid timestamp')),
        ("/api/v1/query_range", {"query": "up", "start": "0", "end": "1"},
         error(400, "bad_data", 'invalid parameter "step": cannot parse "" to a valid duration')),
        ("/api/v1/query_range", {"query": "up", "start": "10", "end": "1", "step": "1"},
         error(400, "bad_data", 'invalid parameter "end": end timestamp must not be before start time')),
        ("/api/v1/query_range", {"query": "up", "start": "0", "end": "1", "step": "-1"},
         error(400, "bad_data", 'invalid parameter "step": zero or negative query resolution step widths are '
                                "not accepted. Try a positive integer")),
        ("/api/v1/query_range", {"query": "up", "start": "0", "end": "11001", "step": "1"},
         error(400, "bad_data", TOO_MANY)),
        ("/api/v1/query_range", {"query": "up", "start": "0", "end": "110010", "step": "10s"},
         error(400, "bad_data", TOO_MANY)),
        ("/api/v1/query", {"query": DUPLICATE, "time": "100"},
         error(422, "execution", "vector cannot contain metrics with the same labelset")),
        ("/api/v1/series", {}, error(400, "bad_data", "no match[] parameter provided")),
        ("/api/v1/series", {"match[]": '{job=~".*"}'},
         error(400, "bad_data", 'invalid parameter "match[]": match[] must contain at least one non-empty '
                                "matcher")),
        ("/api/v1/labels", {"match[]": "up{"},
         error(400, "bad_data", "1:4: parse error: unexpected end of input inside braces")),
        ("/api/v1/label/%ff/values", {}, error(400, "bad_data", 'invalid label name: "\\xff"')),
        ("/api/v1/query_exemplars", {"query": "up", "start": "10", "end": "1"},
         error(400, "bad_data", "end timestamp must not be before start timestamp")),
        ("/api/v1/metadata", {"limit_per_metric": "x"},
         error(400, "bad_data", "limit_per_metric must be a number")),
        ("/api/v1/targets/metadata", {"limit": "x"}, error(400, "bad_data", "limit must be a number")),
        ("/api/v1/status/tsdb", {"limit": "0"}, error(400, "bad_data", "limit must be a positive number")),
        ("/api/v1/status/tsdb", {"limit": "10001"}, error(400, "bad_data", "limit must not exceed 10000")),
        ("/api/v1/rules", {"type": "x"},
         error(400, "bad_data", 'invalid parameter "type": not supported value "x"')),
        ("/api/v1/rules", {"group_next_token": "abc"},
         error(400, "bad_data", 'invalid parameter "group_next_token": group_limit needs to be present '
                                "in order to paginate over the groups")),
    ],
)  # fmt: skip
async def test_error_answers(api: Any, path: str, params: dict[str, str], expected: tuple[int, Any]) -> None:
    assert await api.get(path, **params) == expected


async def test_exactly_11000_points_is_allowed(api: Any) -> None:
    status, body = await api.get("/api/v1/query_range", query="1", start="0", end="11000", step="1")
    assert status == 200
    assert len(body["data"]["result"][0]["values"]) == 11001


async def test_timeout_is_503(api: Any) -> None:
    status, body = await api.get(
        "/api/v1/query", query="sum(rate(up[5m]))", time="3600", timeout="0.000000001"
    )
    assert (status, body["errorType"]) == (503, "timeout")
    assert body["error"].startswith("query timed out in ")


async def test_too_many_samples_is_422(api_factory: Any, db: Any) -> None:
    api = await api_factory(db, engine=Engine(max_samples=10))
    status, body = await api.get("/api/v1/query", query="up[1h]", time="3600")
    assert (status, body["errorType"]) == (422, "execution")
    assert body["error"] == "query processing would load too many samples into memory in query execution"


async def test_admin_apis_disabled(api: Any) -> None:
    for path in ("/api/v1/admin/tsdb/snapshot", "/api/v1/admin/tsdb/delete_series",
                 "/api/v1/admin/tsdb/clean_tombstones"):  # fmt: skip
        for method in ("POST", "PUT"):
            resp = await api.client.request(method, path, params={"match[]": "up"})
            assert resp.status == 500
            assert await resp.json() == {
                "status": "error",
                "errorType": "unavailable",
                "error": "admin APIs disabled",
            }


async def test_storage_not_ready_is_unavailable(api_factory: Any) -> None:
    api = await api_factory(None)
    status, body = await api.get("/api/v1/labels")
    assert (status, body["errorType"]) == (500, "unavailable")


async def test_not_ready_gate_is_plain_503(api: Any) -> None:
    from narthex.web.app import ReadyState

    api.handler.set_state(ReadyState.NOT_READY)
    resp = await api.client.get("/api/v1/query", params={"query": "1"})
    assert (resp.status, await resp.text()) == (503, "Service Unavailable")
    resp = await api.client.get("/api/v1/status/walreplay")
    assert resp.status == 200


async def test_expected_errors_log_no_traceback(api: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        await api.get("/api/v1/query", query="sum(")
        await api.get("/api/v1/query_range", query="up", start="0", end="99999", step="1")
        await api.get("/api/v1/query", query=DUPLICATE, time="100")
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/query", {"query": "up", "time": "1e20"}),
        ("/api/v1/query", {"query": "rate(up[5m])", "time": "1718000000000"}),
        ("/api/v1/query_range", {"query": "up", "start": "1e15", "end": "1.0000000001e15", "step": "1000"}),
        (
            "/api/v1/labels",
            {"start": "-292273086-05-16T16:47:06Z", "end": "292277025-08-18T07:12:54.999999999Z"},
        ),
        ("/api/v1/series", {"match[]": "up", "start": "-1e18", "end": "1e18"}),
        ("/api/v1/label/job/values", {"start": "NaN", "end": "Inf"}),
        ("/api/v1/query_exemplars", {"query": "up", "start": "-Inf"}),
    ],
)
async def test_odd_times_are_answered(api: Any, path: str, params: dict[str, str]) -> None:
    status, body = await api.get(path, **params)
    assert (status, body["status"]) == (200, "success")


async def test_storage_failure_is_internal_json(api_factory: Any) -> None:
    class Broken:
        def querier(self, mint: int, maxt: int) -> Any:
            raise OSError("disk on fire")

    api = await api_factory(Broken())
    status, body = await api.get("/api/v1/labels")
    assert (status, body) == (500, {"status": "error", "errorType": "internal", "error": "disk on fire"})
