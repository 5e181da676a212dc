"""A rule group: its rules evaluated in order at aligned slots of its interval.

All results of one evaluation are committed at once; later rules see earlier rules' results through an
overlay of the pending samples. Series a rule stopped producing get a staleness marker. Times are
milliseconds unless named ``_ns`` or ``_s``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from narthex.model.labels import METRIC_NAME, Labels
from narthex.model.matcher import Matcher, MatchType
from narthex.promql.storage import Querier, Queryable
from narthex.promql.value import STALE_NAN, PromQLError, QueryCanceledError, is_stale
from narthex.rules.alerting import Alert, AlertingRule
from narthex.rules.appendable import RuleAppender, RuleStorage
from narthex.rules.metrics import RuleMetrics
from narthex.rules.overlay import PendingOverlay
from narthex.rules.recording import RecordingRule
from narthex.rules.rule import QueryFunc
from narthex.rules.xxhash import labels_hash
from narthex.util.log import get_logger

log = get_logger("rule manager")

Rule = RecordingRule | AlertingRule
NotifyFunc = Callable[[str, list[Alert]], None]


def group_key(file: str, name: str) -> str:
    """The ``rule_group`` label value and the manager's key of a group."""
    return f"{file};{name}"


@dataclass
class GroupOptions:
    """What every group of a manager shares."""

    storage: RuleStorage
    query_func: QueryFunc
    metrics: RuleMetrics
    notify: NotifyFunc | None = None
    external_url: str = ""
    resend_delay_ms: int = 60_000
    outage_tolerance_ms: int = 3_600_000
    for_grace_period_ms: int = 600_000
    default_query_offset_ms: Callable[[], int] = field(default=lambda: 0)
    query_for: Callable[[Queryable], QueryFunc] | None = None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Group:
    """A group of rules with its evaluation state."""

    def __init__(
        self,
        name: str,
        file: str,
        interval_ms: int,
        rules: list[Rule],
        opts: GroupOptions,
        *,
        limit: int = 0,
        query_offset_ms: int | None = None,
        should_restore: bool = False,
        source_labels: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.file = file
        self.interval_ms = interval_ms
        self.rules = rules
        self.opts = opts
        self.limit = limit
        self.query_offset_ms = query_offset_ms
        self.should_restore = should_restore
        self.source_labels = dict(source_labels or {})
        self.key = group_key(file, name)
        self.series_in_previous_eval: list[dict[Labels, None]] = [{} for _ in rules]
        self.stale_series: list[Labels] = []
        self.evaluation_time_s = 0.0
        self.last_evaluation_s = 0.0
        self.last_eval_timestamp_ms = 0
        self.rule_duration_sum_s = 0.0
        self.mark_stale = False
        self._stopping = asyncio.Event() if _has_loop() else None
        self._task: asyncio.Task[None] | None = None

    # -- identity ---------------------------------------------------------------------------------

    def query_offset(self) -> int:
        if self.query_offset_ms is not None:
            return self.query_offset_ms
        return self.opts.default_query_offset_ms()

    def signature(self) -> tuple[object, ...]:
        """Everything that defines the group's behaviour: equal signatures mean an unchanged group."""
        return (
            self.name,
            self.file,
            self.interval_ms,
            self.limit,
            self.query_offset_ms,
            tuple(_rule_signature(r) for r in self.rules),
        )

    def hash(self) -> int:
        return labels_hash((("file", self.file), ("name", self.name)))

    def eval_timestamp_ns(self, start_ns: int) -> int:
        """The latest slot at or before ``start_ns``: aligned to the interval, shifted by the group's hash."""
        interval_ns = self.interval_ms * 1_000_000
        offset = self.hash() % interval_ns
        adjusted = start_ns - offset
        return adjusted - adjusted % interval_ns + offset

    def alerting_rules(self) -> list[AlertingRule]:
        return [r for r in self.rules if isinstance(r, AlertingRule)]

    # -- one evaluation ---------------------------------------------------------------------------

    def eval(self, ts: int) -> None:
        """Evaluate every rule at ``ts`` (ms), in order, and commit all results at once.

        Later rules query an overlay of the storage and the samples written so far, so they see the
        earlier rules' results; staleness markers of vanished series and removed rules go into the
        same commit.
        """
        offset = self.query_offset()
        metrics = self.opts.metrics
        batch = _Batch(self.opts.storage.rule_appender(), PendingOverlay(self.opts.storage))
        query = self.opts.query_for(batch.overlay) if self.opts.query_for else self.opts.query_func
        for index, rule in enumerate(self.rules):
            if self._stopping is not None and self._stopping.is_set():
                return
            started = time.time()
            metrics.eval_total.labels(self.key).inc()
            try:
                self._eval_rule(index, rule, ts, offset, query, batch)
            finally:
                elapsed = time.time() - started
                metrics.eval_duration.observe(elapsed)
                metrics.eval_duration_histogram.observe(elapsed)
                rule.evaluation_duration_s = elapsed
                rule.evaluation_timestamp_s = started
        metrics.group_samples.labels(self.key).set(batch.samples)
        for labels in self.stale_series:
            batch.append(labels, ts - offset, STALE_NAN)
        self._commit(batch)

    def _eval_rule(
        self, index: int, rule: Rule, ts: int, offset: int, query: QueryFunc, batch: _Batch
    ) -> None:
        try:
            vector = rule.eval(ts, offset, query, self.limit)
        except Exception as exc:  # any evaluation failure marks the rule unhealthy; the group goes on
            rule.set_error(str(exc))
            self.opts.metrics.eval_failures.labels(self.key).inc()
            if not isinstance(exc, QueryCanceledError):
                level = (
                    log.warn if isinstance(exc, (PromQLError, RuntimeError, ValueError)) else log.exception
                )
                level("Evaluating rule failed", group=self.name, name=rule.name, index=index, err=exc)
            return
        rule.set_error("")
        batch.samples += len(vector)
        if isinstance(rule, AlertingRule) and self.opts.notify is not None:
            alerts = rule.alerts_to_send(ts, self.opts.resend_delay_ms, self.interval_ms)
            if alerts:
                self.opts.notify(rule.query, alerts)
        returned: dict[Labels, None] = {}
        for sample in vector:
            batch.append(sample.labels, sample.t, sample.v)
            returned[sample.labels] = None
        for labels in self.series_in_previous_eval[index]:
            if labels not in returned:
                batch.append(labels, ts - offset, STALE_NAN)
        batch.returned[index] = returned

    def _commit(self, batch: _Batch) -> None:
        try:
            batch.appender.commit()
        except Exception as exc:  # reported on every rule that wrote; retried at the next evaluation
            log.warn("Rule sample appending failed", group=self.name, err=exc)
            for index in batch.returned:
                self.rules[index].set_error(str(exc))
                self.opts.metrics.eval_failures.labels(self.key).inc()
            return
        for index, returned in batch.returned.items():
            self.series_in_previous_eval[index] = returned
        self.stale_series = []

    def run_iteration(self, ts: int) -> None:
        """One scheduled evaluation with its bookkeeping (upstream's ``DefaultEvalIterationFunc``)."""
        metrics = self.opts.metrics
        metrics.iterations_scheduled.labels(self.key).inc()
        started = time.time()
        self.eval(ts)
        elapsed = time.time() - started
        metrics.iteration_duration.observe(elapsed)
        metrics.iteration_duration_histogram.observe(elapsed)
        self.rule_duration_sum_s = sum(r.evaluation_duration_s for r in self.rules)
        metrics.group_last_rule_duration_sum.labels(self.key).set(self.rule_duration_sum_s)
        self.evaluation_time_s = elapsed
        metrics.group_last_duration.labels(self.key).set(elapsed)
        self.last_evaluation_s = started
        self.last_eval_timestamp_ms = ts
        metrics.group_last_eval_time.labels(self.key).set(ts / 1000)

    # -- restoring the ``for`` state --------------------------------------------------------------

    def restore_for_state(self, ts: int) -> None:
        """Restore active alerts' ``ActiveAt`` from ``ALERTS_FOR_STATE`` (within the outage tolerance)."""
        started = time.time()
        opts = self.opts
        try:
            querier = opts.storage.querier(ts - opts.outage_tolerance_ms, ts)
            for rule in self.alerting_rules():
                self._restore_rule(rule, querier, ts)
        finally:
            self.should_restore = False
            opts.metrics.group_last_restore_duration.labels(self.key).set(time.time() - started)

    def _restore_rule(self, rule: AlertingRule, querier: Querier, ts: int) -> None:
        opts = self.opts
        hold = rule.hold_ms
        if hold < opts.for_grace_period_ms:
            rule.restored = True
            return
        matchers = [Matcher(MatchType.EQUAL, k, v) for k, v in rule.for_state_matchers()]
        try:
            found = querier.select(matchers)
        except Exception as exc:  # keep going: the alert will simply wait for its full hold time
            log.error("Failed to restore 'for' state", alertname=rule.name, stage="Select", err=exc)
            rule.restored = True
            return
        by_labels = {tuple(p for p in s.labels if p[0] != METRIC_NAME): s for s in found}
        for alert in rule.active.values():
            series = by_labels.get(alert.labels)
            if series is None or len(series.timestamps) == 0:
                continue
            values = series.values
            if bool(is_stale(values[-1:])[0]):
                continue
            down_at = int(series.timestamps[-1]) // 1000 * 1000
            restored_active_at = int(values[-1]) * 1000 if math.isfinite(values[-1]) else 0
            remaining = hold - (down_at - restored_active_at)
            if remaining <= 0:
                pass
            elif remaining < opts.for_grace_period_ms:
                restored_active_at = ts + opts.for_grace_period_ms - hold
            else:
                restored_active_at += ts - down_at
            alert.active_at = restored_active_at
            log.debug("'for' state restored", alertname=rule.name, labels=str(dict(alert.labels)))
        rule.restored = True

    # -- reload -----------------------------------------------------------------------------------

    def copy_state(self, old: Group) -> None:
        """Take over evaluation state and active alerts of the rules that still exist."""
        self.evaluation_time_s = old.evaluation_time_s
        self.last_evaluation_s = old.last_evaluation_s
        self.last_eval_timestamp_ms = old.last_eval_timestamp_ms
        by_key: dict[tuple[object, ...], list[int]] = {}
        for i, rule in enumerate(old.rules):
            by_key.setdefault(_name_and_labels(rule), []).append(i)
        for i, rule in enumerate(self.rules):
            indexes = by_key.get(_name_and_labels(rule))
            if not indexes:
                continue
            fi = indexes.pop(0)
            self.series_in_previous_eval[i] = old.series_in_previous_eval[fi]
            old_rule = old.rules[fi]
            if isinstance(rule, AlertingRule) and isinstance(old_rule, AlertingRule):
                rule.active.update(old_rule.active)
        self.stale_series = list(old.stale_series)
        for indexes in by_key.values():
            for fi in indexes:
                self.stale_series.extend(old.series_in_previous_eval[fi])

    # -- scheduling -------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self.run(), name=f"rule group {self.key}")

    async def run(self) -> None:
        """Evaluate at every slot until stopped; late iterations count as missed and are skipped."""
        assert self._stopping is not None
        interval_ns = self.interval_ms * 1_000_000
        eval_ns = self.eval_timestamp_ns(time.time_ns()) + interval_ns
        if await self._sleep_until(eval_ns):
            return
        await self._iterate(eval_ns // 1_000_000)
        restore = self.should_restore
        while True:
            next_ns = eval_ns + interval_ns
            if await self._sleep_until(next_ns):
                return
            missed = (time.time_ns() - eval_ns) // interval_ns - 1
            if missed > 0:
                self.opts.metrics.iterations_missed.labels(self.key).inc(missed)
                self.opts.metrics.iterations_scheduled.labels(self.key).inc(missed)
            eval_ns += (max(missed, 0) + 1) * interval_ns
            await self._iterate(eval_ns // 1_000_000)
            if restore:
                restore = False
                try:
                    await asyncio.to_thread(self.restore_for_state, _now_ms())
                except Exception:  # restoration is best effort; alerts then wait their full ``for``
                    log.exception("Restoring 'for' state failed", group=self.name)

    async def _iterate(self, ts: int) -> None:
        try:
            await asyncio.to_thread(self.run_iteration, ts)
        except Exception:  # keep the group scheduled whatever one iteration does
            log.exception("Rule group evaluation failed", group=self.name, file=self.file)

    async def _sleep_until(self, at_ns: int) -> bool:
        """Wait until wall-clock ``at_ns``; True if the group was stopped meanwhile."""
        assert self._stopping is not None
        delay = (at_ns - time.time_ns()) / 1e9
        if delay <= 0:
            return self._stopping.is_set()
        try:
            await asyncio.wait_for(self._stopping.wait(), delay)
            return True
        except TimeoutError:
            return self._stopping.is_set()

    async def stop(self) -> None:
        """Stop scheduling and wait for a running evaluation to finish."""
        if self._stopping is not None:
            self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def all_previous_series(self) -> list[Labels]:
        return [labels for per_rule in self.series_in_previous_eval for labels in per_rule]


@dataclass
class _Batch:
    """One evaluation's appender, its query overlay and bookkeeping."""

    appender: RuleAppender
    overlay: PendingOverlay
    returned: dict[int, dict[Labels, None]] = field(default_factory=dict)
    samples: int = 0

    def append(self, labels: Labels, t: int, v: float) -> None:
        self.appender.append(labels, t, v)
        self.overlay.add(labels, t, v)


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _name_and_labels(rule: Rule) -> tuple[object, ...]:
    return (rule.name, tuple(sorted(rule.labels.items())))


def _rule_signature(rule: Rule) -> tuple[object, ...]:
    if isinstance(rule, AlertingRule):
        return (
            "alert",
            rule.name,
            rule.query,
            rule.hold_ms,
            rule.keep_firing_for_ms,
            tuple(sorted(rule.labels.items())),
            tuple(sorted(rule.annotations.items())),
        )
    return ("record", rule.name, rule.query, tuple(sorted(rule.labels.items())))
