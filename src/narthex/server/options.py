"""``narthex serve`` flags: Prometheus's names, defaults and meaning."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from narthex.cli.flags import Flag, FlagSet
from narthex.model.duration import format_duration, parse_duration
from narthex.model.regex import RegexError, compile_regex
from narthex.util.log import LEVELS
from narthex.util.units import format_bytes, parse_bytes

KNOWN_FEATURES = frozenset(
    {
        "concurrent-rule-eval",
        "created-timestamp-zero-ingestion",
        "delayed-compaction",
        "exemplar-storage",
        "extra-scrape-metrics",
        "memory-snapshot-on-shutdown",
        "metadata-wal-records",
        "native-histograms",
        "old-ui",
        "otlp-deltatocumulative",
        "promql-binop-fill-modifiers",
        "promql-delayed-name-removal",
        "promql-duration-expr",
        "promql-experimental-functions",
        "promql-extended-range-selectors",
        "promql-per-step-stats",
        "type-and-unit-labels",
        "use-uncached-io",
    }
)
DEFAULT_RETENTION = "15d"


def _choice(*allowed: str):
    def convert(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"enum value must be one of {','.join(allowed)}, got '{text}'")
        return text

    return convert


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _float_int(text: str) -> int:
    return int(float(text))


def serve_flagset() -> FlagSet:
    """Every flag ``narthex serve`` accepts."""
    fs = FlagSet("narthex serve", "The Narthex monitoring server")
    add = fs.add
    add(Flag("config.file", "Prometheus configuration file path.", "prometheus.yml"))
    add(Flag("config.auto-reload", "Enable automatic configuration file reloading.", "false", is_bool=True))
    add(
        Flag(
            "config.auto-reload-interval",
            "Interval for checking the configuration file for changes.",
            "30s",
            parse_duration,
        )
    )
    add(
        Flag(
            "web.listen-address",
            "Address to listen on for UI, API, and telemetry. Can be repeated.",
            "0.0.0.0:9090",
            repeatable=True,
        )
    )
    add(Flag("web.config.file", "Path to configuration file that can enable TLS or authentication.", ""))
    add(
        Flag(
            "web.read-timeout",
            "Maximum duration before timing out read of the request, and closing idle connections.",
            "5m",
            parse_duration,
        )
    )
    add(
        Flag(
            "web.max-connections",
            "Maximum number of simultaneous connections across all listeners.",
            "512",
            _positive_int,
        )
    )
    add(
        Flag(
            "web.external-url",
            "The URL under which Narthex is externally reachable (for example, if served "
            "via a reverse proxy). If the URL has a path portion, it prefixes all HTTP endpoints.",
            "",
        )
    )
    add(
        Flag(
            "web.route-prefix",
            "Prefix for the internal routes of web endpoints. Defaults to path of --web.external-url.",
            "",
        )
    )
    add(Flag("web.user-assets", "Path to static asset directory, available at /user.", ""))
    add(Flag("web.enable-lifecycle", "Enable shutdown and reload via HTTP request.", "false", is_bool=True))
    add(
        Flag("web.enable-admin-api", "Enable API endpoints for admin control actions.", "false", is_bool=True)
    )
    add(
        Flag(
            "web.enable-remote-write-receiver",
            "Enable API endpoint accepting remote write requests.",
            "false",
            is_bool=True,
        )
    )
    add(
        Flag(
            "web.enable-otlp-receiver",
            "Enable API endpoint accepting OTLP write requests.",
            "false",
            is_bool=True,
        )
    )
    add(
        Flag(
            "web.console.templates",
            "Path to the console template directory, available at /consoles.",
            "consoles",
        )
    )
    add(Flag("web.console.libraries", "Path to the console library directory.", "console_libraries"))
    add(
        Flag(
            "web.page-title",
            "Document title of the instance.",
            "Prometheus Time Series Collection and Processing Server",
        )
    )
    add(Flag("web.cors.origin", "Regex for CORS origin. It is fully anchored.", ".*"))
    add(Flag("storage.tsdb.path", "Base path for metrics storage.", "data/"))
    add(
        Flag(
            "storage.tsdb.retention.time",
            "How long to retain samples in storage. If neither this flag nor "
            "storage.tsdb.retention.size is set, the retention time defaults to 15d.",
            None,
            parse_duration,
        )
    )
    add(
        Flag(
            "storage.tsdb.retention.size",
            "Maximum number of bytes that can be stored for blocks (B, KB, MB, GB, TB, PB, EB; powers of 2).",
            None,
            parse_bytes,
        )
    )
    add(Flag("storage.tsdb.no-lockfile", "Do not create lockfile in data directory.", "false", is_bool=True))
    add(
        Flag(
            "storage.tsdb.decoded-chunks-cache-size",
            "Narthex only: memory for decoded block chunks kept for repeated queries "
            "(B, KB, MB, GB; powers of 2). 0B disables the cache.",
            "256MB",
            parse_bytes,
        )
    )
    add(
        Flag(
            "storage.tsdb.head-chunks-write-queue-size",
            "Size of the head chunks write queue.",
            "0",
            _positive_int,
        )
    )
    add(
        Flag(
            "storage.remote.flush-deadline",
            "How long to wait flushing samples on shutdown or config reload.",
            "1m",
            parse_duration,
        )
    )
    add(
        Flag(
            "storage.remote.read-sample-limit",
            "Maximum overall number of samples to return via the remote "
            "read interface, in a single query. 0 means no limit.",
            "5e7",
            _float_int,
        )
    )
    add(
        Flag(
            "storage.remote.read-concurrent-limit",
            "Maximum number of concurrent remote read calls. 0 means no limit.",
            "10",
            _positive_int,
        )
    )
    add(
        Flag(
            "storage.remote.read-max-bytes-in-frame",
            "Maximum number of bytes in a single frame for streaming remote read response types.",
            "1048576",
            _positive_int,
        )
    )
    add(
        Flag(
            "rules.alert.for-outage-tolerance",
            'Max time to tolerate an outage for restoring "for" state of alert.',
            "1h",
            parse_duration,
        )
    )
    add(
        Flag(
            "rules.alert.for-grace-period",
            'Minimum duration between alert and restored "for" state.',
            "10m",
            parse_duration,
        )
    )
    add(
        Flag(
            "rules.alert.resend-delay",
            "Minimum amount of time to wait before resending an alert to Alertmanager.",
            "1m",
            parse_duration,
        )
    )
    add(
        Flag(
            "rules.max-concurrent-evals",
            "Global concurrency limit for independent rules that can run concurrently.",
            "4",
            _positive_int,
        )
    )
    add(
        Flag(
            "alertmanager.notification-queue-capacity",
            "The capacity of the queue for pending Alertmanager notifications.",
            "10000",
            _positive_int,
        )
    )
    add(
        Flag(
            "alertmanager.notification-batch-size",
            "The maximum number of notifications per batch to send to the Alertmanager.",
            "256",
            _positive_int,
        )
    )
    add(
        Flag(
            "alertmanager.drain-notification-queue-on-shutdown",
            "Send any outstanding Alertmanager notifications when shutting down.",
            "true",
            is_bool=True,
        )
    )
    add(
        Flag(
            "query.lookback-delta",
            "The maximum lookback duration for retrieving metrics during expression "
            "evaluations and federation.",
            "5m",
            parse_duration,
        )
    )
    add(Flag("query.timeout", "Maximum time a query may take before being aborted.", "2m", parse_duration))
    add(
        Flag("query.max-concurrency", "Maximum number of queries executed concurrently.", "20", _positive_int)
    )
    add(
        Flag(
            "query.max-samples",
            "Maximum number of samples a single query can load into memory.",
            "50000000",
            _positive_int,
        )
    )
    add(
        Flag(
            "scrape.adjust-timestamps",
            "Adjust scrape timestamps by up to scrape.timestamp-tolerance to "
            "align them to the intended schedule.",
            "true",
            is_bool=True,
        )
    )
    add(Flag("scrape.timestamp-tolerance", "Timestamp tolerance.", "2ms", parse_duration))
    add(
        Flag(
            "scrape.discovery-reload-interval",
            "Interval used by scrape manager to throttle target groups updates.",
            "5s",
            parse_duration,
        )
    )
    add(Flag("enable-feature", "Comma separated feature names to enable.", None, repeatable=True))
    add(
        Flag(
            "log.level",
            "Only log messages with the given severity or above. One of: [debug, info, warn, error]",
            "info",
            _choice(*LEVELS),
        )
    )
    add(
        Flag(
            "log.format",
            "Output format of log messages. One of: [logfmt, json]",
            "logfmt",
            _choice("logfmt", "json"),
        )
    )
    return fs


@dataclass
class ServerOptions:
    """The parsed ``narthex serve`` command line."""

    values: dict[str, Any]
    explicit: set[str] = field(default_factory=set)
    features: frozenset[str] = frozenset()
    unknown_features: tuple[str, ...] = ()
    external_url: str = ""
    route_prefix: str = "/"

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def listen_addresses(self) -> list[str]:
        return list(self.values["web.listen-address"])

    @property
    def retention_ms(self) -> int:
        """Time retention; 15d when neither time nor size retention was set, as Prometheus does."""
        retention = self.values["storage.tsdb.retention.time"]
        if retention is None:
            size = self.values["storage.tsdb.retention.size"]
            return 0 if size else parse_duration(DEFAULT_RETENTION)
        return retention

    @property
    def retention_bytes(self) -> int:
        return self.values["storage.tsdb.retention.size"] or 0

    def flag_strings(self) -> dict[str, str]:
        """Every flag as text for ``/api/v1/status/flags``, durations and sizes written as Prometheus does."""
        out = {}
        for flag in serve_flagset().flags:
            value = self.values.get(flag.name)
            if isinstance(value, bool):
                out[flag.name] = "true" if value else "false"
            elif isinstance(value, list):
                out[flag.name] = ",".join(str(v) for v in value)
            elif value is None:
                out[flag.name] = ""
            elif flag.convert is parse_duration:
                out[flag.name] = format_duration(value)
            elif flag.convert is parse_bytes:
                out[flag.name] = format_bytes(value)
            else:
                out[flag.name] = str(value)
        return out


class OptionsError(ValueError):
    """A flag combination that cannot run."""


def _split_host_port(address: str) -> tuple[str, str]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise OptionsError(f"address {address}: missing port in address")
    return host.strip("[]"), port


def compute_external_url(raw: str, listen_address: str) -> str:
    """The external URL with a path that has no trailing slash, derived as Prometheus does when unset."""
    if raw == "":
        _, port = _split_host_port(listen_address)
        raw = f"http://{socket.gethostname()}:{port}/"
    if raw[:1] in "\"'" or raw[-1:] in "\"'":
        raise OptionsError("URL must not begin or end with quotes")
    parts = urlsplit(raw)
    path = parts.path.rstrip("/")
    if path and not path.startswith("/"):
        path = "/" + path
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def build_options(values: dict[str, Any], explicit: set[str]) -> ServerOptions:
    """Validate and derive (external URL, route prefix, features) from parsed flag values."""
    features: set[str] = set()
    unknown: list[str] = []
    for item in values["enable-feature"]:
        for name in (part.strip() for part in item.split(",")):
            if not name:
                continue
            if name in KNOWN_FEATURES:
                features.add(name)
            else:
                unknown.append(name)
    for address in values["web.listen-address"]:
        _split_host_port(address)
    try:
        compile_regex(values["web.cors.origin"])
    except RegexError as exc:
        raise OptionsError(
            f"could not compile CORS regex string {values['web.cors.origin']!r}: {exc}"
        ) from None
    external = compute_external_url(values["web.external-url"], values["web.listen-address"][0])
    prefix = values["web.route-prefix"] or urlsplit(external).path
    prefix = "/" + prefix.strip("/")
    if values["config.auto-reload-interval"] < 1000:
        values["config.auto-reload-interval"] = 1000
    return ServerOptions(
        values=values,
        explicit=explicit,
        features=frozenset(features),
        unknown_features=tuple(unknown),
        external_url=external,
        route_prefix=prefix,
    )
