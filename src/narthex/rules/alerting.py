"""Alerting rules: per label set, inactive -> pending -> firing -> resolved, with ``for`` and
``keep_firing_for``; the ``ALERTS`` and ``ALERTS_FOR_STATE`` series; templated labels and annotations.

Times are integer milliseconds since the epoch; None means "not set".
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from narthex.model.labels import METRIC_NAME, Labels
from narthex.promql.ast import Expr
from narthex.rules.rule import QueryFunc, RuleBase, RuleSample
from narthex.rules.template import Sample as TemplateSample
from narthex.rules.template import expand_alert_template
from narthex.util.log import get_logger

log = get_logger("rule manager")

ALERT_METRIC = "ALERTS"
ALERT_FOR_STATE_METRIC = "ALERTS_FOR_STATE"
ALERT_NAME_LABEL = "alertname"
ALERT_STATE_LABEL = "alertstate"
RESOLVED_RETENTION_MS = 15 * 60 * 1000


class AlertState(enum.IntEnum):
    """Ordered so that ``max()`` gives a rule's overall state."""

    INACTIVE = 0
    PENDING = 1
    FIRING = 2

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(slots=True)
class Alert:
    """One alert instance of a rule."""

    labels: Labels
    annotations: Labels
    state: AlertState
    value: float
    active_at: int
    fired_at: int | None = None
    resolved_at: int | None = None
    last_sent_at: int | None = None
    valid_until: int | None = None
    keep_firing_since: int | None = None

    def needs_sending(self, ts: int, resend_delay_ms: int) -> bool:
        if self.state == AlertState.PENDING:
            return False
        if self.last_sent_at is None:
            return True
        if self.resolved_at is not None and self.resolved_at > self.last_sent_at:
            return True
        return self.last_sent_at + resend_delay_ms < ts


class DuplicateAlertLabelSetError(Exception):
    def __init__(self) -> None:
        super().__init__("vector contains metrics with the same labelset after applying alert labels")


NotifyFunc = Callable[[str, list[Alert]], None]
TemplateQuery = Callable[[str, float], Any]


def _sorted_labels(mapping: Mapping[str, str]) -> Labels:
    return tuple(sorted((k, v) for k, v in mapping.items() if v != ""))


