"""HTTP client settings shared by scrape jobs, SD mechanisms, remote storage and alerting.

Mirrors ``github.com/prometheus/common/config``: ``HTTPClientConfig`` (inlined into its users, so here a
base class), ``TLSConfig``, ``BasicAuth``, ``Authorization``, ``OAuth2``, the proxy settings and
``http_headers``.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field, model_validator

from narthex.config.types import (
    URL,
    Bool,
    ConfigModel,
    Secret,
    SecretValue,
    Str,
    StrList,
    StrMap,
    to_str,
    unmarshal_error,
)

TLS_VERSIONS = ("TLS10", "TLS11", "TLS12", "TLS13")
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_SIGNATURE_ALGORITHMS = ("RS256", "RS384", "RS512")
# Headers http_headers may not set (compared in canonical MIME form).
RESERVED_HEADERS = frozenset(
    {
        "Authorization",
        "Host",
        "Content-Encoding",
        "Content-Length",
        "Content-Type",
        "User-Agent",
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Www-Authenticate",
        "Accept-Encoding",
        "X-Prometheus-Remote-Write-Version",
        "X-Prometheus-Remote-Read-Version",
        "X-Prometheus-Scrape-Timeout-Seconds",
        "X-Amz-Date",
        "X-Amz-Security-Token",
        "X-Amz-Content-Sha256",
    }
)


def join_dir(directory: str, path: str) -> str:
    """A relative path made relative to ``directory``; empty and absolute paths unchanged."""
    if path == "" or os.path.isabs(path) or directory == "":
        return path
    return os.path.join(directory, path)


def canonical_header(name: str) -> str:
    """Go's ``http.CanonicalHeaderKey``: ``x-foo-bar`` -> ``X-Foo-Bar``."""
    if not all(c.isalnum() or c in "-!#$%&'*+.^_`|~" for c in name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _tls_version(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise unmarshal_error(value, "string")
    if value not in TLS_VERSIONS:
        raise ValueError(f"unknown TLS version: {value}")
    return value


class TLSConfig(ConfigModel):
    """``tls_config``: CA, client certificate and key (inline, file or secret reference), versions."""

    ca: Str = ""
    cert: Str = ""
    key: SecretValue = SecretValue("")
    ca_file: Str = ""
    cert_file: Str = ""
    key_file: Str = ""
    ca_ref: Str = ""
    cert_ref: Str = ""
    key_ref: Str = ""
    server_name: Str = ""
    insecure_skip_verify: Bool = False
    min_version: Str = ""
    max_version: Str = ""

    @model_validator(mode="before")
    @classmethod
    def _versions(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("min_version", "max_version"):
                if key in data:
                    data = {**data, key: _tls_version(data[key])}
        return data

    @model_validator(mode="after")
    def _validate(self) -> TLSConfig:
        def count(*values: str) -> int:
            return sum(1 for v in values if v)

        if count(self.ca, self.ca_file, self.ca_ref) > 1:
            raise ValueError("at most one of ca, ca_file & ca_ref must be configured")
        if count(self.cert, self.cert_file, self.cert_ref) > 1:
            raise ValueError("at most one of cert, cert_file & cert_ref must be configured")
        if count(self.key, self.key_file, self.key_ref) > 1:
            raise ValueError("at most one of key and key_file must be configured")
        using_cert = bool(self.cert or self.cert_file or self.cert_ref)
        using_key = bool(self.key or self.key_file or self.key_ref)
        if using_cert and not using_key:
            raise ValueError(
                "exactly one of key or key_file must be configured when a client certificate is configured"
            )
        if using_key and not using_cert:
            raise ValueError(
                "exactly one of cert or cert_file must be configured when a client key is configured"
            )
        return self

    def set_directory(self, directory: str) -> None:
        self.ca_file = join_dir(directory, self.ca_file)
        self.cert_file = join_dir(directory, self.cert_file)
        self.key_file = join_dir(directory, self.key_file)


class BasicAuth(ConfigModel):
    """``basic_auth``."""

    username: Str = ""
    username_file: Str = ""
    username_ref: Str = ""
    password: SecretValue = SecretValue("")
    password_file: Str = ""
    password_ref: Str = ""

    def set_directory(self, directory: str) -> None:
        self.password_file = join_dir(directory, self.password_file)
        self.username_file = join_dir(directory, self.username_file)


class Authorization(ConfigModel):
    """``authorization``: the ``Authorization`` header's type (default ``Bearer``) and credentials."""

    type: Str = ""
    credentials: SecretValue = SecretValue("")
    credentials_file: Str = ""
    credentials_ref: Str = ""

    def set_directory(self, directory: str) -> None:
        self.credentials_file = join_dir(directory, self.credentials_file)


def _proxy_header(value: Any) -> dict[str, list[Secret]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise unmarshal_error(value, "config.ProxyHeader")
    out: dict[str, list[Secret]] = {}
    for name, values in value.items():
        if values is None:
            out[name] = []
        elif isinstance(values, list):
            out[name] = [Secret(to_str(v)) for v in values]
        else:
            raise unmarshal_error(values, "[]config.Secret")
    return out


class ProxyFields(ConfigModel):
    """The proxy settings (inlined into HTTP client and OAuth2 configurations)."""

    proxy_url: URL = ""
    no_proxy: Str = ""
    proxy_from_environment: Bool = False
    proxy_connect_header: dict[str, list[SecretValue]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _proxy_header_values(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("proxy_connect_header") is not None:
            data = {**data, "proxy_connect_header": _proxy_header(data["proxy_connect_header"])}
        return data

    def validate_proxy(self) -> None:
        """``ProxyConfig.Validate``."""
        if self.proxy_connect_header and not self.proxy_from_environment and not self.proxy_url:
            raise ValueError(
                "if proxy_connect_header is configured, proxy_url or proxy_from_environment must "
                "also be configured"
            )
        if self.proxy_from_environment and self.proxy_url:
            raise ValueError("if proxy_from_environment is configured, proxy_url must not be configured")
        if self.proxy_from_environment and self.no_proxy:
            raise ValueError("if proxy_from_environment is configured, no_proxy must not be configured")
        if not self.proxy_url and self.no_proxy:
            raise ValueError("if no_proxy is configured, proxy_url must also be configured")


class OAuth2(ProxyFields):
    """``oauth2``: client credentials or JWT bearer grant."""

    client_id: Str = ""
    client_secret: SecretValue = SecretValue("")
    client_secret_file: Str = ""
    client_secret_ref: Str = ""
    client_certificate_key_id: Str = ""
    client_certificate_key: SecretValue = SecretValue("")
    client_certificate_key_file: Str = ""
    client_certificate_key_ref: Str = ""
    grant_type: Str = ""
    signature_algorithm: Str = ""
    iss: Str = ""
    audience: Str = ""
    claims: dict[str, Any] = Field(default_factory=dict)
    scopes: StrList = Field(default_factory=list)
    token_url: Str = ""
    endpoint_params: StrMap = Field(default_factory=dict)
    tls_config: TLSConfig = Field(default_factory=TLSConfig)

    @model_validator(mode="after")
    def _validate(self) -> OAuth2:
        self.validate_proxy()
        return self

    def set_directory(self, directory: str) -> None:
        self.client_secret_file = join_dir(directory, self.client_secret_file)
        self.tls_config.set_directory(directory)


class Header(ConfigModel):
    """One ``http_headers`` entry: literal values, secret values and files to read values from."""

    values: StrList = Field(default_factory=list)
    secrets: list[SecretValue] = Field(default_factory=list)
    files: StrList = Field(default_factory=list)


def _headers(value: Any) -> Any:
    if value is not None and not isinstance(value, dict):
        raise unmarshal_error(value, "config.Headers")
    return value


class HTTPClientFields(ProxyFields):
    """``HTTPClientConfig``'s fields, inlined into every section that talks HTTP."""

    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    oauth2: OAuth2 | None = None
    bearer_token: SecretValue = SecretValue("")
    bearer_token_file: Str = ""
    tls_config: TLSConfig = Field(default_factory=TLSConfig)
    follow_redirects: Bool = True
    enable_http2: Bool = True
    http_headers: dict[str, Header] | None = None

    @model_validator(mode="before")
    @classmethod
    def _http_headers(cls, data: Any) -> Any:
        if isinstance(data, dict) and "http_headers" in data:
            _headers(data["http_headers"])
        return data

    def validate_http_client(self) -> None:
        """``HTTPClientConfig.Validate``: exclusive auth options; moves bearer_token into authorization."""
        if self.bearer_token and self.bearer_token_file:
            raise ValueError("at most one of bearer_token & bearer_token_file must be configured")
        if (self.basic_auth is not None or self.oauth2 is not None) and (
            self.bearer_token or self.bearer_token_file
        ):
            raise ValueError(
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"
            )
        if self.basic_auth is not None:
            ba = self.basic_auth
            if sum(1 for v in (ba.username, ba.username_file, ba.username_ref) if v) > 1:
                raise ValueError(
                    "at most one of basic_auth username, username_file & username_ref must be configured"
                )
            if sum(1 for v in (ba.password, ba.password_file, ba.password_ref) if v) > 1:
                raise ValueError(
                    "at most one of basic_auth password, password_file & password_ref must be configured"
                )
        if self.authorization is not None:
            auth = self.authorization
            if self.bearer_token or self.bearer_token_file:
                raise ValueError("authorization is not compatible with bearer_token & bearer_token_file")
            if sum(1 for v in (auth.credentials, auth.credentials_file, auth.credentials_ref) if v) > 1:
                raise ValueError(
                    "at most one of authorization credentials & credentials_file must be configured"
                )
            auth.type = auth.type.strip() or "Bearer"
            if auth.type.lower() == "basic":
                raise ValueError('authorization type cannot be set to "basic", use "basic_auth" instead')
            if self.basic_auth is not None or self.oauth2 is not None:
                raise ValueError("at most one of basic_auth, oauth2 & authorization must be configured")
        else:
            if self.bearer_token:
                self.authorization = Authorization(type="Bearer", credentials=self.bearer_token)
                self.bearer_token = SecretValue("")
            if self.bearer_token_file:
                self.authorization = Authorization(type="Bearer", credentials_file=self.bearer_token_file)
                self.bearer_token_file = ""
        if self.oauth2 is not None:
            oauth = self.oauth2
            if self.basic_auth is not None:
                raise ValueError("at most one of basic_auth, oauth2 & authorization must be configured")
            if not oauth.client_id:
                raise ValueError("oauth2 client_id must be configured")
            if not oauth.token_url:
                raise ValueError("oauth2 token_url must be configured")
            if oauth.grant_type == _JWT_BEARER:
                keys = (
                    oauth.client_certificate_key,
                    oauth.client_certificate_key_file,
                    oauth.client_certificate_key_ref,
                )
                if sum(1 for v in keys if v) > 1:
                    raise ValueError(
                        "at most one of oauth2 client_certificate_key, client_certificate_key_file & "
                        "client_certificate_key_ref must be configured using "
                        f"grant-type={_JWT_BEARER}"
                    )
                if oauth.signature_algorithm and oauth.signature_algorithm not in _SIGNATURE_ALGORITHMS:
                    raise ValueError("valid signature algorithms are RS256, RS384 and RS512")
            elif (
                sum(1 for v in (oauth.client_secret, oauth.client_secret_file, oauth.client_secret_ref) if v)
                > 1
            ):
                raise ValueError(
                    "at most one of oauth2 client_secret, client_secret_file & client_secret_ref must be "
                    "configured using grant-type=client_credentials"
                )
        self.validate_proxy()
        for name in self.http_headers or {}:
            if canonical_header(name) in RESERVED_HEADERS:
                raise ValueError(f'setting header "{canonical_header(name)}" is not allowed')

    def http_client_is_default(self) -> bool:
        """Whether every HTTP client field still has ``DefaultHTTPClientConfig``'s value."""
        return all(
            getattr(self, name) == field.get_default(call_default_factory=True)
            for name, field in HTTPClientFields.model_fields.items()
        )

    def set_directory(self, directory: str) -> None:
        """Join relative credential, certificate and header file paths with ``directory``."""
        self.tls_config.set_directory(directory)
        for part in (self.basic_auth, self.authorization, self.oauth2):
            if part is not None:
                part.set_directory(directory)
        for header in (self.http_headers or {}).values():
            header.files = [join_dir(directory, f) for f in header.files]
        self.bearer_token_file = join_dir(directory, self.bearer_token_file)
