"""One HTTP scrape (``targetScraper``): request headers, status check, body size limit, gzip.

Failures raise :class:`ScrapeFailure` worded as Prometheus's errors (``server returned HTTP status 404
Not Found``, ``Get "<url>": context deadline exceeded``, ``body size limit exceeded``...).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable

import aiohttp

from narthex.discovery.http import status_text
from narthex.model.exposition import BodySizeLimitError, decode_body
from narthex.scrape.client import USER_AGENT, ClientConfigError, ClientSettings, go_request_error

_CHUNK = 1 << 16


class ScrapeFailure(Exception):
    """The target could not be scraped; ``str()`` is the target's last error."""

    def __init__(self, message: str, body_size_limit: bool = False) -> None:
        super().__init__(message)
        self.body_size_limit = body_size_limit


class Scraper:
    """Fetches one target's metrics with its job's client settings over the shared session."""

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        url: str,
        settings: ClientSettings,
        accept: str,
        accept_encoding: str,
        timeout_s: float,
        body_size_limit: int,
    ) -> None:
        self.session = session
        self.url = url
        self.settings = settings
        self.timeout_s = timeout_s
        self.body_size_limit = body_size_limit
        self.headers = {
            "Accept": accept,
            "Accept-Encoding": accept_encoding,
            "User-Agent": USER_AGENT,
            "X-Prometheus-Scrape-Timeout-Seconds": f"{timeout_s:g}",
        }

    async def fetch(self) -> tuple[bytes, str]:
        """The decompressed body and its Content-Type; raises :class:`ScrapeFailure`."""
        try:
            headers = {**(await self.settings.request_headers(self.session())), **self.headers}
        except ClientConfigError as exc:
            raise ScrapeFailure(f'Get "{self.url}": {exc}') from None
        reading = False
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self.session().get(
                    self.url, headers=headers, auto_decompress=False, **self.settings.request_kwargs(self.url)
                ) as resp:
                    if resp.status != 200:
                        raise ScrapeFailure(
                            f"server returned HTTP status {status_text(resp.status, resp.reason)}"
                        )
                    reading = True
                    gzipped = resp.headers.get("Content-Encoding", "") == "gzip"
                    raw = await self._read(resp, 0 if gzipped else self.body_size_limit)
                    ctype = resp.headers.get("Content-Type", "")
        except TimeoutError:
            if reading:
                raise ScrapeFailure("context deadline exceeded") from None
            raise ScrapeFailure(go_request_error(self.url, TimeoutError())) from None
        except aiohttp.ClientError as exc:
            if reading:
                raise ScrapeFailure(str(exc) or "unexpected EOF") from None
            raise ScrapeFailure(go_request_error(self.url, exc)) from None
        if not gzipped:
            return raw, ctype
        try:
            return decode_body(raw, "gzip", self.body_size_limit), ctype
        except BodySizeLimitError:
            raise ScrapeFailure("body size limit exceeded", body_size_limit=True) from None
        except zlib.error:
            raise ScrapeFailure("gzip: invalid header") from None

    async def _read(self, resp: aiohttp.ClientResponse, limit: int) -> bytes:
        if limit <= 0:
            return await resp.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_CHUNK):
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                raise ScrapeFailure("body size limit exceeded", body_size_limit=True)
        return b"".join(chunks)
