"""Alerts as the notifier sends them, their Alertmanager API v2 JSON and alert relabeling."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from narthex.model.labels import Labels
from narthex.model.relabel import RelabelRule, relabel


@dataclass(frozen=True, slots=True)
class NotifierAlert:
    """One alert notification; times are ms since the epoch, 0 for unset."""

    labels: Labels
    annotations: Labels = ()
    starts_at: int = 0
    ends_at: int = 0
    generator_url: str = ""

    def name(self) -> str:
        return dict(self.labels).get("alertname", "")

    def resolved_at(self, ts_ms: int) -> bool:
        return self.ends_at != 0 and self.ends_at <= ts_ms

    def resolved(self) -> bool:
        return self.resolved_at(time.time_ns() // 1_000_000)


def format_datetime(ms: int) -> str:
    """``strfmt.DateTime`` JSON: RFC 3339 with milliseconds in UTC; Go's zero time when unset."""
    if ms == 0:
        return "0001-01-01T00:00:00.000Z"
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def to_api_v2(alerts: Iterable[NotifierAlert]) -> list[dict[str, Any]]:
    """``PostableAlerts`` for ``POST /api/v2/alerts``."""
    return [
        {
            "annotations": dict(a.annotations),
            "endsAt": format_datetime(a.ends_at),
            "startsAt": format_datetime(a.starts_at),
            "generatorURL": a.generator_url,
            "labels": dict(a.labels),
        }
        for a in alerts
    ]


def relabel_alerts(
    rules: list[RelabelRule], external_labels: Mapping[str, str], alerts: Iterable[NotifierAlert]
) -> list[NotifierAlert]:
    """Add external labels the alert lacks, apply ``alert_relabel_configs``; dropped alerts vanish."""
    out = []
    for alert in alerts:
        current = dict(alert.labels)
        for name, value in external_labels.items():
            if current.get(name, "") == "":
                current[name] = value
        new = relabel(current, rules) if rules else tuple(sorted((k, v) for k, v in current.items() if v))
        if new is None:
            continue
        out.append(alert if new == alert.labels else replace(alert, labels=new))
    return out
