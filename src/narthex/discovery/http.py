"""``http_sd_configs``: target groups fetched from an HTTP(S) endpoint every ``refresh_interval``.

A failed refresh keeps the last groups; its error (worded as Prometheus's) is logged and kept on the
provider until a refresh succeeds. Groups carry ``__meta_url`` and have sources ``<url>:<index>``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from http import HTTPStatus

import aiohttp

from narthex.config.sd import HTTPSDConfig
from narthex.discovery.metrics import DiscoveryMetrics
from narthex.discovery.provider import Provider, Send
from narthex.discovery.targetgroup import TargetGroup, groups_from_json
from narthex.model.exposition import decode_body
from narthex.scrape.client import USER_AGENT, ClientConfigError, ClientSettings, go_request_error
from narthex.util.log import get_logger

log = get_logger("discovery")

URL_LABEL = "__meta_url"
_JSON_CONTENT_TYPE = re.compile(r'^(?i:application/json(;\s*charset=("utf-8"|utf-8))?)$')


def status_text(status: int, reason: str | None) -> str:
    """Go's ``resp.Status``: ``404 Not Found``."""
    if not reason:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    return f"{status} {reason}".rstrip()


class HTTPProvider(Provider):
    """One ``http_sd_configs`` entry, using the shared session."""

    mechanism = "http_sd_configs"

    def __init__(
        self,
        cfg: HTTPSDConfig,
        session: Callable[[], aiohttp.ClientSession],
        metrics: DiscoveryMetrics,
    ) -> None:
        super().__init__()
        self.url = cfg.url
        self.refresh_s = max(cfg.refresh_interval / 1000, 0.001)
        self.session = session
        self.metrics = metrics
        self.settings = ClientSettings(cfg)
        self._last_len = 0

    async def fetch(self) -> list[TargetGroup]:
        """One refresh; raises ValueError with Prometheus's wording on any failure."""
        headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "X-Prometheus-Refresh-Interval-Seconds": f"{self.refresh_s:g}",
        }
        try:
            headers.update(await self.settings.request_headers(self.session()))
        except ClientConfigError as exc:
            raise ValueError(f'Get "{self.url}": {exc}') from None
        try:
            async with asyncio.timeout(self.refresh_s):
                async with self.session().get(
                    self.url, headers=headers, auto_decompress=False, **self.settings.request_kwargs(self.url)
                ) as resp:
                    if resp.status != 200:
                        raise ValueError(
                            f"server returned HTTP status {status_text(resp.status, resp.reason)}"
                        )
                    ctype = resp.headers.get("Content-Type", "")
                    if not _JSON_CONTENT_TYPE.match(ctype.strip()):
                        raise ValueError(f'unsupported content type "{ctype}"')
                    body = decode_body(await resp.read(), resp.headers.get("Content-Encoding", ""))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ValueError(go_request_error(self.url, exc)) from None
        groups = groups_from_json(body, self.url)
        for group in groups:
            group.labels[URL_LABEL] = self.url
        n = len(groups)
        groups.extend(TargetGroup(f"{self.url}:{i}") for i in range(n, self._last_len))
        self._last_len = n
        return groups

    async def run(self, send: Send) -> None:
        while True:
            try:
                groups = await self.fetch()
            except (ValueError, OSError) as exc:
                self.metrics.http_failures.inc()
                if self.error != str(exc):
                    log.error("Unable to refresh target groups", mechanism="http", url=self.url, err=exc)
                self.error = str(exc)
            else:
                self.error = None
                send(groups)
            await asyncio.sleep(self.refresh_s)
