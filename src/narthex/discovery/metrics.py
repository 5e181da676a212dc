"""Service discovery self-metrics, with Prometheus's names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Summary

MANAGER_NAME = "scrape"


class DiscoveryMetrics:
    """``prometheus_sd_*`` metrics of the scrape discovery manager and its mechanisms."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        kw = {"registry": registry}
        self.discovered_targets = Gauge(
            "prometheus_sd_discovered_targets",
            "Current number of discovered targets.",
            ["config", "name"],
            **kw,
        )
        self.failed_configs = Gauge(
            "prometheus_sd_failed_configs",
            "Current number of service discovery configurations that failed to load.",
            ["name"],
            **kw,
        )
        self.received_updates = Counter(
            "prometheus_sd_received_updates",
            "Total number of update events received from the SD providers.",
            ["name"],
            **kw,
        )
        self.updates = Counter(
            "prometheus_sd_updates",
            "Total number of update events sent to the SD consumers.",
            ["name"],
            **kw,
        )
        self.file_read_errors = Counter(
            "prometheus_sd_file_read_errors", "The number of File-SD read errors.", **kw
        )
        self.file_scan_duration = Summary(
            "prometheus_sd_file_scan_duration_seconds",
            "The duration of the File-SD scan in seconds.",
            **kw,
        )
        self.file_mtime = Gauge(
            "prometheus_sd_file_mtime_seconds",
            "Timestamp (mtime) of files read by FileSD. Timestamp is set at read time.",
            ["filename"],
            **kw,
        )
        self.http_failures = Counter(
            "prometheus_sd_http_failures", "Number of HTTP service discovery refresh failures.", **kw
        )
        self.failed_configs.labels(MANAGER_NAME).set(0)
        self.received_updates.labels(MANAGER_NAME)
        self.updates.labels(MANAGER_NAME)
