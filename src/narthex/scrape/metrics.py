"""Scrape self-metrics with Prometheus's names (``scrape/metrics.go``)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

QUANTILES = (0.01, 0.05, 0.5, 0.9, 0.99)
MAX_AGE_S = 600.0


class QuantileSummary(Collector):
    """A summary with quantiles over the last ten minutes of observations (like client_golang's)."""

    def __init__(self, name: str, documentation: str, label: str, registry: CollectorRegistry | None) -> None:
        self.name = name
        self.documentation = documentation
        self.label = label
        self._obs: dict[str, deque[tuple[float, float]]] = {}
        self._totals: dict[str, list[float]] = {}
        if registry is not None:
            registry.register(self)

    def observe(self, label_value: str, value: float) -> None:
        now = time.monotonic()
        window = self._obs.setdefault(label_value, deque())
        window.append((now, value))
        while window and now - window[0][0] > MAX_AGE_S:
            window.popleft()
        totals = self._totals.setdefault(label_value, [0.0, 0.0])
        totals[0] += 1
        totals[1] += value

    def remove(self, label_value: str) -> None:
        self._obs.pop(label_value, None)
        self._totals.pop(label_value, None)

    def describe(self) -> list[Metric]:
        return [SummaryMetricFamily(self.name, self.documentation, labels=[self.label])]

    def collect(self) -> Iterator[Metric]:
        family = Metric(self.name, self.documentation, "summary")
        now = time.monotonic()
        for value, window in list(self._obs.items()):
            recent = np.array([v for t, v in window if now - t <= MAX_AGE_S], dtype=np.float64)
            for q in QUANTILES:
                qv = float(np.quantile(recent, q, method="nearest")) if len(recent) else float("nan")
                family.add_sample(self.name, {self.label: value, "quantile": repr(q)}, qv)
            count, total = self._totals[value]
            family.add_sample(self.name + "_sum", {self.label: value}, total)
            family.add_sample(self.name + "_count", {self.label: value}, count)
        yield family


class CacheCollector(Collector):
    """``prometheus_target_metadata_cache_entries`` per scrape job, computed at collection time."""

    def __init__(self, entries: Callable[[], dict[str, int]], registry: CollectorRegistry | None) -> None:
        self.entries = entries
        if registry is not None:
            registry.register(self)

    def describe(self) -> list[Metric]:
        return [Metric("prometheus_target_metadata_cache_entries", "", "gauge")]

    def collect(self) -> Iterator[Metric]:
        family = Metric(
            "prometheus_target_metadata_cache_entries",
            "Total number of metric metadata entries in the cache",
            "gauge",
        )
        for job, n in sorted(self.entries().items()):
            family.add_sample("prometheus_target_metadata_cache_entries", {"scrape_job": job}, n)
        yield family


class ScrapeMetrics:
    """Every ``prometheus_target_*`` metric the scrape manager maintains."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        kw = {"registry": registry}

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, list(labels), **kw)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, list(labels), **kw)

        self.interval_length = QuantileSummary(
            "prometheus_target_interval_length_seconds",
            "Actual intervals between scrapes.",
            "interval",
            registry,
        )
        self.reload_length = QuantileSummary(
            "prometheus_target_reload_length_seconds",
            "Actual interval to reload the scrape pool with a given configuration.",
            "interval",
            registry,
        )
        self.sync_length = QuantileSummary(
            "prometheus_target_sync_length_seconds",
            "Actual interval to sync the scrape pool.",
            "scrape_job",
            registry,
        )
        self.pools = counter(
            "prometheus_target_scrape_pools", "Total number of scrape pool creation attempts."
        )
        self.pools_failed = counter(
            "prometheus_target_scrape_pools_failed", "Total number of scrape pool creations that failed."
        )
        self.pool_reloads = counter(
            "prometheus_target_scrape_pool_reloads", "Total number of scrape pool reloads."
        )
        self.pool_reloads_failed = counter(
            "prometheus_target_scrape_pool_reloads_failed", "Total number of failed scrape pool reloads."
        )
        self.pool_exceeded_target_limit = counter(
            "prometheus_target_scrape_pool_exceeded_target_limit",
            "Total number of times scrape pools hit the target limit, during sync or config reload.",
        )
        self.pool_exceeded_label_limits = counter(
            "prometheus_target_scrape_pool_exceeded_label_limits",
            "Total number of times scrape pools hit the label limits, during sync or config reload.",
        )
        self.pool_targets = gauge(
            "prometheus_target_scrape_pool_targets",
            "Current number of targets in this scrape pool.",
            ("scrape_job",),
        )
        self.pool_target_limit = gauge(
            "prometheus_target_scrape_pool_target_limit",
            "Maximum number of targets allowed in this scrape pool.",
            ("scrape_job",),
        )
        self.pool_syncs = counter(
            "prometheus_target_scrape_pool_sync",
            "Total number of syncs that were executed on a scrape pool.",
            ("scrape_job",),
        )
        self.sync_failed = counter(
            "prometheus_target_sync_failed",
            "Total number of target sync failures.",
            ("scrape_job",),
        )
        self.exceeded_body_size_limit = counter(
            "prometheus_target_scrapes_exceeded_body_size_limit",
            "Total number of scrapes that hit the body size limit",
        )
        self.exceeded_sample_limit = counter(
            "prometheus_target_scrapes_exceeded_sample_limit",
            "Total number of scrapes that hit the sample limit and were rejected.",
        )
        self.sample_duplicate = counter(
            "prometheus_target_scrapes_sample_duplicate_timestamp",
            "Total number of samples rejected due to duplicate timestamps but different values.",
        )
        self.sample_out_of_bounds = counter(
            "prometheus_target_scrapes_sample_out_of_bounds",
            "Total number of samples rejected due to timestamp falling outside of the time bounds.",
        )
        self.sample_out_of_order = counter(
            "prometheus_target_scrapes_sample_out_of_order",
            "Total number of samples rejected due to not being out of the expected order.",
        )
        self.cache_flush_forced = counter(
            "prometheus_target_scrapes_cache_flush_forced",
            "How many times a scrape cache was flushed due to getting big while scrapes are failing.",
        )
        self._cache_entries: Callable[[], dict[str, int]] = dict
        CacheCollector(lambda: self._cache_entries(), registry)

    def set_cache_entries(self, source: Callable[[], dict[str, int]]) -> None:
        self._cache_entries = source
