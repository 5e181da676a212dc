"""The request sequences Grafana's Prometheus datasource sends, against the in-process API."""

from __future__ import annotations

from typing import Any

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_save_and_test_health_check(api: Any) -> None:
    # POST form body query=1%2B1&time=4, as pkg/promlib/healthcheck.go sends it.
    resp = await api.client.post("/api/v1/query", data="query=1%2B1&time=4", headers=FORM)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert await resp.read() == b'{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}'


async def test_health_check_with_charset_and_timeout(api: Any) -> None:
    resp = await api.client.post(
        "/api/v1/query",
        data="query=1%2B1&time=4&timeout=60s",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )
    assert resp.status == 200


async def test_buildinfo_has_no_features_key(api: Any) -> None:
    status, body = await api.get("/api/v1/status/buildinfo")
    assert status == 200
    assert sorted(body["data"]) == ["branch", "buildDate", "buildUser", "goVersion", "revision", "version"]
    assert all(isinstance(v, str) for v in body["data"].values())


async def test_range_query_form_body_with_go_duration_step(api: Any) -> None:
    body = "end=600&query=sum%28rate%28http_requests_total%5B1m0s%5D%29%29&start=300&step=1m0s"
    resp = await api.client.post("/api/v1/query_range", data=body, headers=FORM)
    assert resp.status == 200
    data = (await resp.json())["data"]
    assert data["resultType"] == "matrix"
    [series] = data["result"]
    assert series["metric"] == {}
    assert [p[0] for p in series["values"]] == [300, 360, 420, 480, 540, 600]
    assert all(isinstance(p[1], str) for p in series["values"])


async def test_instant_query_with_millisecond_time(api: Any) -> None:
    status, body = await api.post("/api/v1/query", {"query": "up", "time": "1800.3456"})
    assert status == 200
    assert [s["value"][0] for s in body["data"]["result"]] == [1800.346, 1800.346]


async def test_both_mode_sends_range_and_instant(api: Any) -> None:
    params = {"query": "up", "start": "0", "end": "3600", "step": "15"}
    status, body = await api.post("/api/v1/query_range", params)
    assert status == 200
    assert len(body["data"]["result"][0]["values"]) == 241
    status, body = await api.post("/api/v1/query", {"query": "up", "time": "3600"})
    assert body["data"]["resultType"] == "vector"


async def test_metric_browser_sequence(api: Any) -> None:
    status, body = await api.get("/api/v1/label/__name__/values", limit="40000", start="0", end="3600")
    assert body["data"] == ["http_requests_total", "odd_values", "up"]
    status, body = await api.get("/api/v1/labels", limit="40000", start="0", end="3600")
    assert body["data"] == ["__name__", "code", "instance", "job", "kind"]
    status, body = await api.get("/api/v1/metadata", limit="40000")
    assert (status, body) == (200, {"status": "success", "data": {}})
    selector = '{__name__="up",job=~"node|prometheus"}'
    status, body = await api.get("/api/v1/labels", **{"match[]": selector, "limit": "40000"})
    assert body["data"] == ["__name__", "instance", "job"]
    status, body = await api.get("/api/v1/label/instance/values", **{"match[]": selector})
    assert body["data"] == ["localhost:9090", "localhost:9100"]


async def test_series_endpoint_mode(api: Any) -> None:
    params = {"match[]": '{__name__!=""}', "limit": "40000", "start": "0", "end": "3600"}
    status, body = await api.post("/api/v1/series", params)
    assert status == 200
    assert len(body["data"]) == 7
    assert body["data"][0] == {"__name__": "http_requests_total", "code": "200", "job": "api"}
    assert "warnings" not in body


async def test_exemplar_probe_sends_milliseconds_as_seconds(api: Any) -> None:
    status, body = await api.get(
        "/api/v1/query_exemplars", query="test", start="1718000000000", end="1718001800000"
    )
    assert (status, body) == (200, {"status": "success", "data": []})


async def test_exemplar_toggle_without_selector_is_204(api: Any) -> None:
    status, body = await api.post("/api/v1/query_exemplars", {"query": "1+1", "start": "0", "end": "60"})
    assert (status, body) == (204, None)


async def test_post_with_params_only_in_url(api: Any) -> None:
    # Grafana's resource proxy (and prometheus-api-client's method="POST") put everything in the URL.
    _status, body = await api.post("/api/v1/labels", params={"match[]": "up"})
    assert body["data"] == ["__name__", "instance", "job"]
    _, body = await api.post("/api/v1/query", params={"query": "1", "time": "10"})
    assert body["data"]["result"] == [10, "1"]


async def test_body_and_url_merge_with_body_first(api: Any) -> None:
    resp = await api.client.post("/api/v1/query?time=20&query=2", data="query=3", headers=FORM)
    assert (await resp.json())["data"]["result"] == [20, "3"]


async def test_get_only_routes_answer_405_to_post(api: Any) -> None:
    for path in ("/api/v1/label/job/values", "/api/v1/metadata", "/api/v1/rules", "/api/v1/status/buildinfo",
                 "/api/v1/targets"):  # fmt: skip
        resp = await api.client.post(path, data="", headers=FORM)
        assert resp.status == 405, path
    resp = await api.client.get("/api/v1/nonexistent")
    assert resp.status == 404


async def test_rules_and_alerts_are_empty(api: Any) -> None:
    _status, body = await api.get("/api/v1/rules", file="x", rule_group="y", state="firing")
    assert body == {"status": "success", "data": {"groups": []}}
    _, body = await api.get("/api/v1/alerts")
    assert body == {"status": "success", "data": {"alerts": []}}


async def test_query_result_variable_and_utf8_label_values(api: Any) -> None:
    _, body = await api.get("/api/v1/query", query="count(up)", time="3600")
    assert body["data"]["result"][0]["value"] == [3600, "2"]
    # U__-escaped names (Grafana's utf8_support.ts): U__job is "job", U__a_2e_b is "a.b".
    _status, body = await api.get("/api/v1/label/U__job/values")
    assert body["data"] == ["api", "node", "prometheus"]
    _, body = await api.get("/api/v1/label/U__a_2e_b/values")
    assert body["data"] == []


async def test_gzip_when_accepted(api: Any) -> None:
    resp = await api.client.get(
        "/api/v1/query_range",
        params={"query": "up", "start": "0", "end": "3600", "step": "15"},
        headers={"Accept-Encoding": "gzip"},
    )
    assert resp.status == 200
    assert resp.headers["Content-Encoding"] == "gzip"
    assert (await resp.json())["status"] == "success"


async def test_cors_and_options(api: Any) -> None:
    resp = await api.client.options("/api/v1/query", headers={"Origin": "http://grafana"})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "http://grafana"
