"""Payloads of ``GET /api/v1/rules`` and ``GET /api/v1/alerts`` (the ``data`` member), as Prometheus
builds them: Go's JSON time format, values in ``strconv.FormatFloat(v, 'e', -1, 64)`` form.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

from narthex.model.matcher import Matcher
from narthex.promql.parser import ParseError, parse_metric_selector
from narthex.rules.alerting import Alert, AlertingRule
from narthex.rules.group import Group
from narthex.rules.manager import RuleManager
from narthex.util.gofmt import format_float

GO_ZERO_TIME = "0001-01-01T00:00:00Z"


class RulesParamError(ValueError):
    """A bad query parameter; ``param`` names it, ``kind`` is ``bad_data`` or ``invalid_param``."""

    def __init__(self, param: str, message: str, kind: str = "invalid_param") -> None:
        super().__init__(message)
        self.param = param
        self.kind = kind


def format_value(value: float) -> str:
    """``strconv.FormatFloat(v, 'e', -1, 64)``: ``1e+00``, ``1.5e-07``, ``NaN``, ``+Inf``."""
    return format_float(value, "e")


def format_time_ns(ns: int) -> str:
    """Go's ``time.Time`` JSON (RFC 3339, UTC, trimmed nanoseconds); Go's zero time for 0."""
    if ns == 0:
        return GO_ZERO_TIME
    whole, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def format_time_s(seconds: float) -> str:
    return format_time_ns(round(seconds * 1e9))


def format_time_ms(ms: int) -> str:
    return format_time_ns(ms * 1_000_000)


def alert_json(alert: Alert) -> dict[str, Any]:
    out: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "state": str(alert.state),
        "activeAt": format_time_ms(alert.active_at),
    }
    if alert.keep_firing_since is not None:
        out["keepFiringSince"] = format_time_ms(alert.keep_firing_since)
    out["value"] = format_value(alert.value)
    return out


def alerts_payload(manager: RuleManager) -> dict[str, Any]:
    """``{"alerts": [...]}``: the pending and firing alerts of every alerting rule."""
    return {"alerts": [alert_json(a) for rule in manager.alerting_rules() for a in rule.active_alerts()]}


def _values(params: Mapping[str, Any], name: str) -> list[str]:
    if hasattr(params, "getall"):
        return list(params.getall(name, []))
    value = params.get(name)
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _first(params: Mapping[str, Any], name: str) -> str:
    values = _values(params, name)
    return values[0] if values else ""


def _parse_bool(text: str) -> bool:
    if text in ("1", "t", "true"):
        return True
    if text in ("0", "f", "false"):
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def _matcher_sets(texts: Sequence[str]) -> list[list[Matcher]]:
    sets = []
    for text in texts:
        try:
            matchers = parse_metric_selector(text)
        except ParseError as exc:
            raise RulesParamError("match[]", str(exc), "bad_data") from None
        if all(m.matches("") for m in matchers):
            raise RulesParamError(
                "match[]", "match[] must contain at least one non-empty matcher", "bad_data"
            )
        sets.append(matchers)
    return sets


def _rule_matches(labels: Mapping[str, str], sets: list[list[Matcher]]) -> bool:
    if not sets:
        return True
    return any(all(m.matches(labels.get(m.name, "")) for m in matchers) for matchers in sets)


def next_token(file: str, name: str) -> str:
    return hashlib.sha256(f"{file};{name}".encode()).hexdigest()


def _rule_json(rule: Any, exclude_alerts: bool) -> dict[str, Any]:
    common = {
        "health": rule.health,
        "lastError": rule.last_error,
        "evaluationTime": rule.evaluation_duration_s,
        "lastEvaluation": format_time_s(rule.evaluation_timestamp_s),
    }
    if not rule.last_error:
        del common["lastError"]
    labels = dict(sorted(rule.labels.items()))
    if isinstance(rule, AlertingRule):
        alerts = None if exclude_alerts else [alert_json(a) for a in rule.active_alerts()]
        return {
            "state": str(rule.state()),
            "name": rule.name,
            "query": rule.query,
            "duration": rule.hold_ms / 1000,
            "keepFiringFor": rule.keep_firing_for_ms / 1000,
            "labels": labels,
            "annotations": dict(sorted(rule.annotations.items())),
            "alerts": alerts,
            **common,
            "type": "alerting",
        }
    return {"name": rule.name, "query": rule.query, "labels": labels, **common, "type": "recording"}


def _group_json(group: Group) -> dict[str, Any]:
    return {
        "name": group.name,
        "file": group.file,
        "rules": [],
        "interval": group.interval_ms / 1000,
        "limit": group.limit,
        "evaluationTime": group.evaluation_time_s,
        "lastEvaluation": format_time_s(group.last_evaluation_s),
    }


def rules_payload(manager: RuleManager, params: Mapping[str, Any]) -> dict[str, Any]:
    """``{"groups": [...]}`` filtered by ``type``, ``rule_name[]``, ``rule_group[]``, ``file[]``,
    ``match[]``, ``exclude_alerts`` and paginated by ``group_limit``/``group_next_token``.
    Raises :class:`RulesParamError` for invalid parameters."""
    names = set(_values(params, "rule_name[]"))
    group_names = set(_values(params, "rule_group[]"))
    files = set(_values(params, "file[]"))
    matcher_sets = _matcher_sets(_values(params, "match[]"))
    kind = _first(params, "type").lower()
    if kind not in ("", "alert", "record"):
        raise RulesParamError("type", f'not supported value "{kind}"')
    exclude_text = _first(params, "exclude_alerts").lower()
    try:
        exclude_alerts = _parse_bool(exclude_text) if exclude_text else False
    except ValueError as exc:
        raise RulesParamError("exclude_alerts", f"error converting exclude_alerts: {exc}") from None
    max_groups, token = _pagination(params)
    found_token = False
    out: list[dict[str, Any]] = []
    result: dict[str, Any] = {"groups": out}
    for group in manager.rule_groups():
        if max_groups > 0 and token and not found_token:
            if token != next_token(group.file, group.name):
                continue
            found_token = True
        if group_names and group.name not in group_names:
            continue
        if files and group.file not in files:
            continue
        entry = _group_json(group)
        for rule in group.rules:
            if not _rule_matches(rule.labels, matcher_sets):
                continue
            if names and rule.name not in names:
                continue
            if isinstance(rule, AlertingRule) and kind == "record":
                continue
            if not isinstance(rule, AlertingRule) and kind == "alert":
                continue
            entry["rules"].append(_rule_json(rule, exclude_alerts))
        if entry["rules"]:
            if max_groups > 0 and len(out) == max_groups:
                result["groupNextToken"] = next_token(group.file, group.name)
                break
            out.append(entry)
    if max_groups > 0 and token and not found_token:
        raise RulesParamError(
            "group_next_token", f"invalid group_next_token '{token}'. were rule groups changed?"
        )
    return result


def _pagination(params: Mapping[str, Any]) -> tuple[int, str]:
    limit_text = _first(params, "group_limit")
    token = _first(params, "group_next_token")
    if token and not limit_text:
        raise RulesParamError(
            "group_next_token", "group_limit needs to be present in order to paginate over the groups"
        )
    if not limit_text:
        return -1, ""
    try:
        limit = int(limit_text, 10)
        if not -(2**31) <= limit < 2**31:
            raise ValueError
    except ValueError:
        raise RulesParamError(
            "group_limit",
            "group_limit needs to be a valid number: "
            f'strconv.ParseInt: parsing "{limit_text}": invalid syntax',
        ) from None
    if limit <= 0:
        raise RulesParamError("group_limit", "group_limit needs to be greater than 0")
    return limit, token
