"""Targets, scrape pools, metric metadata, rules, alerts and Alertmanagers.

Target state and metadata come from the scrape manager (``active_targets()``, ``dropped_targets()``,
``dropped_target_counts()``, ``target_metadata()`` and its ``pools``). Rules are not evaluated yet,
and rule state from the rule manager (``narthex.rules.api`` builds those payloads).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from narthex.model.matcher import Matcher
from narthex.promql.errors import ParseError
from narthex.promql.parser import parse_metric_selector
from narthex.web.api.core import ApiDeps, ApiResult
from narthex.web.api.jsonout import RawJSON, labels_json
from narthex.web.api.params import Form, bad_data, int_param, invalid_param
from narthex.web.api.status import rfc3339nano

_LOCALHOSTS = ("127.0.0.1", "localhost", "::1")


def _state(manager: Any, method: str) -> Any:
    """A scrape-manager accessor's value; empty while there is no manager (or no such accessor)."""
    func = getattr(manager, method, None)
    return func() if callable(func) else {}


def scrape_pool_names(manager: Any) -> list[str]:
    return sorted(getattr(manager, "pools", None) or {})


def global_url(url: str, external_url: str, listen_address: str) -> str:
    """``getGlobalURL``: a localhost target's URL as reachable from elsewhere."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    if host not in _LOCALHOSTS:
        return url
    external = urlsplit(external_url)
    own_port = listen_address.rpartition(":")[2]
    if port is not None and str(port) == own_port:
        return urlunsplit((external.scheme, external.netloc, parts.path, parts.query, parts.fragment))
    netloc = external.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if port is not None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _labels(mapping: dict[str, str]) -> RawJSON:
    """A label set as ``labels.Labels`` is written upstream: sorted, without HTML escaping."""
    return RawJSON(labels_json(tuple(sorted(mapping.items()))))


def _active_target(target: Any, pool: str, deps: ApiDeps) -> dict[str, Any]:
    url = target.url
    return {
        "discoveredLabels": _labels(target.discovered),
        "labels": _labels(dict(target.public_labels)),
        "scrapePool": pool,
        "scrapeUrl": url,
        "globalUrl": global_url(url, deps.external_url, deps.listen_address),
        "lastError": target.last_error or "",
        "lastScrape": rfc3339nano(target.last_scrape),
        "lastScrapeDuration": float(target.last_scrape_duration),
        "health": target.health,
        "scrapeInterval": target.get("__scrape_interval__"),
        "scrapeTimeout": target.get("__scrape_timeout__"),
    }


async def targets(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``GET /api/v1/targets?state=active|dropped|any&scrapePool=``, read from the URL only."""
    manager = deps.scrape()
    pool_filter = form.url_get("scrapePool")
    state = form.url_get("state").lower()
    show_active = state in ("", "any", "active")
    show_dropped = state in ("", "any", "dropped")
    data: dict[str, Any] = {"activeTargets": [], "droppedTargets": [], "droppedTargetCounts": None}
    if show_active:
        active = _state(manager, "active_targets")
        data["activeTargets"] = [
            _active_target(t, pool, deps)
            for pool in sorted(active)
            if not pool_filter or pool == pool_filter
            for t in active[pool]
        ]
    if show_dropped:
        dropped = _state(manager, "dropped_targets")
        data["droppedTargets"] = [
            {"discoveredLabels": _labels(t.discovered), "scrapePool": pool}
            for pool in sorted(dropped)
            if not pool_filter or pool == pool_filter
            for t in dropped[pool]
        ]
        data["droppedTargetCounts"] = dict(_state(manager, "dropped_target_counts"))
    # Narthex extension (clients ignore unknown keys): why a job may be missing targets, e.g. a
    # service discovery mechanism Narthex does not implement yet.
    errors = {
        pool: errs
        for pool, errs in _state(manager, "discovery_errors").items()
        if not pool_filter or pool == pool_filter
    }
    if errors:
        data["discoveryErrors"] = errors
    return ApiResult(data)


