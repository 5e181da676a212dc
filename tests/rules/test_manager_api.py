"""The rule manager as a server component (config, reload) and the /api/v1/rules and /alerts payloads."""

from __future__ import annotations

import asyncio

import pytest

from narthex.config import load_config
from narthex.rules.api import (
    RulesParamError,
    alerts_payload,
    format_time_ms,
    format_value,
    next_token,
    rules_payload,
)
from narthex.rules.appendable import MemoryRuleStorage
from narthex.rules.manager import (
    ManagerOptions,
    RuleLoadError,
    RuleManager,
    generator_url,
    to_notifier_alerts,
)

RULES = """
groups:
  - name: recs
    interval: 1m
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
  - name: alerts
    limit: 10
    rules:
      - alert: Down
        expr: up == 0
        for: 5m
        labels: {severity: page}
        annotations: {summary: "{{ $labels.job }} down"}
"""


def _write_config(tmp_path, rules_text: str, extra: str = "") -> str:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.yml").write_text(rules_text)
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(f"global:\n  evaluation_interval: 30s\n{extra}rule_files:\n  - {tmp_path}/rules/*.yml\n")
    return str(cfg)


def _manager():
    storage = MemoryRuleStorage()
    for t in range(0, 600_000, 15_000):
        storage.storage.add((("__name__", "up"), ("job", "a")), t, 0.0)
    return RuleManager(storage, ManagerOptions(external_url="http://prom:9090")), storage


async def test_apply_config_loads_groups(tmp_path):
    manager, _ = _manager()
    await manager.apply_config(load_config(_write_config(tmp_path, RULES)))
    groups = manager.rule_groups()
    assert [(g.name, g.interval_ms, g.limit) for g in groups] == [("alerts", 30_000, 10), ("recs", 60_000, 0)]
    assert groups[0].key == f"{tmp_path}/rules/r.yml;alerts"
    assert manager.metrics.group_rules.labels(groups[0].key)._value.get() == 1


async def test_bad_rules_keep_previous_set(tmp_path):
    manager, _ = _manager()
    cfg = _write_config(tmp_path, RULES)
    await manager.apply_config(load_config(cfg))
    (tmp_path / "rules" / "r.yml").write_text(
        "groups:\n- name: x\n  rules:\n  - record: a\n    expr: rate(\n"
    )
    with pytest.raises(RuleLoadError):
        await manager.apply_config(load_config(cfg))
    assert len(manager.groups) == 2


async def test_reload_keeps_alert_state_of_unchanged_rules(tmp_path):
    manager, _ = _manager()
    cfg = _write_config(tmp_path, RULES)
    await manager.apply_config(load_config(cfg))
    alerts_group = manager.rule_groups()[0]
    alerts_group.run_iteration(300_000)
    rule = alerts_group.rules[0]
    assert [str(a.state) for a in rule.active.values()] == ["pending"]
    # Unchanged file: the very same group object stays.
    await manager.apply_config(load_config(cfg))
    assert manager.rule_groups()[0] is alerts_group
    # A changed group takes over the alerts of rules with the same name and labels.
    (tmp_path / "rules" / "r.yml").write_text(RULES.replace("for: 5m", "for: 10m"))
    await manager.apply_config(load_config(cfg))
    new_group = manager.rule_groups()[0]
    assert new_group is not alerts_group
    assert [a.active_at for a in new_group.rules[0].active.values()] == [300_000]


async def test_started_manager_runs_and_stops_groups(tmp_path):
    manager, _ = _manager()
    rules = "groups:\n- name: fast\n  interval: 100ms\n  rules:\n  - record: r\n    expr: vector(1)\n"
    await manager.apply_config(load_config(_write_config(tmp_path, rules)))
    await manager.start()
    await asyncio.sleep(0.5)
    await manager.stop()
    (group,) = manager.rule_groups()
    assert manager.metrics.iterations_scheduled.labels(group.key)._value.get() >= 2
    assert group.last_evaluation_s > 0
    assert group.rules[0].health == "ok"


