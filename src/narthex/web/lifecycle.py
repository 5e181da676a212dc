"""``/-/healthy``, ``/-/ready``, ``/-/reload`` and ``/-/quit`` with Prometheus's texts and status codes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from narthex.web.app import WebHandler

ReloadFn = Callable[[], Awaitable[str | None]]  # returns an error text, or None on success
QuitFn = Callable[[], bool]  # returns False when termination is already in progress

_ONLY_POST_PUT = "Only POST or PUT requests allowed"


def register_lifecycle(handler: WebHandler, reload: ReloadFn, quit_: QuitFn) -> None:
    """Add the lifecycle routes; reload and quit work only with ``--web.enable-lifecycle``."""
    name = handler.options.app_name

    async def healthy(request: web.Request) -> web.Response:
        return web.Response(text=f"{name} is Healthy.\n")

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text=f"{name} is Ready.\n")

    async def not_enabled(request: web.Request) -> web.Response:
        return web.Response(status=403, text="Lifecycle API is not enabled.")

    async def method_not_allowed(request: web.Request) -> web.Response:
        return web.Response(status=405, text=_ONLY_POST_PUT)

    async def do_reload(request: web.Request) -> web.Response:
        error = await reload()
        if error is not None:
            return web.Response(status=500, text=f"failed to reload config: {error}\n")
        return web.Response(text="")

    async def do_quit(request: web.Request) -> web.Response:
        if quit_():
            return web.Response(text="Requesting termination... Goodbye!")
        return web.Response(text="Termination already in progress.")

    handler.add_route("GET", "/-/healthy", healthy, gated=False)
    handler.add_route("GET", "/-/ready", ready)
    enabled = handler.options.enable_lifecycle
    for method in ("POST", "PUT"):
        handler.add_route(method, "/-/reload", do_reload if enabled else not_enabled, gated=False)
        handler.add_route(method, "/-/quit", do_quit if enabled else not_enabled, gated=False)
    handler.add_route("GET", "/-/reload", method_not_allowed, gated=False)
    handler.add_route("GET", "/-/quit", method_not_allowed, gated=False)
