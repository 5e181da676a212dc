"""Per-job HTTP client settings applied to requests on the shared aiohttp session.

Mirrors ``prometheus/common/config``'s round trippers: basic auth (``password_file`` re-read per
request), ``authorization`` (credentials or ``credentials_file``; ``bearer_token*`` arrive here as
authorization), ``http_headers``, TLS (CA, client certificate, ``server_name``,
``insecure_skip_verify``, minimum/maximum version), ``proxy_url``, ``follow_redirects`` and ``oauth2``
(client credentials).
"""

from __future__ import annotations

import base64
import ipaddress
import ssl
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from narthex import __version__
from narthex.config.http import HTTPClientFields, TLSConfig
from narthex.scrape.oauth2 import OAuth2Error, OAuth2Token

USER_AGENT = f"Narthex/{__version__}"

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


class ClientConfigError(ValueError):
    """A request cannot be prepared (an unreadable credentials file, a bad certificate...)."""


def _go_os_error(path: str, exc: OSError) -> str:
    reason = (exc.strerror or str(exc)).lower()
    return f"open {path}: {reason}"


def _read_secret(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError as exc:
        raise ClientConfigError(f"unable to read {what} file {path}: {_go_os_error(path, exc)}") from None


def build_ssl_context(tls: TLSConfig) -> ssl.SSLContext | bool:
    """An SSL context for ``tls_config`` (True: the default verification when nothing is set)."""
    if not any((tls.ca, tls.ca_file, tls.cert, tls.cert_file, tls.insecure_skip_verify)) and not (
        tls.min_version or tls.max_version
    ):
        return True
    try:
        ctx = ssl.create_default_context(cafile=tls.ca_file or None, cadata=tls.ca or None)
        if tls.cert_file or tls.cert:
            if tls.cert:
                raise ClientConfigError("inline tls_config cert/key are not supported by Narthex; use files")
            ctx.load_cert_chain(tls.cert_file, tls.key_file or None)
    except OSError as exc:
        raise ClientConfigError(f"unable to load TLS configuration: {exc}") from None
    except ssl.SSLError as exc:
        raise ClientConfigError(f"unable to use specified TLS configuration: {exc}") from None
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.min_version:
        ctx.minimum_version = _TLS_VERSIONS[tls.min_version]
    if tls.max_version:
        ctx.maximum_version = _TLS_VERSIONS[tls.max_version]
    return ctx


class ClientSettings:
    """The request options of one HTTP client configuration (a scrape job or an SD config)."""

    def __init__(self, cfg: HTTPClientFields) -> None:
        self.cfg = cfg
        self.ssl = build_ssl_context(cfg.tls_config)
        self.server_name = cfg.tls_config.server_name or None
        self.proxy = cfg.proxy_url or None
        self.no_proxy = [p.strip() for p in cfg.no_proxy.split(",") if p.strip()]
        self.allow_redirects = cfg.follow_redirects
        self.proxy_headers = {
            name: ", ".join(str(v) for v in values) for name, values in cfg.proxy_connect_header.items()
        }
        self.oauth2: OAuth2Token | None = None
        if cfg.oauth2 is not None:
            self.oauth2 = OAuth2Token(cfg.oauth2, build_ssl_context(cfg.oauth2.tls_config), _read_secret)

    async def request_headers(self, session: aiohttp.ClientSession) -> dict[str, str]:
        """:meth:`headers` plus an OAuth 2.0 token when configured; raises :class:`ClientConfigError`."""
        out = self.headers()
        if self.oauth2 is not None:
            try:
                out["Authorization"] = await self.oauth2.authorization(session)
            except OAuth2Error as exc:
                raise ClientConfigError(str(exc)) from None
        return out

    def headers(self) -> dict[str, str]:
        """Authentication and configured headers for one request (credential files are re-read)."""
        cfg = self.cfg
        out: dict[str, str] = {}
        for name, header in (cfg.http_headers or {}).items():
            values = [*header.values, *(str(s) for s in header.secrets)]
            values += [_read_secret(path, "header") for path in header.files]
            if values:
                out[name] = ", ".join(values)
        if cfg.basic_auth is not None:
            ba = cfg.basic_auth
            user = _read_secret(ba.username_file, "basic auth username") if ba.username_file else ba.username
            password = (
                _read_secret(ba.password_file, "basic auth password")
                if ba.password_file
                else str(ba.password)
            )
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            out["Authorization"] = f"Basic {token}"
        elif cfg.authorization is not None:
            auth = cfg.authorization
            creds = (
                _read_secret(auth.credentials_file, "authorization credentials")
                if auth.credentials_file
                else str(auth.credentials)
            )
            out["Authorization"] = f"{auth.type or 'Bearer'} {creds}".rstrip()
        return out

    def proxy_for(self, url: str) -> str | None:
        """The proxy to use for ``url``: ``proxy_url`` unless ``no_proxy`` matches, or the
        environment's (``HTTP_PROXY``, ``NO_PROXY``...) with ``proxy_from_environment``."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if self.cfg.proxy_from_environment:
            if urllib.request.proxy_bypass_environment(host):
                return None
            return urllib.request.getproxies_environment().get(parts.scheme)
        if self.proxy and self.no_proxy and _matches_no_proxy(host, self.no_proxy):
            return None
        return self.proxy

    def request_kwargs(self, url: str = "") -> dict[str, Any]:
        """Keyword arguments for a request to ``url`` besides headers (without a URL, ``proxy_url``
        applies unconditionally)."""
        kwargs: dict[str, Any] = {"ssl": self.ssl, "allow_redirects": self.allow_redirects}
        if self.server_name:
            kwargs["server_hostname"] = self.server_name
        proxy = self.proxy_for(url) if url else self.proxy
        if proxy:
            kwargs["proxy"] = proxy
            if self.proxy_headers:
                kwargs["proxy_headers"] = self.proxy_headers
        return kwargs


def _matches_no_proxy(host: str, patterns: list[str]) -> bool:
    """Whether ``host`` is excluded by ``no_proxy`` (host names, domain suffixes, IPs or CIDRs)."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    for pattern in patterns:
        if pattern == "*":
            return True
        if addr is not None:
            try:
                if addr in ipaddress.ip_network(pattern, strict=False):
                    return True
            except ValueError:
                pass
            continue
        suffix = pattern.lstrip(".").lower()
        if host.lower() == suffix or host.lower().endswith("." + suffix):
            return True
    return False


def go_request_error(url: str, exc: BaseException) -> str:
    """An aiohttp failure worded as Go's ``*url.Error`` (``Get "url": dial tcp ...: connection refused``)."""
    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
        return f'Get "{url}": context deadline exceeded'
    if isinstance(exc, aiohttp.ClientConnectorError):
        host = f"{exc.host}:{exc.port}"
        os_error = exc.os_error
        if isinstance(os_error, ConnectionRefusedError):
            return f'Get "{url}": dial tcp {host}: connect: connection refused'
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return f'Get "{url}": dial tcp: lookup {exc.host}: no such host'
        reason = (getattr(os_error, "strerror", None) or str(os_error)).lower()
        return f'Get "{url}": dial tcp {host}: connect: {reason}'
    if isinstance(exc, aiohttp.TooManyRedirects):
        return f'Get "{url}": stopped after 10 redirects'
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f'Get "{url}": EOF'
    text = str(exc) or type(exc).__name__
    return f'Get "{url}": {text}'
