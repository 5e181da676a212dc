"""End to end: ``narthex serve`` scrapes its own /metrics; ``up`` lands in the TSDB."""

from __future__ import annotations

import json
import pathlib
import time

from narthex.model.matcher import Matcher, MatchType
from narthex.tsdb import TSDBOptions, open_db
from tests.server.harness import ServerProcess, free_port


def test_server_scrapes_itself(tmp_path: pathlib.Path) -> None:
    server = ServerProcess(tmp_path)
    server.port = free_port()
    server.config_path.write_text(
        f"""global:
  scrape_interval: 200ms
scrape_configs:
  - job_name: self
    static_configs: [{{targets: ["127.0.0.1:{server.port}"], labels: {{role: server}}}}]
  - job_name: nowhere
    static_configs: [{{targets: ["127.0.0.1:1"]}}]
"""
    )
    server.start()
    try:
        server.wait_until(
            lambda: (
                'prometheus_target_scrape_pool_targets{scrape_job="self"} 1.0'
                in server.request("GET", "/metrics").body
            ),
            "scrape pool",
        )
        server.wait_until(
            lambda: (
                "prometheus_target_interval_length_seconds_count" in server.request("GET", "/metrics").body
            ),
            "two scrapes",
        )
        time.sleep(0.3)
        targets = json.loads(server.request("GET", "/api/v1/targets").body)["data"]["activeTargets"]
        health = {t["scrapePool"]: (t["health"], t["lastError"]) for t in targets}
        assert health["self"] == ("up", "")
        assert health["nowhere"][0] == "down" and "connection refused" in health["nowhere"][1]
        metadata = json.loads(server.request("GET", "/api/v1/metadata?metric=narthex_build_info").body)
        assert metadata["data"]["narthex_build_info"][0]["type"] == "gauge"
    finally:
        server.stop()
    db = open_db(tmp_path / "data", TSDBOptions(background_compaction=False))
    try:
        q = db.querier(0, 2**62)
        found = {
            dict(s.labels)["job"]: s.values for s in q.select([Matcher(MatchType.EQUAL, "__name__", "up")])
        }
        q.close()
        assert found["self"][-1] == 1 and len(found["self"]) >= 2
        assert found["nowhere"][-1] == 0
        q = db.querier(0, 2**62)
        scraped = q.select(
            [
                Matcher(MatchType.EQUAL, "job", "self"),
                Matcher(MatchType.EQUAL, "__name__", "narthex_build_info"),
            ]
        )
        q.close()
        assert scraped and dict(scraped[0].labels)["role"] == "server"
    finally:
        db.close()
