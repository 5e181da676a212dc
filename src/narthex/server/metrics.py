"""The server's own metrics registry: process and Python collectors, build info, config reload state."""

from __future__ import annotations

import platform

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from narthex import __version__
from narthex.util.buildinfo import revision


def new_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC collectors prometheus_client offers.

    ``*_created`` series are turned off (process-wide): Prometheus's own client does not expose them, and
    dashboards built on Prometheus's /metrics do not expect them.
    """
    disable_created_metrics()
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    if GC_COLLECTOR is not None:
        GCCollector(registry=registry)
    build = Gauge(
        "narthex_build_info",
        "A metric with a constant '1' value labeled by version, revision, branch, and pythonversion from "
        "which narthex was built.",
        ["version", "revision", "branch", "pythonversion"],
        registry=registry,
    )
    build.labels(__version__, revision(), "HEAD", platform.python_version()).set(1)
    return registry


class ConfigMetrics:
    """``prometheus_config_last_reload_*``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.success = Gauge(
            "prometheus_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            registry=registry,
        )
        self.success_time = Gauge(
            "prometheus_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
            registry=registry,
        )

    def record(self, ok: bool) -> None:
        self.success.set(1 if ok else 0)
        if ok:
            self.success_time.set_to_current_time()
