"""Alerting rule state machine: pending, firing, resolved, ``for``, ``keep_firing_for``, ALERTS series."""

from __future__ import annotations

import math

import pytest

from narthex.promql.value import is_stale
from narthex.rules.alerting import AlertState
from tests.rules.helpers import ScriptedQuery, alerting_rule, make_group, series

MIN = 60_000
DOWN = ({"__name__": "up", "job": "a"}, 0.0)


def _states(rule):
    return [(str(a.state), a.active_at) for a in rule.active.values()]


def test_pending_then_firing_then_resolved():
    q = ScriptedQuery()
    for t in range(0, 4 * MIN, MIN):
        q.set(t, DOWN)
    rule = alerting_rule(hold_ms=2 * MIN, labels={"severity": "page"})
    group = make_group([rule], q)
    group.eval(0)
    assert _states(rule) == [("pending", 0)]
    group.eval(MIN)
    assert _states(rule) == [("pending", 0)]
    group.eval(2 * MIN)
    assert _states(rule) == [("firing", 0)]
    assert rule.state() == AlertState.FIRING
    group.eval(4 * MIN)  # nothing returned any more
    alert = next(iter(rule.active.values()))
    assert alert.state == AlertState.INACTIVE and alert.resolved_at == 4 * MIN
    assert rule.active_alerts() == []
    labels = dict(alert.labels)
    assert labels == {"alertname": "A", "job": "a", "severity": "page"}


def test_pending_alert_that_disappears_is_deleted():
    q = ScriptedQuery()
    q.set(0, DOWN)
    rule = alerting_rule(hold_ms=5 * MIN)
    group = make_group([rule], q)
    group.eval(0)
    group.eval(MIN)
    assert rule.active == {}


def test_keep_firing_for_holds_a_resolved_condition():
    q = ScriptedQuery()
    q.set(0, DOWN)
    rule = alerting_rule(hold_ms=0, keep_ms=2 * MIN)
    group = make_group([rule], q)
    group.eval(0)
    assert _states(rule) == [("firing", 0)]
    group.eval(MIN)
    alert = next(iter(rule.active.values()))
    assert alert.state == AlertState.FIRING and alert.keep_firing_since == MIN
    group.eval(2 * MIN)
    assert alert.state == AlertState.FIRING
    group.eval(3 * MIN)  # 2m since keep_firing_since: resolved
    assert alert.state == AlertState.INACTIVE and alert.resolved_at == 3 * MIN


def test_keep_firing_since_resets_when_condition_returns():
    q = ScriptedQuery()
    q.set(0, DOWN)
    q.set(2 * MIN, DOWN)
    rule = alerting_rule(keep_ms=10 * MIN)
    group = make_group([rule], q)
    group.eval(0)
    group.eval(MIN)
    alert = next(iter(rule.active.values()))
    assert alert.keep_firing_since == MIN
    group.eval(2 * MIN)
    assert alert.keep_firing_since is None


def test_alerts_and_for_state_series_written():
    q = ScriptedQuery()
    q.set(0, DOWN)
    q.set(MIN, DOWN)
    rule = alerting_rule(hold_ms=MIN)
    group = make_group([rule], q)
    group.eval(0)
    group.eval(MIN)
    group.eval(2 * MIN)
    alerts = series(group.opts.storage, "ALERTS")
    pending = (("__name__", "ALERTS"), ("alertname", "A"), ("alertstate", "pending"), ("job", "a"))
    firing = (("__name__", "ALERTS"), ("alertname", "A"), ("alertstate", "firing"), ("job", "a"))
    assert alerts[pending][0] == (0, 1.0)
    assert alerts[pending][1][0] == MIN and is_stale(alerts[pending][1][1:2])[0]
    assert alerts[firing][0] == (MIN, 1.0)
    assert math.isnan(alerts[firing][1][1]) and alerts[firing][1][0] == 2 * MIN
    for_state = series(group.opts.storage, "ALERTS_FOR_STATE")
    ((_, samples),) = for_state.items()
    assert samples[:2] == [(0, 0.0), (MIN, 0.0)]


def test_templates_expand_labels_and_annotations():
    q = ScriptedQuery()
    q.set(0, ({"__name__": "up", "job": "api", "instance": "h:1"}, 0.0))
    rule = alerting_rule(
        labels={"sev": '{{ if eq $labels.job "api" }}page{{ else }}ticket{{ end }}'},
        annotations={"summary": "{{ $labels.instance }} of {{ $labels.job }} is {{ $value }}"},
    )
    group = make_group([rule], q)
    group.eval(0)
    (alert,) = rule.active.values()
    assert dict(alert.labels)["sev"] == "page"
    assert dict(alert.annotations) == {"summary": "h:1 of api is 0"}


def test_duplicate_alert_labelsets_fail_the_rule():
    q = ScriptedQuery()
    q.set(0, ({"__name__": "up", "job": "a"}, 0.0), ({"__name__": "other", "job": "a"}, 0.0))
    rule = alerting_rule()
    group = make_group([rule], q)
    group.eval(0)
    assert rule.health == "err"
    assert "same labelset after applying alert labels" in rule.last_error


def test_group_limit_on_alerts():
    q = ScriptedQuery()
    q.set(0, ({"job": "a"}, 0.0), ({"job": "b"}, 0.0))
    rule = alerting_rule()
    group = make_group([rule], q)
    group.limit = 1
    group.eval(0)
    assert rule.last_error == "exceeded limit of 1 with 2 alerts"
    assert rule.active == {}


def test_resend_and_resolved_notifications():
    q = ScriptedQuery()
    for t in range(0, 3 * MIN, MIN):
        q.set(t, DOWN)
    sent = []
    rule = alerting_rule()
    group = make_group(
        [rule], q, notify=lambda expr, alerts: sent.append((expr, alerts)), resend_delay_ms=2 * MIN
    )
    group.eval(0)
    assert len(sent) == 1 and sent[0][0] == "up == 0"
    assert sent[0][1][0].valid_until == 4 * 2 * MIN
    group.eval(MIN)
    assert len(sent) == 1  # within the resend delay
    group.eval(3 * MIN)  # resolved: sent at once
    assert len(sent) == 2 and sent[1][1][0].resolved_at == 3 * MIN


def test_shortened_for_moves_firing_back_to_pending():
    q = ScriptedQuery()
    for t in range(0, 3 * MIN, MIN):
        q.set(t, DOWN)
    rule = alerting_rule(hold_ms=0)
    group = make_group([rule], q)
    group.eval(0)
    assert _states(rule) == [("firing", 0)]
    rule.hold_ms = 5 * MIN
    group.eval(MIN)
    assert _states(rule) == [("pending", 0)]


@pytest.mark.parametrize("restored", [False, True])
def test_series_written_only_once_restored(restored):
    q = ScriptedQuery()
    q.set(0, DOWN)
    rule = alerting_rule(restored=restored)
    group = make_group([rule], q)
    group.eval(0)
    assert bool(series(group.opts.storage, "ALERTS")) is restored
