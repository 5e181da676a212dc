"""The rule manager's self-metrics, with Prometheus's names (``rules/group.go``)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

MAX_AGE_S = 600.0


class WindowSummary(Collector):
    """An unlabelled summary with quantiles over the last ten minutes (client_golang's default)."""

    def __init__(
        self, name: str, documentation: str, quantiles: tuple[float, ...], registry: CollectorRegistry | None
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.quantiles = quantiles
        self._obs: deque[tuple[float, float]] = deque()
        self._count = 0
        self._sum = 0.0
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def observe(self, value: float) -> None:
        now = time.monotonic()
        with self._lock:
            self._obs.append((now, value))
            while self._obs and now - self._obs[0][0] > MAX_AGE_S:
                self._obs.popleft()
            self._count += 1
            self._sum += value

    def describe(self) -> list[Metric]:
        return [SummaryMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterator[Metric]:
        family = Metric(self.name, self.documentation, "summary")
        now = time.monotonic()
        with self._lock:
            recent = np.array([v for t, v in self._obs if now - t <= MAX_AGE_S], dtype=np.float64)
            count, total = self._count, self._sum
        for q in self.quantiles:
            value = float(np.quantile(recent, q, method="nearest")) if len(recent) else float("nan")
            family.add_sample(self.name, {"quantile": repr(q)}, value)
        family.add_sample(self.name + "_sum", {}, total)
        family.add_sample(self.name + "_count", {}, count)
        yield family


class RuleMetrics:
    """Per-group counters and gauges labelled ``rule_group="FILE;NAME"``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else CollectorRegistry()
        p = "prometheus_"
        self.eval_duration = WindowSummary(
            p + "rule_evaluation_duration_seconds",
            "The duration for a rule to execute.",
            (0.5, 0.9, 0.99),
            reg,
        )
        self.eval_duration_histogram = Histogram(
            p + "rule_evaluation_duration_histogram_seconds",
            "The duration for a rule to execute.",
            buckets=(0.01, 0.1, 1, 10),
            registry=reg,
        )
        self.iteration_duration = WindowSummary(
            p + "rule_group_duration_seconds",
            "The duration of rule group evaluations.",
            (0.01, 0.05, 0.5, 0.9, 0.99),
            reg,
        )
        self.iteration_duration_histogram = Histogram(
            p + "rule_group_duration_histogram_seconds",
            "The duration of rule group evaluations.",
            buckets=(0.01, 0.1, 1, 10),
            registry=reg,
        )
        labelled = ["rule_group"]
        self.iterations_missed = Counter(
            p + "rule_group_iterations_missed",
            "The total number of rule group evaluations missed due to slow rule group evaluation.",
            labelled,
            registry=reg,
        )
        self.iterations_scheduled = Counter(
            p + "rule_group_iterations",
            "The total number of scheduled rule group evaluations, whether executed or missed.",
            labelled,
            registry=reg,
        )
        self.eval_total = Counter(
            p + "rule_evaluations", "The total number of rule evaluations.", labelled, registry=reg
        )
        self.eval_failures = Counter(
            p + "rule_evaluation_failures",
            "The total number of rule evaluation failures.",
            labelled,
            registry=reg,
        )
        self.group_interval = Gauge(
            p + "rule_group_interval_seconds", "The interval of a rule group.", labelled, registry=reg
        )
        self.group_last_eval_time = Gauge(
            p + "rule_group_last_evaluation_timestamp_seconds",
            "The timestamp of the last rule group evaluation in seconds.",
            labelled,
            registry=reg,
        )
        self.group_last_duration = Gauge(
            p + "rule_group_last_duration_seconds",
            "The duration of the last rule group evaluation.",
            labelled,
            registry=reg,
        )
        self.group_last_rule_duration_sum = Gauge(
            p + "rule_group_last_rule_duration_sum_seconds",
            "The sum of time in seconds it took to evaluate each rule in the group regardless of "
            "concurrency. This should be higher than the group duration if rules are evaluated concurrently.",
            labelled,
            registry=reg,
        )
        self.group_last_restore_duration = Gauge(
            p + "rule_group_last_restore_duration_seconds",
            "The duration of the last alert rules alerts restoration using the `ALERTS_FOR_STATE` series.",
            labelled,
            registry=reg,
        )
        self.group_rules = Gauge(p + "rule_group_rules", "The number of rules.", labelled, registry=reg)
        self.group_samples = Gauge(
            p + "rule_group_last_evaluation_samples",
            "The number of samples returned during the last rule group evaluation.",
            labelled,
            registry=reg,
        )
        self._per_group = (
            self.iterations_missed,
            self.iterations_scheduled,
            self.eval_total,
            self.eval_failures,
            self.group_interval,
            self.group_last_eval_time,
            self.group_last_duration,
            self.group_last_rule_duration_sum,
            self.group_last_restore_duration,
            self.group_rules,
            self.group_samples,
        )

    def init_group(self, key: str, interval_s: float, rules: int) -> None:
        """Create a group's series so they are exposed before its first evaluation."""
        for metric in (
            self.iterations_missed,
            self.iterations_scheduled,
            self.eval_total,
            self.eval_failures,
            self.group_last_eval_time,
            self.group_last_duration,
            self.group_last_rule_duration_sum,
            self.group_samples,
        ):
            metric.labels(key)
        self.group_interval.labels(key).set(interval_s)
        self.group_rules.labels(key).set(rules)

    def remove_group(self, key: str) -> None:
        for metric in self._per_group:
            with contextlib.suppress(KeyError):
                metric.remove(key)