async def scrape_pools(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``GET /api/v1/scrape_pools``."""
    return ApiResult({"scrapePools": scrape_pool_names(deps.scrape())})


def _meta_fields(md: Any) -> dict[str, str]:
    return {"type": md.type or "unknown", "help": md.help, "unit": md.unit}


def _target_metadata(manager: Any) -> list[tuple[Any, dict[str, Any]]]:
    func = getattr(manager, "target_metadata", None)
    return list(func()) if callable(func) else []


async def targets_metadata(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``GET /api/v1/targets/metadata?match_target=&metric=&limit=``."""
    limit = int_param(form, "limit", "limit must be a number")
    match_target = form.get("match_target")
    matchers: list[Matcher] = []
    if match_target:
        try:
            matchers = parse_metric_selector(match_target)
        except ParseError as exc:
            raise invalid_param("match_target", str(exc)) from None
    metric = form.get("metric")
    out: list[dict[str, Any]] = []
    for target, by_metric in _target_metadata(deps.scrape()):
        if 0 <= limit <= len(out):
            break
        labels = dict(target.public_labels)
        if matchers and not all(m.matches(labels.get(m.name, "")) for m in matchers):
            continue
        if metric:
            md = by_metric.get(metric)
            if md is not None:
                out.append({"target": _labels(labels), **_meta_fields(md)})
            continue
        out.extend(
            {"target": _labels(labels), "metric": name, **_meta_fields(md)} for name, md in by_metric.items()
        )
    return ApiResult(out)


async def metadata(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``GET /api/v1/metadata?limit=&limit_per_metric=&metric=``: distinct metadata per metric."""
    limit = int_param(form, "limit", "limit must be a number")
    per_metric = int_param(form, "limit_per_metric", "limit_per_metric must be a number")
    metric = form.get("metric")
    found: dict[str, dict[tuple[str, str, str], None]] = {}
    for _target, by_metric in _target_metadata(deps.scrape()):
        items = [(metric, by_metric[metric])] if metric and metric in by_metric else []
        for name, md in items if metric else by_metric.items():
            entries = found.setdefault(name, {})
            if per_metric > 0 and len(entries) >= per_metric:
                continue
            fields = _meta_fields(md)
            entries[(fields["type"], fields["help"], fields["unit"])] = None
    data: dict[str, list[dict[str, str]]] = {}
    for name, entries in found.items():
        if 0 <= limit <= len(data):
            break
        data[name] = [{"type": t, "help": h, "unit": u} for t, h, u in entries]
    return ApiResult(data)


class _NoRules:
    """The rule manager's view while none is running: no groups, no alerting rules."""

    def rule_groups(self) -> list[Any]:
        return []

    def alerting_rules(self) -> list[Any]:
        return []


async def rules(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``GET /api/v1/rules``: rule groups with their rules' state, filtered and paginated as upstream."""
    from narthex.rules.api import RulesParamError, rules_payload

    try:
        payload = rules_payload(deps.rules() or _NoRules(), form.values)
    except RulesParamError as exc:
        if exc.kind == "bad_data":
            raise bad_data(str(exc)) from None
        raise invalid_param(exc.param, str(exc)) from None
    for group in payload["groups"]:
        for rule in group["rules"]:
            _raw_label_maps(rule)
            for alert in rule.get("alerts") or ():
                _raw_label_maps(alert)
    return ApiResult(payload)


def _raw_label_maps(entry: dict[str, Any]) -> None:
    """Label sets are written like ``labels.Labels`` upstream: in order, without HTML escaping."""
    for key in ("labels", "annotations"):
        if key in entry:
            entry[key] = _labels(entry[key])


async def alerts(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``GET /api/v1/alerts``: the pending and firing alerts of every alerting rule."""
    from narthex.rules.api import alerts_payload

    payload = alerts_payload(deps.rules() or _NoRules())
    for alert in payload["alerts"]:
        _raw_label_maps(alert)
    return ApiResult(payload)


async def alertmanagers(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``GET /api/v1/alertmanagers``: the discovered Alertmanager URLs."""
    active, dropped = deps.alertmanagers()
    return ApiResult(
        {
            "activeAlertmanagers": [{"url": u} for u in active],
            "droppedAlertmanagers": [{"url": u} for u in dropped],
        }
    )
