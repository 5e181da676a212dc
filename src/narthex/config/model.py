"""The prometheus.yml model: ``global``, ``runtime``, ``scrape_configs``, ``alerting``, ``storage``,
``tracing``, ``otlp`` and the top-level :class:`Config`.

Sections check what their Go ``UnmarshalYAML`` checks while parsing; the checks that need the global
settings (``ScrapeConfig.Validate``) run in :mod:`narthex.config.load` once everything is parsed.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, model_validator

from narthex.config.errors import LocatedError, go_quote
from narthex.config.http import HTTPClientFields, TLSConfig, join_dir
from narthex.config.relabel import RelabelConfig
from narthex.config.remote import RemoteReadConfig, RemoteWriteConfig, SigV4Config, validate_headers
from narthex.config.sd import ServiceDiscoveryFields, StaticConfig
from narthex.config.types import (
    Bool,
    ByteSize,
    ConfigModel,
    Duration,
    Float,
    Int,
    OptBool,
    Str,
    StrList,
    StrMap,
    UInt,
    no_nulls,
    to_str,
    unmarshal_error,
)
from narthex.model.duration import MINUTE, SECOND
from narthex.model.exposition import DEFAULT_SCRAPE_PROTOCOLS as _DEFAULT_PROTOCOLS
from narthex.model.exposition import PROTO_FIRST_SCRAPE_PROTOCOLS, SCRAPE_PROTOCOL_HEADERS
from narthex.model.labels import is_valid_label_name, is_valid_label_value

SCRAPE_PROTOCOL_MEDIA_TYPES = SCRAPE_PROTOCOL_HEADERS
DEFAULT_SCRAPE_PROTOCOLS = list(_DEFAULT_PROTOCOLS)
DEFAULT_PROTO_FIRST_SCRAPE_PROTOCOLS = list(PROTO_FIRST_SCRAPE_PROTOCOLS)
ESCAPING_SCHEMES = ("allow-utf-8", "underscores", "dots", "values")
OTLP_TRANSLATION_STRATEGIES = (
    "UnderscoreEscapingWithSuffixes",
    "UnderscoreEscapingWithoutSuffixes",
    "NoUTF8EscapingWithSuffixes",
    "NoTranslation",
)
DEFAULT_GOGC = 75

NameValidationScheme = Literal["", "utf8", "legacy"]


def check_scrape_protocol(protocol: str) -> None:
    """``ScrapeProtocol.Validate``."""
    if protocol not in SCRAPE_PROTOCOL_MEDIA_TYPES:
        supported = " ".join(sorted(SCRAPE_PROTOCOL_MEDIA_TYPES))
        raise ValueError(f"unknown scrape protocol {protocol}, supported: [{supported}]")


def check_scrape_protocols(protocols: list[str]) -> None:
    """``validateAcceptScrapeProtocols``: non-empty, no duplicates (case-insensitive), all known."""
    if not protocols:
        raise ValueError("scrape_protocols cannot be empty")
    seen: set[str] = set()
    for protocol in protocols:
        if protocol.lower() in seen:
            raise ValueError(f"duplicated protocol in scrape_protocols, got [{' '.join(protocols)}]")
        try:
            check_scrape_protocol(protocol)
        except ValueError as exc:
            raise ValueError(f"scrape_protocols: {exc}") from None
        seen.add(protocol.lower())


def _validation_scheme(value: Any) -> str:
    text = to_str(value)
    if text not in ("", "utf8", "legacy"):
        raise ValueError(f"unrecognized ValidationScheme: {go_quote(text)}")
    return text


def _protocols(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise unmarshal_error(value, "[]config.ScrapeProtocol")
    return [to_str(v) for v in value]


def _external_labels(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise unmarshal_error(value, "labels.Labels")
    return {name: to_str(v) for name, v in sorted(value.items())}


ValidationSchemeField = Annotated[str, PlainValidator(_validation_scheme)]
ScrapeProtocols = Annotated[list[str] | None, PlainValidator(_protocols)]


class GlobalConfig(ConfigModel):
    """``global``: defaults for scrape jobs and rule evaluation, and the external labels."""

    scrape_interval: Duration = 0
    scrape_timeout: Duration = 0
    scrape_protocols: ScrapeProtocols = None
    evaluation_interval: Duration = 0
    rule_query_offset: Duration = 0
    query_log_file: Str = ""
    scrape_failure_log_file: Str = ""
    external_labels: Annotated[dict[str, str], PlainValidator(_external_labels)] = Field(default_factory=dict)
    body_size_limit: ByteSize = 0
    sample_limit: UInt = 0
    target_limit: UInt = 0
    label_limit: UInt = 0
    label_name_length_limit: UInt = 0
    label_value_length_limit: UInt = 0
    keep_dropped_targets: UInt = 0
    metric_name_validation_scheme: ValidationSchemeField = ""
    metric_name_escaping_scheme: Str = ""
    scrape_native_histograms: OptBool = None
    convert_classic_histograms_to_nhcb: Bool = False
    always_scrape_classic_histograms: Bool = False
    extra_scrape_metrics: OptBool = None

    @model_validator(mode="after")
    def _defaults(self) -> GlobalConfig:
        if self.metric_name_validation_scheme not in ("utf8", "legacy"):
            self.metric_name_validation_scheme = "utf8"
        legacy = self.metric_name_validation_scheme == "legacy"
        for name, value in self.external_labels.items():
            where = ("global", "external_labels", name)
            if not is_valid_label_name(name, legacy):
                raise LocatedError(f"{go_quote(name)} is not a valid label name", where)
            if not is_valid_label_value(value):
                raise LocatedError(f"{go_quote(value)} is not a valid label value", where)
        if self.scrape_interval == 0:
            self.scrape_interval = 1 * MINUTE
        if self.scrape_timeout > self.scrape_interval:
            raise ValueError("global scrape timeout greater than scrape interval")
        if self.scrape_timeout == 0:
            self.scrape_timeout = min(10 * SECOND, self.scrape_interval)
        if self.evaluation_interval == 0:
            self.evaluation_interval = 1 * MINUTE
        if self.scrape_native_histograms is None:
            self.scrape_native_histograms = False
        if self.extra_scrape_metrics is None:
            self.extra_scrape_metrics = False
        if self.scrape_protocols is not None:
            try:
                check_scrape_protocols(self.scrape_protocols)
            except ValueError as exc:
                raise ValueError(f"{exc} for global config") from None
        return self

    def set_directory(self, directory: str) -> None:
        self.query_log_file = join_dir(directory, self.query_log_file)
        self.scrape_failure_log_file = join_dir(directory, self.scrape_failure_log_file)


class RuntimeConfig(ConfigModel):
    """``runtime``: process tuning (Go's GC target; kept for compatibility)."""

    gogc: Int = 0

    @model_validator(mode="after")
    def _defaults(self) -> RuntimeConfig:
        if self.gogc == 0:
            self.gogc = default_gogc()
        return self


def default_gogc() -> int:
    """``GOGC`` from the environment (``off`` is -1), else 75."""
    env = os.environ.get("GOGC", "")
    if env.lower() == "off":
        return -1
    try:
        return int(env)
    except ValueError:
        return DEFAULT_GOGC


def _params(value: Any) -> dict[str, list[str]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise unmarshal_error(value, "url.Values")
    out: dict[str, list[str]] = {}
    for key, values in value.items():
        if values is None:
            out[key] = []
        elif isinstance(values, list):
            out[key] = [to_str(v) for v in values]
        else:
            raise unmarshal_error(values, "[]string")
    return out


def check_static_targets(static_configs: list[StaticConfig]) -> None:
    """``checkStaticTargets``: a target address must not be a URL."""
    for group in static_configs:
        for target in group.targets:
            if "/" in target:
                raise ValueError(f"{go_quote(target)} is not a valid hostname")


class ScrapeConfig(HTTPClientFields, ServiceDiscoveryFields):
    """One ``scrape_configs`` job. After loading, interval, timeout, limits and protocols hold the
    effective values (the globals filled in), as after Prometheus's ``ScrapeConfig.Validate``."""

    yaml_type = "config.ScrapeConfig"

    job_name: Str = ""
    honor_labels: Bool = False
    honor_timestamps: Bool = True
    track_timestamps_staleness: Bool = False
    params: Annotated[dict[str, list[str]], PlainValidator(_params)] = Field(default_factory=dict)
    scrape_interval: Duration = 0
    scrape_timeout: Duration = 0
    scrape_protocols: ScrapeProtocols = None
    fallback_scrape_protocol: Str = ""
    scrape_native_histograms: OptBool = None
    always_scrape_classic_histograms: OptBool = None
    convert_classic_histograms_to_nhcb: OptBool = None
    scrape_failure_log_file: Str = ""
    metrics_path: Str = "/metrics"
    scheme: Str = "http"
    enable_compression: Bool = True
    body_size_limit: ByteSize = 0
    sample_limit: UInt = 0
    target_limit: UInt = 0
    label_limit: UInt = 0
    label_name_length_limit: UInt = 0
    label_value_length_limit: UInt = 0
    native_histogram_bucket_limit: UInt = 0
    native_histogram_min_bucket_factor: Float = 0.0
    keep_dropped_targets: UInt = 0
    metric_name_validation_scheme: ValidationSchemeField = ""
    metric_name_escaping_scheme: Str = ""
    extra_scrape_metrics: OptBool = None
    relabel_configs: Annotated[
        list[RelabelConfig], no_nulls("empty or null target relabeling rule in scrape config")
    ] = Field(default_factory=list)
    metric_relabel_configs: Annotated[
        list[RelabelConfig], no_nulls("empty or null metric relabeling rule in scrape config")
    ] = Field(default_factory=list)

    @model_validator(mode="after")
    def _validate(self) -> ScrapeConfig:
        if self.job_name == "":
            raise ValueError("job_name is empty")
        self.validate_http_client()
        if not self.relabel_configs:
            check_static_targets(self.static_configs)
        return self

    def apply_global(self, glob: GlobalConfig) -> None:
        """``ScrapeConfig.Validate``: fill unset values from ``glob`` and check the job's settings.

        Relabel rules are checked separately (:meth:`relabel_rules`), so errors can point at them.
        """
        job = go_quote(self.job_name)
        if self.scrape_interval == 0:
            self.scrape_interval = glob.scrape_interval
        if self.scrape_timeout > self.scrape_interval:
            raise ValueError(
                f"scrape timeout greater than scrape interval for scrape config with job name {job}"
            )
        if self.scrape_timeout == 0:
            self.scrape_timeout = min(glob.scrape_timeout, self.scrape_interval)
        for name in (
            "body_size_limit",
            "sample_limit",
            "target_limit",
            "label_limit",
            "label_name_length_limit",
            "label_value_length_limit",
            "keep_dropped_targets",
        ):
            if getattr(self, name) == 0:
                setattr(self, name, getattr(glob, name))
        if self.scrape_failure_log_file == "":
            self.scrape_failure_log_file = glob.scrape_failure_log_file
        if self.scrape_native_histograms is None:
            self.scrape_native_histograms = glob.scrape_native_histograms
        if self.extra_scrape_metrics is None:
            self.extra_scrape_metrics = glob.extra_scrape_metrics
        if self.scrape_protocols is None:
            if glob.scrape_protocols is not None:
                self.scrape_protocols = list(glob.scrape_protocols)
            elif self.scrape_native_histograms:
                self.scrape_protocols = list(DEFAULT_PROTO_FIRST_SCRAPE_PROTOCOLS)
            else:
                self.scrape_protocols = list(DEFAULT_SCRAPE_PROTOCOLS)
        try:
            check_scrape_protocols(self.scrape_protocols)
        except ValueError as exc:
            raise ValueError(f"{exc} for scrape config with job name {job}") from None
        if self.fallback_scrape_protocol:
            try:
                check_scrape_protocol(self.fallback_scrape_protocol)
            except ValueError as exc:
                raise ValueError(
                    f"invalid fallback_scrape_protocol for scrape config with job name {job}: {exc}"
                ) from None
        self._apply_name_schemes(glob)
        if self.convert_classic_histograms_to_nhcb is None:
            self.convert_classic_histograms_to_nhcb = glob.convert_classic_histograms_to_nhcb
        if self.always_scrape_classic_histograms is None:
            self.always_scrape_classic_histograms = glob.always_scrape_classic_histograms

    def _apply_name_schemes(self, glob: GlobalConfig) -> None:
        local_unset = self.metric_name_validation_scheme == ""
        if local_unset:
            self.metric_name_validation_scheme = glob.metric_name_validation_scheme
        global_escaping = glob.metric_name_escaping_scheme
        if global_escaping == "":
            global_escaping = (
                "underscores" if glob.metric_name_validation_scheme == "legacy" else "allow-utf-8"
            )
        elif global_escaping not in ESCAPING_SCHEMES:
            raise ValueError(
                "unknown global name escaping method specified, must be one of 'allow-utf-8', 'underscores', "
                f"'dots', or 'values', got {go_quote(global_escaping)}"
            )
        if self.metric_name_escaping_scheme == "":
            if local_unset:
                self.metric_name_escaping_scheme = global_escaping
            elif self.metric_name_validation_scheme == "legacy":
                self.metric_name_escaping_scheme = "underscores"
            else:
                self.metric_name_escaping_scheme = "allow-utf-8"
        if self.metric_name_escaping_scheme == "allow-utf-8":
            if self.metric_name_validation_scheme != "utf8":
                raise ValueError("utf8 metric names requested but validation scheme is not set to UTF8")
        elif self.metric_name_escaping_scheme not in ESCAPING_SCHEMES:
            raise ValueError(
                "unknown scrape config name escaping method specified, must be one of 'allow-utf-8', "
                f"'underscores', 'dots', or 'values', got {go_quote(self.metric_name_escaping_scheme)}"
            )

    def relabel_rules(self) -> list[tuple[str, int, RelabelConfig]]:
        """Every relabel rule with its list key and index."""
        return [
            (key, index, rule)
            for key in ("relabel_configs", "metric_relabel_configs")
            for index, rule in enumerate(getattr(self, key))
        ]

    def set_directory(self, directory: str) -> None:
        """Join relative file paths (SD files, credentials, certificates, logs) with ``directory``."""
        self.set_sd_directory(directory)
        HTTPClientFields.set_directory(self, directory)
        self.scrape_failure_log_file = join_dir(directory, self.scrape_failure_log_file)


def _api_version(value: Any) -> str:
    text = to_str(value)
    if text != "v2":
        raise ValueError(f"expected Alertmanager api version to be one of [v2] but got {text}")
    return text


class AlertmanagerConfig(HTTPClientFields, ServiceDiscoveryFields):
    """One ``alerting.alertmanagers`` entry: how to discover and talk to Alertmanagers."""

    yaml_type = "config.AlertmanagerConfig"

    sigv4: SigV4Config | None = None
    scheme: Str = "http"
    path_prefix: Str = ""
    timeout: Duration = 10 * SECOND
    api_version: Annotated[str, PlainValidator(_api_version)] = "v2"
    relabel_configs: Annotated[
        list[RelabelConfig], no_nulls("empty or null Alertmanager target relabeling rule")
    ] = Field(default_factory=list)
    alert_relabel_configs: Annotated[
        list[RelabelConfig], no_nulls("empty or null Alertmanager alert relabeling rule")
    ] = Field(default_factory=list)

    @model_validator(mode="after")
    def _validate(self) -> AlertmanagerConfig:
        self.validate_http_client()
        auth = self.basic_auth is not None or self.authorization is not None or self.oauth2 is not None
        if auth and self.sigv4 is not None:
            raise ValueError("at most one of basic_auth, authorization, oauth2, & sigv4 must be configured")
        if not self.relabel_configs:
            check_static_targets(self.static_configs)
        return self

    def set_directory(self, directory: str) -> None:
        self.set_sd_directory(directory)
        HTTPClientFields.set_directory(self, directory)


class AlertingConfig(ConfigModel):
    """``alerting``: global alert relabeling and the Alertmanagers to send to."""

    alert_relabel_configs: Annotated[list[RelabelConfig], no_nulls("empty or null alert relabeling rule")] = (
        Field(default_factory=list)
    )
    alertmanagers: list[AlertmanagerConfig] = Field(default_factory=list)


class RetentionConfig(ConfigModel):
    """``storage.tsdb.retention``."""

    time: Duration = 0
    size: ByteSize = 0
    percentage: Float = 0.0

    @model_validator(mode="after")
    def _validate(self) -> RetentionConfig:
        if self.size < 0:
            raise ValueError(
                f"'storage.tsdb.retention.size' must be greater than or equal to 0, got {self.size}"
            )
        if not 0 <= self.percentage <= 100:
            raise ValueError(
                "'storage.tsdb.retention.percentage' must be in the range [0, 100], "
                f"got {go_float(self.percentage)}"
            )
        return self


class ChunkEncodingConfig(ConfigModel):
    """``storage.tsdb.chunk_encoding``."""

    floats: Str = ""


class TSDBConfig(ConfigModel):
    """``storage.tsdb``: settings reloadable at runtime."""

    out_of_order_time_window: Duration = 0
    stale_series_compaction_threshold: Float = 0.0
    chunk_encoding: ChunkEncodingConfig = Field(default_factory=ChunkEncodingConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @model_validator(mode="after")
    def _validate(self) -> TSDBConfig:
        if self.chunk_encoding.floats not in ("", "xor", "xor2"):
            raise ValueError(
                "'storage.tsdb.chunk_encoding.floats' must be 'xor' or 'xor2', or the field must be omitted "
                f"entirely, got {go_quote(self.chunk_encoding.floats)}"
            )
        return self


class ExemplarsConfig(ConfigModel):
    """``storage.exemplars``."""

    max_exemplars: Int = 100000


class StorageConfig(ConfigModel):
    """``storage``."""

    tsdb: TSDBConfig = Field(default_factory=TSDBConfig)
    exemplars: ExemplarsConfig | None = None


def _client_type(value: Any) -> str:
    text = to_str(value)
    if text not in ("http", "grpc"):
        raise ValueError(f"expected tracing client type to be to be http or grpc, but got {text}")
    return text


class TracingConfig(ConfigModel):
    """``tracing``: OTLP trace export (validated only when the section is present)."""

    client_type: Annotated[str, PlainValidator(_client_type)] = "grpc"
    endpoint: Str = ""
    sampling_fraction: Float = 0.0
    insecure: Bool = False
    tls_config: TLSConfig = Field(default_factory=TLSConfig)
    headers: StrMap = Field(default_factory=dict)
    compression: Str = ""
    timeout: Duration = 0

    @model_validator(mode="after")
    def _validate(self) -> TracingConfig:
        validate_headers(self.headers, "custom authorization header configuration is not yet supported")
        if self.endpoint == "":
            raise ValueError("tracing endpoint must be set")
        if self.compression not in ("", "gzip"):
            raise ValueError(f"invalid compression type {self.compression} provided, valid options: gzip")
        return self


def _sanitize_attributes(attributes: list[str], adjective: str) -> list[str]:
    errors, seen, out = [], set(), []
    for raw in attributes:
        attr = raw.strip()
        if attr == "":
            errors.append(f"empty {adjective} OTel resource attribute")
            continue
        if attr in seen:
            errors.append(f"duplicated {adjective} OTel resource attribute {go_quote(attr)}")
            continue
        seen.add(attr)
        out.append(attr)
    if errors:
        raise ValueError("\n".join(errors))
    return out


class OTLPConfig(ConfigModel):
    """``otlp``: how OTLP metrics received on the write endpoint are translated."""

    promote_all_resource_attributes: Bool = False
    promote_resource_attributes: StrList = Field(default_factory=list)
    ignore_resource_attributes: StrList = Field(default_factory=list)
    translation_strategy: Str = "UnderscoreEscapingWithSuffixes"
    keep_identifying_resource_attributes: Bool = False
    convert_histograms_to_nhcb: Bool = False
    promote_scope_metadata: Bool = False
    label_name_underscore_sanitization: Bool = True
    label_name_preserve_multiple_underscores: Bool = True

    @model_validator(mode="after")
    def _validate(self) -> OTLPConfig:
        if self.promote_all_resource_attributes:
            if self.promote_resource_attributes:
                raise ValueError(
                    "'promote_all_resource_attributes' and 'promote_resource_attributes' cannot be "
                    "configured simultaneously"
                )
            try:
                self.ignore_resource_attributes = _sanitize_attributes(
                    self.ignore_resource_attributes, "ignored"
                )
            except ValueError as exc:
                raise ValueError(f"invalid 'ignore_resource_attributes': {exc}") from None
        else:
            if self.ignore_resource_attributes:
                raise ValueError(
                    "'ignore_resource_attributes' cannot be configured unless "
                    "'promote_all_resource_attributes' is true"
                )
            try:
                self.promote_resource_attributes = _sanitize_attributes(
                    self.promote_resource_attributes, "promoted"
                )
            except ValueError as exc:
                raise ValueError(f"invalid 'promote_resource_attributes': {exc}") from None
        return self


def go_float(value: float) -> str:
    """A float as Go's ``%v`` prints it (``28`` not ``28.0``)."""
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


class Config(ConfigModel):
    """A whole prometheus.yml. Use :func:`narthex.config.load_config` to get one."""

    global_config: GlobalConfig = Field(default_factory=GlobalConfig, alias="global")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    rule_files: StrList = Field(default_factory=list)
    scrape_config_files: StrList = Field(default_factory=list)
    scrape_configs: Annotated[list[ScrapeConfig], no_nulls("empty or null scrape config section")] = Field(
        default_factory=list
    )
    storage: StorageConfig = Field(default_factory=StorageConfig)
    tracing: TracingConfig = Field(default_factory=TracingConfig.model_construct)
    remote_write: Annotated[
        list[RemoteWriteConfig], no_nulls("empty or null remote write config section")
    ] = Field(default_factory=list)
    remote_read: Annotated[list[RemoteReadConfig], no_nulls("empty or null remote read config section")] = (
        Field(default_factory=list)
    )
    otlp: OTLPConfig = Field(default_factory=OTLPConfig)

    def to_yaml(self) -> str:
        """The configuration as YAML with secrets shown as ``<secret>`` (``/api/v1/status/config``)."""
        from narthex.config.dump import config_to_yaml

        return config_to_yaml(self)
