"""``remote_write`` and ``remote_read`` sections, with their queue, metadata and cloud auth settings."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from pydantic import Field, PlainValidator, model_validator

from narthex.config.http import HTTPClientFields
from narthex.config.relabel import RelabelConfig
from narthex.config.sd import LabelSet
from narthex.config.types import (
    URL,
    Bool,
    ConfigModel,
    Duration,
    Int,
    SecretValue,
    Str,
    StrMap,
    UInt,
    no_nulls,
    to_str,
)
from narthex.model.duration import MINUTE, MS, SECOND

PROTOBUF_MESSAGES = ("prometheus.WriteRequest", "io.prometheus.write.v2.Request")
# Headers remote storage and tracing may not set (lower case; "authorization" has its own message).
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-encoding",
        "content-length",
        "content-type",
        "user-agent",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "www-authenticate",
        "accept-encoding",
        "x-prometheus-remote-write-version",
        "x-prometheus-remote-read-version",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
    }
)


def validate_headers(headers: dict[str, str], authorization_message: str) -> None:
    """Refuse reserved headers; ``authorization_message`` is the error for an Authorization header."""
    for name in headers:
        if name.lower() == "authorization":
            raise ValueError(authorization_message)
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"{name} is a reserved header. It must not be changed")


class QueueConfig(ConfigModel):
    """``queue_config``: sharding, batching and retry settings of a remote write queue."""

    capacity: Int = 10000
    max_shards: Int = 50
    min_shards: Int = 1
    max_samples_per_send: Int = 2000
    batch_send_deadline: Duration = 5 * SECOND
    min_backoff: Duration = 30 * MS
    max_backoff: Duration = 5 * SECOND
    retry_on_http_429: Bool = False
    sample_age_limit: Duration = 0

    def check(self) -> None:
        if self.max_shards <= 0:
            raise ValueError("remote write queue max_shards must be positive")
        if self.min_shards <= 0:
            raise ValueError("remote write queue min_shards must be positive")
        if self.min_shards > self.max_shards:
            raise ValueError("remote write queue min_shards must not be greater than max_shards")
        if self.max_samples_per_send <= 0:
            raise ValueError("remote write queue max_samples_per_send must be positive")
        if self.capacity <= 0:
            raise ValueError("remote write queue capacity must be positive")
        if self.max_backoff < self.min_backoff:
            raise ValueError("remote write queue max_backoff must not be less than min_backoff")


class MetadataConfig(ConfigModel):
    """``metadata_config``: whether and how often metric metadata is sent."""

    send: Bool = True
    send_interval: Duration = 1 * MINUTE
    max_samples_per_send: Int = 2000


class SigV4Config(ConfigModel):
    """``sigv4``: AWS Signature Version 4 request signing."""

    yaml_type = "sigv4.plain"

    region: Str = ""
    access_key: Str = ""
    secret_key: SecretValue = SecretValue("")
    profile: Str = ""
    role_arn: Str = ""
    external_id: Str = ""
    use_fips_sts_endpoint: Bool = False
    service_name: Str = ""

    @model_validator(mode="after")
    def _validate(self) -> SigV4Config:
        if bool(self.access_key) != bool(self.secret_key):
            raise ValueError(
                "must provide a AWS SigV4 Access key and Secret Key if credentials are specified "
                "in the SigV4 config"
            )
        return self


class _ClientID(ConfigModel):
    yaml_type = "azuread.plain"

    client_id: Str = ""


class AzureWorkloadIdentity(_ClientID):
    tenant_id: Str = ""
    token_file_path: Str = ""


class AzureOAuth(_ClientID):
    client_secret: SecretValue = SecretValue("")
    tenant_id: Str = ""


class AzureSDK(ConfigModel):
    yaml_type = "azuread.plain"

    tenant_id: Str = ""


class AzureCertificate(_ClientID):
    tenant_id: Str = ""
    certificate_path: Str = ""
    certificate_key_path: Str = ""
    certificate_password: SecretValue = SecretValue("")
    send_certificate_chain: Bool = False


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


_AZURE_CLOUDS = ("AzurePublic", "AzureChina", "AzureGovernment")
_SCOPE = re.compile(r"^[\w\s:/.\-]+$")


class AzureADConfig(ConfigModel):
    """``azuread``: Azure AD authentication for remote write (exactly one method)."""

    yaml_type = "azuread.plain"

    managed_identity: _ClientID | None = None
    workload_identity: AzureWorkloadIdentity | None = None
    oauth: AzureOAuth | None = None
    sdk: AzureSDK | None = None
    certificate: AzureCertificate | None = None
    cloud: Str = ""
    scope: Str = ""

    @model_validator(mode="after")
    def _validate(self) -> AzureADConfig:
        self.cloud = self.cloud or "AzurePublic"
        if self.cloud not in _AZURE_CLOUDS:
            raise ValueError("must provide a cloud in the Azure AD config")
        methods = [self.managed_identity, self.workload_identity, self.oauth, self.sdk, self.certificate]
        count = sum(1 for m in methods if m is not None)
        if count == 0:
            raise ValueError(
                "must provide an Azure Managed Identity, Azure Workload Identity, Azure OAuth, "
                "Azure Certificate or Azure SDK in the Azure AD config"
            )
        if count > 1:
            raise ValueError("cannot provide multiple authentication methods in the Azure AD config")
        mi = self.managed_identity
        if mi is not None and mi.client_id and not _is_uuid(mi.client_id):
            raise ValueError("the provided Azure Managed Identity client_id is invalid")
        if (wi := self.workload_identity) is not None:
            if not wi.client_id:
                raise ValueError("must provide an Azure Workload Identity client_id in the Azure AD config")
            if not wi.tenant_id:
                raise ValueError("must provide an Azure Workload Identity tenant_id in the Azure AD config")
            if not _is_uuid(wi.client_id):
                raise ValueError("the provided Azure Workload Identity client_id is invalid")
            if not _is_uuid(wi.tenant_id):
                raise ValueError("the provided Azure Workload Identity tenant_id is invalid")
        if (oa := self.oauth) is not None:
            for name in ("client_id", "client_secret", "tenant_id"):
                if not getattr(oa, name):
                    raise ValueError(f"must provide an Azure OAuth {name} in the Azure AD config")
            if not _is_uuid(oa.client_id):
                raise ValueError("the provided Azure OAuth client_id is invalid")
        if (cert := self.certificate) is not None:
            for name in ("client_id", "tenant_id", "certificate_path"):
                if not getattr(cert, name):
                    raise ValueError(f"must provide an Azure Certificate {name} in the Azure AD config")
            if not _is_uuid(cert.client_id):
                raise ValueError("the provided Azure Certificate client_id is invalid")
        if self.scope and not _SCOPE.match(self.scope):
            raise ValueError("the provided scope contains invalid characters")
        return self


class GoogleIAMConfig(ConfigModel):
    """``google_iam``: Google Cloud credentials for remote write."""

    yaml_type = "googleiam.plain"

    credentials_file: Str = ""


def _protobuf_message(value: Any) -> str:
    text = to_str(value)
    if text and text not in PROTOBUF_MESSAGES:
        raise ValueError(
            f"invalid protobuf_message value: unknown type for remote write protobuf message {text}, "
            f"supported: {', '.join(PROTOBUF_MESSAGES)}"
        )
    return text or PROTOBUF_MESSAGES[0]


class RemoteWriteConfig(HTTPClientFields):
    """One ``remote_write`` endpoint."""

    url: URL = ""
    remote_timeout: Duration = 30 * SECOND
    headers: StrMap = Field(default_factory=dict)
    write_relabel_configs: Annotated[
        list[RelabelConfig], no_nulls("empty or null relabeling rule in remote write config")
    ] = Field(default_factory=list)
    name: Str = ""
    send_exemplars: Bool = False
    send_native_histograms: Bool = False
    round_robin_dns: Bool = False
    protobuf_message: Annotated[str, PlainValidator(_protobuf_message)] = PROTOBUF_MESSAGES[0]
    failed_request_logging: Bool = False
    enable_http2: Bool = False
    queue_config: QueueConfig = Field(default_factory=QueueConfig)
    metadata_config: MetadataConfig = Field(default_factory=MetadataConfig)
    sigv4: SigV4Config | None = None
    azuread: AzureADConfig | None = None
    google_iam: GoogleIAMConfig | None = None

    @model_validator(mode="after")
    def _validate(self) -> RemoteWriteConfig:
        if not self.url:
            raise ValueError("url for remote_write is empty")
        validate_headers(
            self.headers,
            "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, "
            "azuread or google_iam parameter",
        )
        self.validate_http_client()
        self.queue_config.check()
        configured = [
            name
            for name, value in (
                ("basic_auth", self.basic_auth),
                ("authorization", self.authorization),
                ("oauth2", self.oauth2),
                ("sigv4", self.sigv4),
                ("azuread", self.azuread),
                ("google_iam", self.google_iam),
            )
            if value is not None
        ]
        if len(configured) > 1:
            raise ValueError(
                "at most one of basic_auth, authorization, oauth2, sigv4, azuread or google_iam must be "
                f"configured. Currently configured: [{' '.join(configured)}]"
            )
        return self

    def set_directory(self, directory: str) -> None:
        HTTPClientFields.set_directory(self, directory)


class RemoteReadConfig(HTTPClientFields):
    """One ``remote_read`` endpoint."""

    url: URL = ""
    remote_timeout: Duration = 1 * MINUTE
    chunked_read_limit: UInt = 50_000_000
    headers: StrMap = Field(default_factory=dict)
    read_recent: Bool = False
    name: Str = ""
    required_matchers: LabelSet = Field(default_factory=dict)
    filter_external_labels: Bool = True

    @model_validator(mode="after")
    def _validate(self) -> RemoteReadConfig:
        if not self.url:
            raise ValueError("url for remote_read is empty")
        validate_headers(
            self.headers,
            "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, "
            "azuread or google_iam parameter",
        )
        self.validate_http_client()
        return self
