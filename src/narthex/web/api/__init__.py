"""Prometheus's HTTP API (``/api/v1``) and ``/federate`` on the shared aiohttp application."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from narthex.web.api import admin, metadata, query, status, targets
from narthex.web.api.core import ApiDeps, ApiResult, api_handler
from narthex.web.api.params import Form
from narthex.web.app import WebHandler
from narthex.web.federate import federation_handler

__all__ = ["ApiDeps", "register_api"]

Endpoint = Callable[[web.Request, Form, ApiDeps], Awaitable[ApiResult | None]]

_GET_POST = ("GET", "POST")
_ROUTES: tuple[tuple[str, tuple[str, ...], Endpoint], ...] = (
    ("/query", _GET_POST, query.query),
    ("/query_range", _GET_POST, query.query_range),
    ("/query_exemplars", _GET_POST, query.query_exemplars),
    ("/format_query", _GET_POST, query.format_query),
    ("/parse_query", _GET_POST, query.parse_query),
    ("/labels", _GET_POST, metadata.labels),
    ("/label/{name}/values", ("GET",), metadata.label_values),
    ("/series", _GET_POST, metadata.series),
    ("/scrape_pools", ("GET",), targets.scrape_pools),
    ("/targets", ("GET",), targets.targets),
    ("/targets/metadata", ("GET",), targets.targets_metadata),
    ("/alertmanagers", ("GET",), targets.alertmanagers),
    ("/metadata", ("GET",), targets.metadata),
    ("/status/config", ("GET",), status.config),
    ("/status/runtimeinfo", ("GET",), status.runtimeinfo),
    ("/status/buildinfo", ("GET",), status.buildinfo),
    ("/status/flags", ("GET",), status.flags),
    ("/status/tsdb", ("GET",), status.tsdb),
    ("/status/tsdb/blocks", ("GET",), status.tsdb_blocks),
    ("/alerts", ("GET",), targets.alerts),
    ("/rules", ("GET",), targets.rules),
    ("/admin/tsdb/delete_series", ("POST", "PUT"), admin.delete_series),
    ("/admin/tsdb/clean_tombstones", ("POST", "PUT"), admin.clean_tombstones),
    ("/admin/tsdb/snapshot", ("POST", "PUT"), admin.snapshot),
)
API_PREFIX = "/api/v1"


async def _options(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


async def _root(request: web.Request) -> web.StreamResponse:
    """``GET /``: Prometheus redirects to its UI; with no UI, a 200 page pointing at the API.

    Clients probe ``/`` to check that the server is up (prometheus-api-client's
    ``check_prometheus_connection`` wants a 2xx after redirects).
    """
    return web.Response(text="Narthex: the Prometheus HTTP API is served under /api/v1\n")


def register_api(handler: WebHandler, deps: ApiDeps) -> None:
    """Add every ``/api/v1`` route and ``/federate`` to the web handler."""
    for route, methods, endpoint in _ROUTES:
        wrapped = api_handler(functools.partial(_bind, endpoint, deps))
        for method in methods:
            handler.add_route(method, API_PREFIX + route, wrapped)
        handler.add_route("OPTIONS", API_PREFIX + route, _options)
    for route, endpoint in (
        ("/status/walreplay", status.walreplay),
        ("/notifications", status.notifications),
    ):
        ungated = api_handler(functools.partial(_bind, endpoint, deps))
        handler.add_route("GET", API_PREFIX + route, ungated, gated=False)
        handler.add_route("OPTIONS", API_PREFIX + route, _options, gated=False)

    def external_labels() -> dict[str, str]:
        cfg = deps.config()
        return dict(cfg.global_config.external_labels) if cfg is not None else {}

    handler.add_route("GET", "/", _root, gated=False)
    handler.add_route(
        "GET", "/federate", federation_handler(deps.db, external_labels, deps.lookback_delta_ms, deps.now_ms)
    )


async def _bind(endpoint: Endpoint, deps: ApiDeps, request: web.Request, form: Form) -> ApiResult | None:
    return await endpoint(request, form, deps)
