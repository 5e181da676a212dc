"""``--web.max-connections``: at most N connections are served at once, across all listeners.

Prometheus wraps its listener in ``netutil.LimitListener``: beyond the limit it stops accepting, so
further clients wait until a connection closes. asyncio cannot stop accepting, so a connection over
the limit is accepted but not read from (its transport is paused) until a slot frees; the oldest
waiting connection is served first. Either way the client waits and no request beyond the limit
is processed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web


class ConnectionLimiter:
    """Counts served connections; connections over ``limit`` wait, paused, in arrival order."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._waiting: deque[_Limited] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def wrap(self, factory: Callable[[], asyncio.BaseProtocol]) -> Callable[[], asyncio.BaseProtocol]:
        """A protocol factory whose connections count against the limit."""
        return lambda: _Limited(self, factory())

    def _arrived(self, conn: _Limited) -> bool:
        """Take a slot for ``conn`` if one is free; otherwise queue it (False)."""
        if self.active < self.limit:
            self.active += 1
            return True
        self._waiting.append(conn)
        return False

    def _left(self, conn: _Limited) -> None:
        if conn.served:
            self.active -= 1
        else:
            self._waiting.remove(conn)
            return
        while self._waiting and self.active < self.limit:
            self.active += 1
            self._waiting.popleft().serve()


class _Limited(asyncio.Protocol):
    """Forwards every protocol event to aiohttp's handler; holds the transport paused while waiting."""

    def __init__(self, limiter: ConnectionLimiter, inner: Any) -> None:
        self._limiter = limiter
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self.served = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._inner.connection_made(transport)
        if self._limiter._arrived(self):
            self.served = True
        else:
            transport.pause_reading()  # type: ignore[attr-defined]

    def serve(self) -> None:
        self.served = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._limiter._left(self)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class LimitedTCPSite(web.TCPSite):
    """A TCPSite whose connections go through a shared :class:`ConnectionLimiter`."""

    def __init__(self, runner: web.BaseRunner, limiter: ConnectionLimiter, *args: Any, **kwargs: Any) -> None:
        super().__init__(runner, *args, **kwargs)
        self._limiter = limiter

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._limiter.wrap(server),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
