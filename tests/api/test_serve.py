"""End to end: ``narthex serve`` over a data directory written beforehand through the TSDB appender."""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from narthex.tsdb import TSDBOptions, open_db
from tests.api.conftest import load
from tests.server.harness import ServerProcess

CONFIG = """\
global:
  evaluation_interval: 1s
  external_labels:
    dc: eu
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:1"]
"""
RULES = """\
groups:
  - name: g
    rules:
      - alert: AlwaysOn
        expr: vector(1) > 0
        labels: {severity: page}
"""


def _get(server: ServerProcess, path: str, **params: str) -> tuple[int, Any]:
    resp = server.request("GET", path + ("?" + urllib.parse.urlencode(params) if params else ""))
    is_json = resp.headers.get("Content-Type", "").startswith("application/json")
    return resp.status, json.loads(resp.body) if is_json else resp.body


def test_serve_answers_from_replayed_data(tmp_path: Path) -> None:
    now_ms = int(time.time() * 1000)
    t = np.arange(now_ms - 600_000, now_ms - 30_000, 15_000, dtype=np.int64)
    db = open_db(tmp_path / "data", TSDBOptions(background_compaction=False), CollectorRegistry())
    load(db, [({"__name__": "demo", "job": "x"}, t, np.arange(len(t), dtype=float))])
    db.close()
    (tmp_path / "prometheus.yml").write_text(CONFIG)
    (tmp_path / "rules.yml").write_text(RULES)
    server = ServerProcess(tmp_path, ["--web.enable-admin-api", "--query.lookback-delta=10m"]).start()
    try:
        status, body = _get(server, "/api/v1/query", query="demo", time=f"{t[-1] / 1000}")
        assert status == 200, (body, server.log())
        assert body["data"]["result"] == [
            {"metric": {"__name__": "demo", "job": "x"}, "value": [t[-1] / 1000, str(len(t) - 1)]}
        ], server.log()
        status, body = _get(server, "/federate", **{"match[]": "demo"})
        expected = f'# TYPE demo untyped\ndemo{{job="x",dc="eu",instance=""}} {len(t) - 1} {t[-1]}\n'
        assert (status, body) == (200, expected), server.log()
        status, body = _get(server, "/api/v1/status/flags")
        assert body["data"]["query.lookback-delta"] == "10m"
        resp = server.request("POST", "/api/v1/admin/tsdb/snapshot")
        name = json.loads(resp.body)["data"]["name"]
        assert (tmp_path / "data" / "snapshots" / name).is_dir()
        status, body = _get(server, "/api/v1/status/buildinfo")
        assert "features" not in body["data"]
        status, body = _get(server, "/api/v1/alertmanagers")
        assert body["data"]["activeAlertmanagers"] == [{"url": "http://127.0.0.1:1/api/v2/alerts"}]
        server.wait_until(lambda: _get(server, "/api/v1/alerts")[1]["data"]["alerts"], "an alert")
        status, body = _get(server, "/api/v1/rules", type="alert")
        [rule] = body["data"]["groups"][0]["rules"]
        assert (rule["name"], rule["state"], rule["alerts"][0]["value"]) == ("AlwaysOn", "firing", "1e+00")
    finally:
        server.stop()
