"""Rule files (Prometheus's ``rulefmt``): groups of recording and alerting rules, parsed and validated
with upstream's error messages (``FILE: 5:15: group "g", rule 1, "name": could not parse expression...``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import yaml

from narthex.model.labels import METRIC_NAME, is_valid_label_name, is_valid_label_value, is_valid_metric_name
from narthex.promql.parser import DEFAULT_FEATURES, ParseError, parse_expr
from narthex.rules.template import ALERT_DEFS, Expander, TemplateParseError, alert_template_data
from narthex.rules.yamldecode import (
    AbortDecode,
    Decoder,
    Pos,
    YAMLError,
    compose,
    has_second_document,
    node_pos,
)
from narthex.util.log import get_logger

log = get_logger("rule manager")


@dataclass(slots=True)
class RuleSpec:
    """One rule as written: exactly one of ``record`` and ``alert`` is set in a valid file."""

    record: str = ""
    alert: str = ""
    expr: str = ""
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    record_pos: Pos = field(default_factory=Pos)
    alert_pos: Pos = field(default_factory=Pos)
    expr_pos: Pos = field(default_factory=Pos)

    @property
    def name(self) -> str:
        return self.alert or self.record


@dataclass(slots=True)
class GroupSpec:
    """One rule group as written."""

    name: str = ""
    interval_ms: int = 0
    query_offset_ms: int | None = None
    limit: int = 0
    rules: list[RuleSpec] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    pos: Pos = field(default_factory=Pos)


@dataclass(slots=True)
class RuleFile:
    groups: list[GroupSpec] = field(default_factory=list)

    @property
    def rule_count(self) -> int:
        return sum(len(g.rules) for g in self.groups)


def _decode_rule(dec: Decoder, node: yaml.Node) -> RuleSpec:
    rule = RuleSpec()

    def record(_k: yaml.Node, v: yaml.Node) -> None:
        rule.record, rule.record_pos = dec.string(v), node_pos(v)

    def alert(_k: yaml.Node, v: yaml.Node) -> None:
        rule.alert, rule.alert_pos = dec.string(v), node_pos(v)

    def expr(_k: yaml.Node, v: yaml.Node) -> None:
        rule.expr, rule.expr_pos = dec.string(v), node_pos(v)

    def for_(_k: yaml.Node, v: yaml.Node) -> None:
        rule.for_ms = dec.duration(v)

    def keep(_k: yaml.Node, v: yaml.Node) -> None:
        rule.keep_firing_for_ms = dec.duration(v)

    def labels(_k: yaml.Node, v: yaml.Node) -> None:
        rule.labels = dec.string_map(v)

    def annotations(_k: yaml.Node, v: yaml.Node) -> None:
        rule.annotations = dec.string_map(v)

    dec.struct(
        node,
        "rulefmt.Rule",
        {
            "record": record,
            "alert": alert,
            "expr": expr,
            "for": for_,
            "keep_firing_for": keep,
            "labels": labels,
            "annotations": annotations,
        },
    )
    return rule


def _decode_group(dec: Decoder, node: yaml.Node) -> GroupSpec:
    group = GroupSpec(pos=node_pos(node))

    def name(_k: yaml.Node, v: yaml.Node) -> None:
        group.name = dec.string(v)

    def interval(_k: yaml.Node, v: yaml.Node) -> None:
        group.interval_ms = dec.duration(v)

    def query_offset(_k: yaml.Node, v: yaml.Node) -> None:
        group.query_offset_ms = None if dec.is_null(v) else dec.duration(v)

    def limit(_k: yaml.Node, v: yaml.Node) -> None:
        group.limit = dec.integer(v)

    def rules(_k: yaml.Node, v: yaml.Node) -> None:
        group.rules = [_decode_rule(dec, r) for r in dec.sequence(v, "[]rulefmt.Rule")]

    def labels(_k: yaml.Node, v: yaml.Node) -> None:
        group.labels = dec.string_map(v)

    dec.struct(
        node,
        "rulefmt.RuleGroup",
        {
            "name": name,
            "interval": interval,
            "query_offset": query_offset,
            "limit": limit,
            "rules": rules,
            "labels": labels,
        },
    )
    return group


def decode_rule_file(text: str, ignore_unknown_fields: bool = False) -> RuleFile:
    """Decode the YAML structure (no semantic checks); raises :class:`YAMLError`."""
    root = compose(text)
    dec = Decoder(known_fields=not ignore_unknown_fields)
    out = RuleFile()

    def groups(_k: yaml.Node, v: yaml.Node) -> None:
        out.groups = [_decode_group(dec, g) for g in dec.sequence(v, "[]rulefmt.RuleGroup")]

    try:
        dec.struct(root, "rulefmt.RuleGroups", {"groups": groups})
    except AbortDecode as exc:
        raise YAMLError(str(exc)) from None
    dec.finish()
    return out


def template_parse_errors(rule: RuleSpec) -> list[str]:
    """Syntax errors of an alerting rule's label and annotation templates."""
    if not rule.alert:
        return []
    errors = []
    data = alert_template_data({}, {}, "", 0.0)
    for kind, mapping in (("label", rule.labels), ("annotation", rule.annotations)):
        for key, text in mapping.items():
            try:
                Expander(ALERT_DEFS + text, "__alert_" + rule.alert, data).parse_test()
            except TemplateParseError as exc:
                errors.append(f"{kind} {_go_quote(key)}: {exc}")
    return errors


