"""``--web.config.file``: TLS and basic authentication, in the exporter-toolkit format Prometheus reads.

tls_server_config: {cert_file, key_file, client_auth_type, client_ca_file, min_version, max_version}
http_server_config: {http2, headers}
basic_auth_users: {user: bcrypt-hash}
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import Any

import yaml

_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_TOP_KEYS = {"tls_server_config", "http_server_config", "basic_auth_users"}
_TLS_KEYS = {
    "cert_file",
    "key_file",
    "cert",
    "key",
    "client_auth_type",
    "client_ca_file",
    "client_ca",
    "cipher_suites",
    "curve_preferences",
    "min_version",
    "max_version",
    "prefer_server_cipher_suites",
    "client_allowed_sans",
}
_HTTP_KEYS = {"http2", "headers"}


class WebConfigError(ValueError):
    """An invalid web configuration file."""


@dataclass(frozen=True)
class WebConfig:
    """What the HTTP server needs from the file: an SSL context, users and extra headers."""

    ssl_context: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def check_password(self, user: str, password: str) -> bool:
        """Whether the user exists and the password matches its bcrypt hash."""
        import bcrypt

        hashed = self.users.get(user)
        if hashed is None:
            # Spend the same time as a real check so user names cannot be probed by timing.
            bcrypt.checkpw(b"x", b"$2b$10$" + b"." * 53)
            return False
        try:
            return bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            return False


def _unknown(section: str, data: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        where = f" in {section}" if section else ""
        raise WebConfigError(f"yaml: unmarshal errors:\n  field {extra[0]} not found{where}")


def _build_ssl(tls: dict[str, Any], base: str) -> ssl.SSLContext:
    def path(key: str) -> str:
        value = tls.get(key) or ""
        return value if not value or os.path.isabs(value) else os.path.join(base, value)

    cert, key = path("cert_file"), path("key_file")
    if not cert and not tls.get("cert"):
        raise WebConfigError("missing cert for TLS config")
    if not key and not tls.get("key"):
        raise WebConfigError("missing key for TLS config")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(f"failed to load X509KeyPair: {exc}") from None
    auth = tls.get("client_auth_type", "NoClientCert")
    if auth not in _CLIENT_AUTH:
        raise WebConfigError(f"invalid client auth type: {auth}")
    context.verify_mode = _CLIENT_AUTH[auth]
    ca = path("client_ca_file")
    if ca:
        try:
            context.load_verify_locations(ca)
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(f"unable to read client CA file: {exc}") from None
    elif auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        raise WebConfigError("Client CA's have been configured without a Client Auth Policy")
    for attr, key_name, default in (
        ("minimum_version", "min_version", "TLS12"),
        ("maximum_version", "max_version", None),
    ):
        version = tls.get(key_name, default)
        if version is None:
            continue
        if version not in _TLS_VERSIONS:
            raise WebConfigError(f"unknown TLS version: {version}")
        setattr(context, attr, _TLS_VERSIONS[version])
    return context


def load_web_config(path: str) -> WebConfig:
    """Read and validate a web configuration file; an empty path means plain HTTP without auth."""
    if not path:
        return WebConfig()
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise WebConfigError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise WebConfigError(f"yaml: {exc}") from None
    if not isinstance(data, dict):
        raise WebConfigError("yaml: web config must be a mapping")
    _unknown("", data, _TOP_KEYS)
    base = os.path.dirname(os.path.abspath(path))
    tls = data.get("tls_server_config") or {}
    http = data.get("http_server_config") or {}
    _unknown("tls_server_config", tls, _TLS_KEYS)
    _unknown("http_server_config", http, _HTTP_KEYS)
    users: dict[str, bytes] = {}
    for user, hashed in (data.get("basic_auth_users") or {}).items():
        if not isinstance(hashed, str) or not hashed.startswith("$2"):
            raise WebConfigError(f"basic_auth_users: password for {user!r} must be a bcrypt hash")
        users[str(user)] = hashed.encode()
    headers = {str(k): str(v) for k, v in (http.get("headers") or {}).items()}
    return WebConfig(ssl_context=_build_ssl(tls, base) if tls else None, users=users, headers=headers)
