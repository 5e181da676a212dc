"""The web layer's own metrics, under Prometheus's names."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class WebMetrics:
    """``prometheus_http_*`` and ``prometheus_ready``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "prometheus_http_requests_total",
            "Counter of HTTP requests.",
            ["handler", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "prometheus_http_request_duration_seconds",
            "Histogram of latencies for HTTP requests.",
            ["handler"],
            buckets=(0.1, 0.2, 0.4, 1, 3, 8, 20, 60, 120),
            registry=registry,
        )
        self.response_size = Histogram(
            "prometheus_http_response_size_bytes",
            "Histogram of response size for HTTP requests.",
            ["handler"],
            buckets=tuple(100 * 10**i for i in range(8)),
            registry=registry,
        )
        self.ready = Gauge(
            "prometheus_ready",
            "Whether Prometheus startup was fully completed and the server is ready for normal operation.",
            registry=registry,
        )

        self._children: dict[tuple[str, int], tuple[Any, Any, Any]] = {}

    def observe(self, handler: str, code: int, seconds: float, size: int) -> None:
        key = (handler, code)
        children = self._children.get(key)
        if children is None:  # the label lookups once per (handler, code)
            children = (
                self.requests.labels(handler, str(code)),
                self.duration.labels(handler),
                self.response_size.labels(handler),
            )
            self._children[key] = children
        requests, duration, size_histogram = children
        requests.inc()
        duration.observe(seconds)
        size_histogram.observe(size)
