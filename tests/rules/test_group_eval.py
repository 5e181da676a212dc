"""Group evaluation: recording rules, rule order, staleness markers, limits, eval slots, reload state."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from narthex.promql.engine import Engine
from narthex.promql.value import is_stale
from narthex.rules.appendable import MemoryRuleStorage
from narthex.rules.group import Group, GroupOptions
from narthex.rules.metrics import RuleMetrics
from narthex.rules.rule import engine_query_func
from narthex.rules.xxhash import labels_hash, xxh64
from tests.rules.helpers import ScriptedQuery, alerting_rule, make_group, recording_rule, series

MIN = 60_000


def test_xxhash_reference_values():
    assert xxh64(b"") == 0xEF46DB3751D8E999
    assert xxh64(b"abc") == 0x44BC2CF5AD770999
    assert xxh64(b"Nobody inspects the spammish repetition") == 0xFBCEA83C8A378BF1
    assert labels_hash((("a", "b"),)) == xxh64(b"a\xffb\xff")


def test_recording_rule_names_and_labels_results():
    q = ScriptedQuery()
    q.set(0, ({"__name__": "up", "job": "a"}, 1.0), ({"__name__": "up", "job": "b"}, 0.0))
    rule = recording_rule("job:up", "up", {"team": "x", "job": "override"})
    group = make_group([rule], q)
    group.eval(0)
    # Rule labels override: both samples collapse to the same labels set.
    assert rule.health == "err" and "same labelset after applying rule labels" in rule.last_error
    rule2 = recording_rule("job:up", "up", {"team": "x"})
    group = make_group([rule2], q)
    group.eval(0)
    stored = series(group.opts.storage, "job:up")
    assert set(stored) == {
        (("__name__", "job:up"), ("job", "a"), ("team", "x")),
        (("__name__", "job:up"), ("job", "b"), ("team", "x")),
    }


def test_staleness_marker_when_series_disappears():
    q = ScriptedQuery()
    q.set(0, ({"job": "a"}, 1.0), ({"job": "b"}, 2.0))
    q.set(MIN, ({"job": "a"}, 3.0))
    group = make_group([recording_rule("r", "up")], q)
    group.eval(0)
    group.eval(MIN)
    stored = series(group.opts.storage, "r")
    a = stored[(("__name__", "r"), ("job", "a"))]
    b = stored[(("__name__", "r"), ("job", "b"))]
    assert a == [(0, 1.0), (MIN, 3.0)]
    assert b[0] == (0, 2.0) and b[1][0] == MIN and is_stale([b[1][1]])[0]


def test_query_offset_shifts_query_and_sample_times():
    q = ScriptedQuery()
    q.set(MIN - 10_000, ({"job": "a"}, 1.0))
    group = make_group([recording_rule("r", "up")], q)
    group.query_offset_ms = 10_000
    group.eval(MIN)
    assert q.calls == [("up", MIN - 10_000)]
    assert list(series(group.opts.storage, "r").values()) == [[(MIN - 10_000, 1.0)]]


def test_recording_limit():
    q = ScriptedQuery()
    q.set(0, ({"job": "a"}, 1.0), ({"job": "b"}, 1.0))
    rule = recording_rule("r", "up")
    group = make_group([rule], q)
    group.limit = 1
    group.eval(0)
    assert rule.last_error == "exceeded limit of 1 with 2 series"


def test_later_rules_see_earlier_results_with_the_engine():
    storage = MemoryRuleStorage()
    for t in range(0, 5 * MIN, 15_000):
        storage.storage.add((("__name__", "requests"), ("job", "a")), t, float(t))
    engine = Engine()
    commits: list[int] = []
    make_appender = storage.rule_appender

    def counting_appender():
        app = make_appender()
        commit = app.commit

        def counted() -> None:
            commits.append(1)
            commit()

        app.commit = counted
        return app

    storage.rule_appender = counting_appender
    opts = GroupOptions(
        storage=storage,
        query_func=engine_query_func(engine, storage),
        metrics=RuleMetrics(),
        query_for=lambda queryable: engine_query_func(engine, queryable),
    )
    rules = [
        recording_rule("job:requests:sum", "sum by (job) (requests)"),
        recording_rule("job:requests:doubled", "job:requests:sum * 2"),
        alerting_rule("High", expr="job:requests:doubled > 100"),
    ]
    group = Group("g", "f.yml", MIN, rules, opts)
    group.run_iteration(2 * MIN)
    assert [r.health for r in rules] == ["ok", "ok", "ok"]
    # The second and third rules saw the first rule's result before anything was committed.
    doubled = series(storage, "job:requests:doubled")
    assert list(doubled.values()) == [[(2 * MIN, 4 * MIN)]]
    assert [str(a.state) for a in rules[2].active.values()] == ["firing"]
    assert group.last_eval_timestamp_ms == 2 * MIN
    assert len(commits) == 1  # one appender commit per group evaluation
    # Inputs gone: every derived series gets a staleness marker, again in a single commit.
    group.run_iteration(10 * MIN)
    assert len(commits) == 2
    for name in ("job:requests:sum", "job:requests:doubled"):
        ((_, samples),) = series(storage, name).items()
        assert samples[-1][0] == 10 * MIN and is_stale([samples[-1][1]])[0]


def test_eval_timestamp_is_aligned_and_offset_by_group_hash():
    group = make_group([], ScriptedQuery(), interval_ms=MIN)
    interval_ns = MIN * 1_000_000
    offset = group.hash() % interval_ns
    now = 1_700_000_123_456_789_000
    ts = group.eval_timestamp_ns(now)
    assert ts <= now < ts + interval_ns
    assert (ts - offset) % interval_ns == 0


def test_copy_state_keeps_alerts_and_marks_removed_rules_stale():
    q = ScriptedQuery()
    q.set(0, ({"job": "a"}, 0.0))
    old_alert = alerting_rule("A", hold_ms=10 * MIN)
    old_rec = recording_rule("gone", "up")
    old = make_group([old_alert, old_rec], q)
    old.eval(0)
    new_alert = alerting_rule("A", hold_ms=10 * MIN, annotations={"x": "changed"})
    new = make_group([new_alert], q, storage=old.opts.storage)
    new.copy_state(old)
    assert list(new_alert.active) == list(old_alert.active)
    assert new.stale_series == [(("__name__", "gone"), ("job", "a"))]
    q.set(MIN, ({"job": "a"}, 0.0))
    new.eval(MIN)
    assert new.stale_series == []
    gone = series(new.opts.storage, "gone")[(("__name__", "gone"), ("job", "a"))]
    assert gone[-1][0] == MIN and is_stale([gone[-1][1]])[0]
    assert next(iter(new_alert.active.values())).active_at == 0


def test_restore_for_state_from_alerts_for_state():
    q = ScriptedQuery()
    storage = MemoryRuleStorage()
    hold = 30 * MIN
    # Before a restart: active since t=0, last written at 10m.
    fs = (("__name__", "ALERTS_FOR_STATE"), ("alertname", "A"), ("job", "a"))
    for t in range(0, 11 * MIN, MIN):
        storage.storage.add(fs, t, 0.0)
    restart = 20 * MIN
    q.set(restart, ({"job": "a"}, 0.0))
    rule = alerting_rule("A", hold_ms=hold, restored=False)
    group = make_group([rule], q, storage=storage, for_grace_period_ms=10 * MIN)
    group.eval(restart)
    assert not series(storage, "ALERTS")  # nothing written before restoration
    group.restore_for_state(restart)
    alert = next(iter(rule.active.values()))
    # 10m were spent pending before going down for 10m: active_at moves by the downtime.
    assert alert.active_at == 10 * MIN
    assert rule.restored


def test_restore_respects_grace_period_and_short_for():
    storage = MemoryRuleStorage()
    fs = (("__name__", "ALERTS_FOR_STATE"), ("alertname", "A"), ("job", "a"))
    storage.storage.add(fs, 25 * MIN, 0.0)
    q = ScriptedQuery()
    q.set(30 * MIN, ({"job": "a"}, 0.0))
    rule = alerting_rule("A", hold_ms=30 * MIN, restored=False)
    group = make_group([rule], q, storage=storage, for_grace_period_ms=10 * MIN)
    group.eval(30 * MIN)
    group.restore_for_state(30 * MIN)
    # 25m pending, 5m left < grace period: fires 10m after the restart.
    assert next(iter(rule.active.values())).active_at == 30 * MIN + 10 * MIN - 30 * MIN
    short = alerting_rule("S", hold_ms=MIN, restored=False)
    group = make_group([short], q, storage=storage, for_grace_period_ms=10 * MIN)
    group.restore_for_state(30 * MIN)
    assert short.restored


async def test_run_loop_counts_missed_iterations():
    q = ScriptedQuery()
    slow_calls = []

    def slow_query(expr, t):
        slow_calls.append(t)
        if len(slow_calls) == 2:
            time.sleep(0.35)
        return q(expr, t)

    group = make_group([recording_rule("r", "up")], slow_query, interval_ms=100)
    group.start()
    await asyncio.sleep(1.0)
    await group.stop()
    metrics = group.opts.metrics
    missed = metrics.iterations_missed.labels(group.key)._value.get()
    total = metrics.iterations_scheduled.labels(group.key)._value.get()
    assert missed >= 2
    assert total >= len(slow_calls) + missed - 1
    # Evaluation times stay on the group's slots.
    offset = (group.hash() % (100 * 1_000_000)) // 1_000_000
    assert all((t - offset) % 100 == 0 for t in slow_calls)


def test_results_go_through_the_tsdb(tmp_path):
    from narthex.rules.appendable import TSDBRuleStorage
    from narthex.tsdb import open_db

    db = open_db(tmp_path / "data")
    try:
        storage = TSDBRuleStorage(db)
        app = db.appender()
        ref = app.series_ref((("__name__", "up"), ("job", "a")))
        app.append_batch(np.array([ref]), 0, np.array([1.0]))
        app.commit()
        opts = GroupOptions(
            storage=storage, query_func=engine_query_func(Engine(), storage), metrics=RuleMetrics()
        )
        group = Group("g", "f.yml", MIN, [recording_rule("r", "up * 2")], opts)
        group.eval(30_000)
        assert group.rules[0].health == "ok"
        (stored,) = storage.querier(0, MIN).select(_name_matcher("r"))
        assert stored.values.tolist() == [2.0] and stored.timestamps.tolist() == [30_000]
    finally:
        db.close()


def _name_matcher(name: str):
    from narthex.model.matcher import Matcher, MatchType

    return [Matcher(MatchType.EQUAL, "__name__", name)]
