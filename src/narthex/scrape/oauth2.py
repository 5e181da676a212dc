"""OAuth 2.0 client-credentials tokens for ``oauth2`` client settings (``clientcredentials``).

The token is fetched from ``token_url`` (client id and secret as basic auth, ``scopes`` and
``endpoint_params`` in the form), cached, and refreshed ten seconds before it expires.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from narthex.config.http import OAuth2

EXPIRY_DELTA_S = 10.0


class OAuth2Error(ValueError):
    """No token could be obtained; ``str()`` is worded as Go's oauth2 package."""


class OAuth2Token:
    """Caches the access token of one ``oauth2`` configuration."""

    def __init__(self, cfg: OAuth2, ssl: Any, read_secret: Any) -> None:
        self.cfg = cfg
        self.ssl = ssl
        self.read_secret = read_secret
        self._header = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def authorization(self, session: aiohttp.ClientSession) -> str:
        """The ``Authorization`` header value, fetching a token when needed."""
        async with self._lock:
            if self._header and (self._expires == 0 or time.monotonic() < self._expires - EXPIRY_DELTA_S):
                return self._header
            await self._fetch(session)
            return self._header

    async def _fetch(self, session: aiohttp.ClientSession) -> None:
        cfg = self.cfg
        secret = (
            self.read_secret(cfg.client_secret_file, "oauth2 client secret")
            if cfg.client_secret_file
            else str(cfg.client_secret)
        )
        form = {"grant_type": "client_credentials", **cfg.endpoint_params}
        if cfg.scopes:
            form["scope"] = " ".join(cfg.scopes)
        basic = base64.b64encode(
            f"{quote(cfg.client_id, safe='')}:{quote(secret, safe='')}".encode()
        ).decode()
        headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}
        kwargs: dict[str, Any] = {"ssl": self.ssl}
        if cfg.proxy_url:
            kwargs["proxy"] = cfg.proxy_url
        try:
            async with session.post(cfg.token_url, data=form, headers=headers, **kwargs) as resp:
                body = await resp.read()
                if resp.status < 200 or resp.status > 299:
                    text = body.decode("utf-8", "replace")
                    raise OAuth2Error(
                        f"oauth2: cannot fetch token: {resp.status} {resp.reason}\nResponse: {text}"
                    )
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = None
        except aiohttp.ClientError as exc:
            raise OAuth2Error(f'oauth2: cannot fetch token: Post "{cfg.token_url}": {exc}') from None
        if not isinstance(data, dict) or not data.get("access_token"):
            raise OAuth2Error("oauth2: server response missing access_token")
        token_type = str(data.get("token_type") or "Bearer")
        if token_type.lower() == "bearer":
            token_type = "Bearer"
        self._header = f"{token_type} {data['access_token']}"
        expires_in = data.get("expires_in")
        self._expires = time.monotonic() + float(expires_in) if expires_in else 0.0