class AlertingRule(RuleBase):
    kind = "alerting"

    def __init__(
        self,
        name: str,
        expr: Expr,
        hold_ms: int,
        keep_firing_for_ms: int,
        labels: dict[str, str],
        annotations: dict[str, str],
        external_labels: dict[str, str],
        external_url: str,
        restored: bool,
    ) -> None:
        super().__init__(name, expr, labels)
        self.hold_ms = hold_ms
        self.keep_firing_for_ms = keep_firing_for_ms
        self.annotations = dict(annotations)
        self.external_labels = dict(external_labels)
        self.external_url = external_url
        self.restored = restored
        self.active: dict[Labels, Alert] = {}

    # -- evaluation -------------------------------------------------------------------------------

    def _expander(
        self, sample_labels: Labels, value: float, ts: int, query: QueryFunc
    ) -> Callable[[str], str]:
        def template_query(text: str, at_s: float) -> list[TemplateSample]:
            return [TemplateSample(dict(lbls), v) for lbls, v in query(text, round(at_s * 1000))]

        label_map = dict(sample_labels)

        def expand(text: str) -> str:
            if "{{" not in text:
                return text
            result = expand_alert_template(
                text,
                label_map,
                self.external_labels,
                self.external_url,
                value,
                ts / 1000.0,
                template_query,
                alert_name=self.name,
            )
            if result.startswith("<error expanding template: "):
                log.warn("Expanding alert template failed", alert=self.name, err=result)
            return result

        return expand

    def eval(self, ts: int, query_offset_ms: int, query: QueryFunc, limit: int) -> list[RuleSample]:
        """One evaluation at ``ts``; returns the ALERTS/ALERTS_FOR_STATE samples to store."""
        results = query(self.expr, ts - query_offset_ms)
        fresh: dict[Labels, Alert] = {}
        for sample_labels, value in results:
            expand = self._expander(sample_labels, value, ts, query)
            lbls = {k: v for k, v in sample_labels if k != METRIC_NAME}
            for name, text in self.labels.items():
                lbls[name] = expand(text)
            lbls[ALERT_NAME_LABEL] = self.name
            annotations = _sorted_labels({k: expand(v) for k, v in self.annotations.items()})
            key = _sorted_labels(lbls)
            if key in fresh:
                raise DuplicateAlertLabelSetError()
            fresh[key] = Alert(key, annotations, AlertState.PENDING, value, ts)
        for key, alert in fresh.items():
            current = self.active.get(key)
            if current is not None and current.state != AlertState.INACTIVE:
                current.value = alert.value
                current.annotations = alert.annotations
                continue
            self.active[key] = alert

        out: list[RuleSample] = []
        active_pending = 0
        t_out = ts - query_offset_ms
        for key, alert in list(self.active.items()):
            if key not in fresh:
                keep_firing = False
                if alert.state == AlertState.FIRING and self.keep_firing_for_ms > 0:
                    if alert.keep_firing_since is None:
                        alert.keep_firing_since = ts
                    keep_firing = ts - alert.keep_firing_since < self.keep_firing_for_ms
                if alert.state == AlertState.PENDING or (
                    alert.resolved_at is not None and ts - alert.resolved_at > RESOLVED_RETENTION_MS
                ):
                    del self.active[key]
                if alert.state != AlertState.INACTIVE and not keep_firing:
                    alert.state = AlertState.INACTIVE
                    alert.resolved_at = ts
                if not keep_firing:
                    continue
            else:
                alert.keep_firing_since = None
            active_pending += 1
            if alert.state == AlertState.PENDING and ts - alert.active_at >= self.hold_ms:
                alert.state = AlertState.FIRING
                alert.fired_at = ts
            if alert.state == AlertState.FIRING and ts - alert.active_at < self.hold_ms:
                alert.state = AlertState.PENDING
                alert.fired_at = alert.last_sent_at = alert.keep_firing_since = None
            if self.restored:
                out.append(self.alerts_sample(alert, t_out))
                out.append(self.for_state_sample(alert, t_out, float(alert.active_at // 1000)))
        if limit > 0 and active_pending > limit:
            self.active = {}
            raise RuntimeError(f"exceeded limit of {limit} with {active_pending} alerts")
        return out

    # -- output series ----------------------------------------------------------------------------

    def _series_labels(self, alert: Alert | None, metric: str) -> dict[str, str]:
        lbls = dict(self.labels)
        if alert is not None:
            lbls.update(alert.labels)
        lbls[METRIC_NAME] = metric
        lbls[ALERT_NAME_LABEL] = self.name
        return lbls

    def alerts_sample(self, alert: Alert, t: int) -> RuleSample:
        lbls = self._series_labels(alert, ALERT_METRIC)
        lbls[ALERT_STATE_LABEL] = str(alert.state)
        return RuleSample(_sorted_labels(lbls), t, 1.0)

    def for_state_sample(self, alert: Alert | None, t: int, value: float) -> RuleSample:
        return RuleSample(_sorted_labels(self._series_labels(alert, ALERT_FOR_STATE_METRIC)), t, value)

    def for_state_matchers(self) -> list[tuple[str, str]]:
        """Equality matchers selecting this rule's ALERTS_FOR_STATE series (templated labels skipped)."""
        return [(k, v) for k, v in self.for_state_sample(None, 0, 0).labels if "{{" not in v]

    # -- notification -----------------------------------------------------------------------------

    def alerts_to_send(self, ts: int, resend_delay_ms: int, interval_ms: int) -> list[Alert]:
        """Copies of the alerts due for (re)sending, marked as sent at ``ts``."""
        out = []
        for alert in list(self.active.values()):
            if alert.needs_sending(ts, resend_delay_ms):
                alert.last_sent_at = ts
                alert.valid_until = ts + 4 * max(interval_ms, resend_delay_ms)
                out.append(
                    Alert(
                        alert.labels,
                        alert.annotations,
                        alert.state,
                        alert.value,
                        alert.active_at,
                        alert.fired_at,
                        alert.resolved_at,
                        alert.last_sent_at,
                        alert.valid_until,
                        alert.keep_firing_since,
                    )
                )
        return out

    # -- state ------------------------------------------------------------------------------------

    # The HTTP API reads these while an evaluation thread updates ``active``: take a snapshot first
    # (``list()`` of a dict view is atomic under the GIL).

    def state(self) -> AlertState:
        return max((a.state for a in list(self.active.values())), default=AlertState.INACTIVE)

    def active_alerts(self) -> list[Alert]:
        """Pending and firing alerts (resolved ones are kept only for resending)."""
        return [a for a in list(self.active.values()) if a.state != AlertState.INACTIVE]
