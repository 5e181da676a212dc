"""``prometheus_notifications_*`` metrics (``notifier/metric.go``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from narthex.scrape.metrics import QuantileSummary

ALERTMANAGER_LABEL = "alertmanager"


class NotifierMetrics:
    def __init__(
        self,
        registry: CollectorRegistry | None,
        queue_capacity: int,
        discovered: Callable[[], int],
    ) -> None:
        reg = registry if registry is not None else CollectorRegistry()
        p = "prometheus_notifications_"
        self.latency = QuantileSummary(
            p + "latency_seconds",
            "Latency quantiles for sending alert notifications.",
            ALERTMANAGER_LABEL,
            reg,
        )
        self.latency_histogram = Histogram(
            p + "latency_histogram_seconds",
            "Latency histogram for sending alert notifications.",
            [ALERTMANAGER_LABEL],
            registry=reg,
        )
        self.errors = Counter(
            p + "errors",
            "Total number of sent alerts affected by errors.",
            [ALERTMANAGER_LABEL],
            registry=reg,
        )
        self.sent = Counter(p + "sent", "Total number of alerts sent.", [ALERTMANAGER_LABEL], registry=reg)
        self.dropped = Counter(
            p + "dropped",
            "Total number of alerts dropped due to errors when sending to Alertmanager.",
            [ALERTMANAGER_LABEL],
            registry=reg,
        )
        self.queue_length = Gauge(
            p + "queue_length",
            "The number of alert notifications in the queue.",
            [ALERTMANAGER_LABEL],
            registry=reg,
        )
        self.queue_capacity = Gauge(
            p + "queue_capacity", "The capacity of the alert notifications queue.", registry=reg
        )
        self.queue_capacity.set(queue_capacity)
        self.alertmanagers_discovered = Gauge(
            p + "alertmanagers_discovered", "The number of alertmanagers discovered and active.", registry=reg
        )
        self.alertmanagers_discovered.set_function(lambda: float(discovered()))

    def init_alertmanager(self, url: str) -> None:
        for metric in (self.dropped, self.errors, self.sent, self.queue_length):
            metric.labels(url)

    def remove_alertmanager(self, url: str) -> None:
        for metric in (self.latency_histogram, self.sent, self.dropped, self.errors, self.queue_length):
            with contextlib.suppress(KeyError):
                metric.remove(url)
        self.latency.remove(url)
