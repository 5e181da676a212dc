"""The composition root wires one PromQL engine, bounded by --query.max-concurrency, into the API and
the rule manager, as Prometheus shares its engine."""

from __future__ import annotations

from narthex.server.options import build_options, serve_flagset
from narthex.server.server import Server
from narthex.web.webconfig import WebConfig


def test_api_and_rules_share_one_engine_and_its_limit(tmp_path):
    values, _, explicit = serve_flagset().parse(
        ["--query.max-concurrency=3", "--query.timeout=30s", f"--storage.tsdb.path={tmp_path}"]
    )
    server = Server(build_options(values, explicit), WebConfig())
    assert server.rule_manager.engine is server.engine
    assert server.engine.gate is not None and server.engine.gate.max_concurrency == 3
    assert server.engine.timeout_s == 30
