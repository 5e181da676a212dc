"""``/federate``: the latest sample of every series matching any ``match[]``, in exposition format.

As upstream: samples come from the lookback window ending now, series whose latest sample is a
staleness marker are left out, series are grouped by metric name under ``# TYPE <name> untyped``,
every sample carries its millisecond timestamp, and the external labels (plus ``instance=""`` when
not configured) are appended to series that lack them. OpenMetrics is written when the Accept header
prefers it (upstream negotiates only the text and protobuf formats).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from narthex.model.labels import METRIC_NAME, Labels, is_valid_legacy_label_name, is_valid_legacy_metric_name
from narthex.promql.errors import ParseError
from narthex.promql.printer import format_float_g
from narthex.promql.value import is_stale
from narthex.util.log import get_logger
from narthex.web.api.core import compress, run_blocking
from narthex.web.api.params import parse_selectors

log = get_logger("web")

TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
OPENMETRICS_TYPE = "application/openmetrics-text; version={}; charset=utf-8; escaping=underscores"
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
_INVALID_NAME_CHAR = re.compile(r"[^a-zA-Z0-9_:]")


def negotiate(accept: str) -> str | None:
    """The OpenMetrics version when the Accept header asks for it before the text format, else None."""
    clauses = []
    for position, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        params = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 0.0
        clauses.append((-q, position, media, params.get("version", "")))
    for _, _, media, version in sorted(clauses):
        if media == "application/openmetrics-text" and version in ("", "0.0.1", "1.0.0"):
            return version or "0.0.1"
        if media in ("text/plain", "*/*", "text/*"):
            return None
    return None


def _escape_name(name: str, metric: bool) -> str:
    """Underscore escaping for names the classic formats cannot carry."""
    valid = is_valid_legacy_metric_name(name) if metric else is_valid_legacy_label_name(name)
    if valid:
        return name
    escaped = _INVALID_NAME_CHAR.sub("_", name) if metric else re.sub(r"[^a-zA-Z0-9_]", "_", name)
    return "_" + escaped if escaped[:1].isdigit() or not escaped else escaped


def _text_float(value: float) -> str:
    if value == 0:
        return "0"
    return format_float_g(value)


def _om_float(value: float) -> str:
    if value == 0:
        return "0.0"
    text = format_float_g(value)
    if math.isfinite(value) and "e" not in text and "." not in text:
        text += ".0"
    return text


def latest_samples(
    db: Any, selector_sets: list[list[Any]], mint: int, maxt: int
) -> list[tuple[Labels, int, float]]:
    """Each matching series' last sample in ``[mint, maxt]``, stale ones dropped, sorted by name."""
    querier = db.querier(mint, maxt)
    latest: dict[Labels, tuple[int, float]] = {}
    for matchers in selector_sets:
        for series in querier.select(matchers):
            labels = tuple(series.labels)
            if labels in latest or len(series.timestamps) == 0:
                continue
            latest[labels] = (int(series.timestamps[-1]), float(series.values[-1]))
    out = [(labels, t, v) for labels, (t, v) in sorted(latest.items()) if not is_stale(v)]
    out.sort(key=lambda s: dict(s[0]).get(METRIC_NAME, ""))
    return out


def render(samples: list[tuple[Labels, int, float]], external: dict[str, str], om_version: str | None) -> str:
    """The exposition text of the federated samples."""
    external = dict(external)
    external.setdefault("instance", "")
    external_names = sorted(external)
    om = om_version is not None
    lines: list[str] = []
    last_name: str | None = None
    for labels, t, v in samples:
        pairs = [(k, val) for k, val in labels if val != ""]
        name = next((val for k, val in pairs if k == METRIC_NAME), None)
        if name is None:
            log.warn("Ignoring nameless metric during federation", metric=str(dict(labels)))
            continue
        own = [(k, val) for k, val in pairs if k != METRIC_NAME]
        present = {k for k, _ in own}
        own.extend((k, external[k]) for k in external_names if k not in present)
        escaped = _escape_name(name, True)
        if name != last_name:
            lines.append(f"# TYPE {escaped} {'unknown' if om else 'untyped'}")
            last_name = name
        body = ",".join(f'{_escape_name(k, False)}="{val.translate(_ESCAPES)}"' for k, val in own)
        value = _om_float(v) if om else _text_float(v)
        stamp = _om_float(t / 1000) if om else str(t)
        lines.append(f"{escaped}{{{body}}} {value} {stamp}" if body else f"{escaped} {value} {stamp}")
    if om:
        lines.append("# EOF")
    return "".join(line + "\n" for line in lines)


def federation_handler(
    db: Callable[[], Any],
    external_labels: Callable[[], dict[str, str]],
    lookback_ms: int,
    now_ms: Callable[[], int],
) -> Callable[[web.Request], Any]:
    """The aiohttp handler for ``GET /federate``."""

    async def federate(request: web.Request) -> web.StreamResponse:
        try:
            selector_sets = parse_selectors(request.query.getall("match[]", []))
        except ParseError as exc:
            return web.Response(
                status=400,
                text=f"{exc}\n",
                content_type="text/plain",
                headers={"X-Content-Type-Options": "nosniff"},
            )
        storage = db()
        if storage is None:
            return web.Response(status=503, text="TSDB not ready\n", content_type="text/plain")
        now = now_ms()
        try:
            samples = await run_blocking(latest_samples, storage, selector_sets, now - lookback_ms, now)
        except Exception as exc:  # a storage failure: Prometheus answers 500 with the error text
            log.exception("Federation failed", err=exc)
            return web.Response(status=500, text=f"{exc}\n", content_type="text/plain")
        om_version = negotiate(request.headers.get("Accept", ""))
        body = render(samples, external_labels(), om_version)
        content_type = TEXT_TYPE if om_version is None else OPENMETRICS_TYPE.format(om_version)
        body_bytes = body.encode("utf-8", "surrogateescape")
        response = web.Response(body=body_bytes, headers={"Content-Type": content_type})
        compress(request, response)
        return response

    return federate
