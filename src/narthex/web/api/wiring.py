"""Building the API's dependencies from a running server (the composition root calls this)."""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from narthex.model.duration import format_duration
from narthex.util.units import format_bytes
from narthex.web.api.core import ApiDeps

if TYPE_CHECKING:
    from narthex.server.server import Server


def storage_retention(options: Any) -> str:
    """``storageRetention`` as Prometheus words it (``15d``, ``512MiB``, ``15d or 512MiB``)."""
    parts = []
    if options.retention_ms:
        parts.append(format_duration(options.retention_ms))
    if options.retention_bytes:
        text = format_bytes(options.retention_bytes)
        parts.append(text[:-1] + "iB" if text[-2:-1].isalpha() else text)
    return " or ".join(parts)


def alertmanager_urls(server: Server) -> tuple[list[str], list[str]]:
    """The notifier's active and dropped Alertmanagers (none while there is no notifier)."""
    notifier = getattr(server, "notifier", None)
    if notifier is None:
        return [], []
    return list(notifier.alertmanagers()), list(notifier.dropped_alertmanagers())


def server_api_deps(server: Server) -> ApiDeps:
    """Lazy accessors to the server's storage, engine, scrape manager, config and flags."""
    options = server.options
    started = time.time()

    def runtime() -> dict[str, Any]:
        success = server.registry.get_sample_value("prometheus_config_last_reload_successful")
        last = server.registry.get_sample_value("prometheus_config_last_reload_success_timestamp_seconds")
        return {
            "start_time": started,
            "reload_config_success": success is None or success == 1,
            "last_config_time": last or None,
            "storage_retention": storage_retention(options),
        }

    return ApiDeps(
        db=lambda: server.storage.db,
        engine=lambda: server.engine,
        config=lambda: server.config,
        flags=options.flag_strings,
        scrape=lambda: server.scrape,
        rules=lambda: getattr(server, "rule_manager", None),
        alertmanagers=functools.partial(alertmanager_urls, server),
        runtime=runtime,
        data_dir=options["storage.tsdb.path"],
        external_url=options.external_url,
        listen_address=options.listen_addresses[0],
        lookback_delta_ms=options["query.lookback-delta"],
        enable_admin=options["web.enable-admin-api"],
    )
