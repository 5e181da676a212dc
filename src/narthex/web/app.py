"""The HTTP server: one aiohttp application that the lifecycle endpoints, API, UI and receivers extend."""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from narthex.model.regex import compile_regex
from narthex.util.log import get_logger
from narthex.web.connlimit import ConnectionLimiter, LimitedTCPSite
from narthex.web.metrics import WebMetrics
from narthex.web.webconfig import WebConfig

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_HANDLER_KEY = web.AppKey("narthex_handler_name", dict)
MAX_BODY_BYTES = 64 << 20

log = get_logger("web")


class ReadyState(enum.IntEnum):
    NOT_READY = 0
    READY = 1
    STOPPING = 2


@dataclass
class WebOptions:
    """What the web layer needs from the command line."""

    listen_addresses: list[str]
    external_url: str
    route_prefix: str = "/"
    enable_lifecycle: bool = False
    enable_admin_api: bool = False
    cors_origin: str = ".*"
    read_timeout_s: float = 300.0
    max_connections: int = 512
    web_config: WebConfig = field(default_factory=WebConfig)
    app_name: str = "Prometheus Server"


class WebHandler:
    """Owns the aiohttp app, its listeners, the readiness state and cross-cutting middleware."""

    def __init__(self, options: WebOptions, registry: CollectorRegistry) -> None:
        self.options = options
        self.registry = registry
        self.metrics = WebMetrics(registry)
        self.state = ReadyState.NOT_READY
        self.metrics.ready.set(0)
        self._cors = compile_regex(options.cors_origin)
        self._auth_cache: set[tuple[str, bytes]] = set()
        self._runners: list[web.AppRunner] = []
        self.connections = ConnectionLimiter(options.max_connections)  # across all listeners
        self.app = web.Application(
            middlewares=[self._instrument, self._security], client_max_size=MAX_BODY_BYTES
        )
        self.app[_HANDLER_KEY] = {}
        self.add_route("GET", "/metrics", self._serve_metrics, gated=False)
        prefix = options.route_prefix
        if prefix != "/":
            self.app.router.add_get("/", self._redirect_to_prefix)

    # Routing --------------------------------------------------------------------------------------------

    def path(self, route: str) -> str:
        """The served path of a route: the route prefix joined to it."""
        prefix = self.options.route_prefix.rstrip("/")
        return prefix + route

    def add_route(self, method: str, route: str, handler: Handler, *, gated: bool = True) -> None:
        """Serve ``route`` (under the route prefix); gated routes answer 503 until the server is ready."""
        wrapped = self._ready_gate(handler) if gated else handler
        if method == "GET":
            resource_route = self.app.router.add_get(self.path(route), wrapped, allow_head=True)
        else:
            resource_route = self.app.router.add_route(method, self.path(route), wrapped)
        self.app[_HANDLER_KEY][id(resource_route.resource)] = route

    async def _redirect_to_prefix(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(self.path("/"))

    def _ready_gate(self, handler: Handler) -> Handler:
        async def gated(request: web.Request) -> web.StreamResponse:
            if self.state is ReadyState.READY:
                return await handler(request)
            stopping = "true" if self.state is ReadyState.STOPPING else "false"
            return web.Response(
                status=503, text="Service Unavailable", headers={"X-Prometheus-Stopping": stopping}
            )

        return gated

    def set_state(self, state: ReadyState) -> None:
        self.state = state
        self.metrics.ready.set(1 if state is ReadyState.READY else 0)

    # Middleware -----------------------------------------------------------------------------------------

    @web.middleware
    async def _instrument(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        resource = request.match_info.route.resource
        name = self.app[_HANDLER_KEY].get(id(resource)) if resource is not None else None
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        if name is not None:
            size = response.content_length or 0
            self.metrics.observe(name, response.status, time.perf_counter() - start, size)
        if isinstance(response, web.HTTPException):
            raise response
        return response

    @web.middleware
    async def _security(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        config = self.options.web_config
        if config.users and not await self._authorized(request, config):
            return web.Response(status=401, text="Unauthorized\n", headers={"WWW-Authenticate": "Basic"})
        response = await handler(request)
        for key, value in config.headers.items():
            response.headers[key] = value
        if request.path.startswith(self.path("/api/")):
            self._set_cors(request, response)
        return response

    async def _authorized(self, request: web.Request, config: WebConfig) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        key = (user, hashlib.sha256(password.encode()).digest())
        if key in self._auth_cache:
            return True
        ok = await asyncio.get_running_loop().run_in_executor(None, config.check_password, user, password)
        if ok:
            self._auth_cache.add(key)
        return ok

    def _set_cors(self, request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin is None or not self._cors.matches(origin):
            return
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Headers"] = "Accept, Authorization, Content-Type, Origin"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Expose-Headers"] = "Date"
        response.headers["Vary"] = "Origin"

    # Handlers -------------------------------------------------------------------------------------------

    async def _serve_metrics(self, request: web.Request) -> web.StreamResponse:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = encoder(self.registry)
        response = web.Response(body=body, headers={"Content-Type": content_type})
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            response.enable_compression()
        return response

    # Listeners ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on every address; raises OSError when an address cannot be bound."""
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, keepalive_timeout=self.options.read_timeout_s
        )
        await runner.setup()
        self._runners.append(runner)
        for address in self.options.listen_addresses:
            host, _, port = address.rpartition(":")
            host = host.strip("[]") or None
            log.info("Start listening for connections", address=address)
            site = LimitedTCPSite(
                runner, self.connections, host, int(port), ssl_context=self.options.web_config.ssl_context
            )
            await site.start()
        if self.options.web_config.ssl_context is not None:
            log.info("TLS is enabled.", http2=False)

    @property
    def bound_ports(self) -> list[int]:
        """The ports actually bound (useful when listening on port 0)."""
        ports = []
        for runner in self._runners:
            for server in runner.sites:
                sockets = getattr(getattr(server, "_server", None), "sockets", None) or []
                ports.extend(sock.getsockname()[1] for sock in sockets)
        return ports

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