def _go_quote(text: str) -> str:
    from narthex.promql.lexer import go_quote

    return go_quote(text)


@functools.lru_cache(maxsize=4096)
def _expr_error(expr: str, features: frozenset[str]) -> str:
    """The parse error of an expression ('' when valid); rule files often repeat expressions."""
    try:
        parse_expr(expr, features=features)
    except ParseError as exc:
        return str(exc)
    return ""


def _rule_errors(
    rule: RuleSpec, legacy: bool, features: frozenset[str]
) -> list[tuple[str, Pos | None, Pos | None]]:
    """(message, node position, alternative node position) of each problem of one rule."""
    out: list[tuple[str, Pos | None, Pos | None]] = []
    if rule.record and rule.alert:
        out.append(("only one of 'record' and 'alert' must be set", rule.record_pos, rule.alert_pos))
    if not rule.record and not rule.alert:
        out.append(("one of 'record' or 'alert' must be set", rule.record_pos, rule.alert_pos))
    if rule.expr == "":
        out.append(("field 'expr' must be set in rule", rule.expr_pos, None))
    else:
        error = _expr_error(rule.expr, features)
        if error:
            out.append((f"could not parse expression: {error}", rule.expr_pos, None))
    if rule.record:
        if rule.annotations:
            out.append(("invalid field 'annotations' in recording rule", rule.record_pos, None))
        if rule.for_ms:
            out.append(("invalid field 'for' in recording rule", rule.record_pos, None))
        if rule.keep_firing_for_ms:
            out.append(("invalid field 'keep_firing_for' in recording rule", rule.record_pos, None))
        if not is_valid_metric_name(rule.record, legacy):
            out.append((f"invalid recording rule name: {rule.record}", rule.record_pos, None))
        if "{" in rule.record or "}" in rule.record:
            out.append(
                (
                    f"braces present in the recording rule name; should it be in expr?: {rule.record}",
                    rule.record_pos,
                    None,
                )
            )
    for key, value in rule.labels.items():
        if not is_valid_label_name(key, legacy) or key == METRIC_NAME:
            out.append((f"invalid label name: {key}", None, None))
        if not is_valid_label_value(value):
            out.append((f"invalid label value: {value}", None, None))
    for key in rule.annotations:
        if not is_valid_label_name(key, legacy):
            out.append((f"invalid annotation name: {key}", None, None))
    out.extend((msg, None, None) for msg in template_parse_errors(rule))
    return out


def validate(
    rule_file: RuleFile, legacy: bool = False, features: frozenset[str] = DEFAULT_FEATURES
) -> list[str]:
    """Semantic checks of a decoded file, in upstream's order and wording."""
    errors: list[str] = []
    seen: set[str] = set()
    for group in rule_file.groups:
        if group.name == "":
            errors.append(f"{group.pos}: Groupname must not be empty")
        if group.name in seen:
            errors.append(f'{group.pos}: groupname: "{group.name}" is repeated in the same file')
        for key, value in group.labels.items():
            if not is_valid_label_name(key, legacy) or key == METRIC_NAME:
                errors.append(f"invalid label name: {key}")
            if not is_valid_label_value(value):
                errors.append(f"invalid label value: {value}")
        seen.add(group.name)
        for index, rule in enumerate(group.rules, start=1):
            for message, pos, alt in _rule_errors(rule, legacy, features):
                where = "".join(f"{p}: " for p in (pos, alt) if p is not None)
                errors.append(
                    f"{where}group {_go_quote(group.name)}, rule {index}, {_go_quote(rule.name)}: {message}"
                )
    return errors


def parse_rules(
    text: str,
    ignore_unknown_fields: bool = False,
    legacy: bool = False,
    features: frozenset[str] = DEFAULT_FEATURES,
) -> tuple[RuleFile | None, list[str]]:
    """Decode and validate; (file, []) when valid, (None or file, errors) otherwise."""
    try:
        rule_file = decode_rule_file(text, ignore_unknown_fields)
    except YAMLError as exc:
        message = str(exc)
        # Upstream decodes twice (values, then nodes); a syntax error is reported by both.
        return None, [message, message] if exc.syntax else [message]
    if has_second_document(text):
        log.warn("Multiple document yaml rules files are not supported, only the first document is processed")
    return rule_file, validate(rule_file, legacy, features)


def parse_rule_file(
    path: str,
    ignore_unknown_fields: bool = False,
    legacy: bool = False,
    features: frozenset[str] = DEFAULT_FEATURES,
) -> tuple[RuleFile | None, list[str]]:
    """Read and parse one rule file; errors are prefixed with the file name."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        return None, [f"{path}: open {path}: {reason}"]
    text = raw.decode("utf-8", "replace")
    rule_file, errors = parse_rules(text, ignore_unknown_fields, legacy, features)
    return rule_file, [f"{path}: {e}" for e in errors]