async def test_payloads(tmp_path):
    manager, _ = _manager()
    await manager.apply_config(load_config(_write_config(tmp_path, RULES)))
    for g in manager.rule_groups():
        g.run_iteration(300_000)
    data = rules_payload(manager, {})
    assert [g["name"] for g in data["groups"]] == ["alerts", "recs"]
    alert_rule = data["groups"][0]["rules"][0]
    assert alert_rule["type"] == "alerting" and alert_rule["state"] == "pending"
    assert alert_rule["duration"] == 300 and alert_rule["keepFiringFor"] == 0
    assert alert_rule["health"] == "ok" and "lastError" not in alert_rule
    (alert,) = alert_rule["alerts"]
    assert alert == {
        "labels": {"alertname": "Down", "job": "a", "severity": "page"},
        "annotations": {"summary": "a down"},
        "state": "pending",
        "activeAt": "1970-01-01T00:05:00Z",
        "value": "0e+00",
    }
    assert alerts_payload(manager) == {"alerts": [alert]}
    assert rules_payload(manager, {"type": "record"})["groups"][0]["name"] == "recs"
    assert (
        rules_payload(manager, {"type": "alert", "exclude_alerts": "true"})["groups"][0]["rules"][0]["alerts"]
        is None
    )
    assert rules_payload(manager, {"rule_name[]": ["nothing"]}) == {"groups": []}
    assert len(rules_payload(manager, {"match[]": ['{severity="page"}']})["groups"]) == 1
    assert rules_payload(manager, {"rule_group[]": ["recs"]})["groups"][0]["rules"][0]["query"] == (
        "sum by (job) (up)"
    )
    page = rules_payload(manager, {"group_limit": "1"})
    assert len(page["groups"]) == 1 and page["groupNextToken"] == next_token(
        f"{tmp_path}/rules/r.yml", "recs"
    )
    rest = rules_payload(manager, {"group_limit": "1", "group_next_token": page["groupNextToken"]})
    assert [g["name"] for g in rest["groups"]] == ["recs"]
    for bad in (
        {"type": "x"},
        {"exclude_alerts": "maybe"},
        {"group_next_token": "x"},
        {"match[]": ['{a=""}']},
    ):
        with pytest.raises(RulesParamError):
            rules_payload(manager, bad)


def test_value_and_time_formats():
    assert format_value(1.0) == "1e+00"
    assert format_value(1234.5) == "1.2345e+03"
    assert format_value(0.00015) == "1.5e-04"
    assert format_value(float("nan")) == "NaN"
    assert format_value(float("-inf")) == "-Inf"
    assert format_time_ms(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"
    assert format_time_ms(0) == "0001-01-01T00:00:00Z"


def test_notifier_alerts_from_rule_alerts():
    from narthex.rules.alerting import Alert, AlertState

    firing = Alert((("alertname", "A"),), (), AlertState.FIRING, 1.0, 0, fired_at=60_000, valid_until=300_000)
    resolved = Alert(
        (("alertname", "B"),), (), AlertState.INACTIVE, 1.0, 0, fired_at=60_000, resolved_at=120_000
    )
    a, b = to_notifier_alerts([firing, resolved], 'up{job="x"} == 0', "http://p:9090")
    assert (a.starts_at, a.ends_at, b.ends_at) == (60_000, 300_000, 120_000)
    assert a.generator_url == "http://p:9090/graph?g0.expr=up%7Bjob%3D%22x%22%7D+%3D%3D+0&g0.tab=1"
    assert generator_url("", "x") == "/graph?g0.expr=x&g0.tab=1"


async def test_for_state_survives_a_restart_through_the_tsdb(tmp_path):
    import numpy as np

    from narthex.rules.appendable import TSDBRuleStorage
    from narthex.tsdb import open_db

    rules = "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 30m\n"
    cfg = load_config(_write_config(tmp_path, rules))
    minute = 60_000
    start = 1_700_000_000_000 // minute * minute

    def write_up(db, t_from: int, t_to: int) -> None:
        app = db.appender()
        ref = app.series_ref((("__name__", "up"), ("job", "a")))
        ts = np.arange(t_from, t_to, 15_000, dtype=np.int64)
        app.append_batch(np.full(len(ts), ref), ts, np.zeros(len(ts)))
        app.commit()

    db = open_db(tmp_path / "data")
    write_up(db, start, start + 11 * minute)
    manager = RuleManager(TSDBRuleStorage(db), ManagerOptions(for_grace_period_ms=10 * minute))
    await manager.apply_config(load_config(_write_config(tmp_path, rules)))
    (group,) = manager.rule_groups()
    group.rules[0].restored = True  # as after a completed first restoration
    for i in range(11):
        group.run_iteration(start + i * minute)
    db.close()

    # Restart 5 minutes later: the alert was pending for 10m, down for 5m.
    db = open_db(tmp_path / "data")
    restart = start + 15 * minute
    write_up(db, start + 11 * minute, restart + minute)
    manager = RuleManager(TSDBRuleStorage(db), ManagerOptions(for_grace_period_ms=10 * minute))
    await manager.apply_config(cfg)
    (group,) = manager.rule_groups()
    assert group.should_restore and not group.rules[0].restored
    group.run_iteration(restart)
    group.restore_for_state(restart)
    (alert,) = group.rules[0].active.values()
    assert alert.active_at == start + 5 * minute  # shifted by the 5m of downtime
    db.close()
