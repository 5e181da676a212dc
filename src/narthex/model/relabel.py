"""Relabeling with Prometheus's semantics (``model/relabel``).

:class:`RelabelRule` is one ``relabel_configs``/``metric_relabel_configs`` entry built from plain values
and validated as Prometheus's ``Config.Validate`` does; :func:`relabel` applies a list of rules to a label
set. Regexes are fully anchored RE2 (:func:`narthex.model.regex.compile_regex`); replacement templates
expand ``$1``, ``${1}``, ``$name``, ``${name}`` and ``$$`` exactly like Go's ``Regexp.Expand`` (so ``$1x``
names the group ``1x``, which does not exist and expands to nothing). ``hashmod`` uses the last 8 bytes of
the MD5 of the joined source values as a big-endian integer, so shard numbers match Prometheus.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from narthex.model.labels import Labels, is_valid_label_name, is_valid_legacy_label_name
from narthex.model.regex import Regex, RegexError, compile_regex

__all__ = ["ACTIONS", "DEFAULT_REGEX", "RelabelRule", "expand_template", "relabel"]

ACTIONS = frozenset(
    {
        "replace",
        "keep",
        "drop",
        "keepequal",
        "dropequal",
        "hashmod",
        "labelmap",
        "labeldrop",
        "labelkeep",
        "lowercase",
        "uppercase",
    }
)
DEFAULT_REGEX = "(.*)"
DEFAULT_REPLACEMENT = "$1"
DEFAULT_SEPARATOR = ";"
_NEEDS_TARGET = frozenset({"replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal"})
_CASE_OR_EQUAL = frozenset({"lowercase", "uppercase", "keepequal", "dropequal"})
# relabelTargetLegacy: a legacy label name that may contain $1 / ${name} references (RE2, ASCII \w).
_LEGACY_TARGET = compile_regex(r"(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+")


def _valid_name(name: str, legacy: bool) -> bool:
    return is_valid_legacy_label_name(name) if legacy else is_valid_label_name(name)


@dataclass(frozen=True, slots=True)
class RelabelRule:
    """One relabeling rule. Defaults are Prometheus's; invalid rules raise ValueError on construction.

    ``name_validation`` is ``"utf8"`` (Prometheus 3's default) or ``"legacy"``; it governs which target
    label names are acceptable, both here and after template expansion.
    """

    source_labels: tuple[str, ...] = ()
    separator: str = DEFAULT_SEPARATOR
    regex: str = DEFAULT_REGEX
    modulus: int = 0
    target_label: str = ""
    replacement: str = DEFAULT_REPLACEMENT
    action: str = "replace"
    name_validation: str = "utf8"
    compiled: Regex = field(init=False, repr=False, compare=False)
    group_names: dict[str, int] = field(init=False, repr=False, compare=False)
    memo: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        action = self.action.lower() if isinstance(self.action, str) else self.action
        if action == "":
            raise ValueError("relabel action cannot be empty")
        if action not in ACTIONS:
            raise ValueError(f'unknown relabel action "{self.action}"')
        object.__setattr__(self, "action", action)
        object.__setattr__(self, "source_labels", tuple(self.source_labels))
        try:
            compiled = compile_regex(self.regex)
        except RegexError as exc:
            raise ValueError(str(exc)) from None
        object.__setattr__(self, "compiled", compiled)
        object.__setattr__(self, "group_names", compiled.group_names)
        object.__setattr__(self, "memo", {})
        self._validate()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RelabelRule:
        """From a YAML-style mapping (``source_labels``, ``regex``, ...); absent keys take defaults and an
        explicit null regex means the empty regex, as in Prometheus."""
        kwargs: dict[str, Any] = {k: v for k, v in data.items() if k in _FIELDS}
        if "regex" in data and data["regex"] is None:
            kwargs["regex"] = ""
        if kwargs.get("source_labels") is None:
            kwargs.pop("source_labels", None)
        return cls(**kwargs)

    def _validate(self) -> None:
        action, target = self.action, self.target_label
        if self.name_validation not in ("utf8", "legacy"):
            raise ValueError(
                "unknown relabel config name validation method specified, must be either '', 'legacy' or "
                f"'utf8', got {self.name_validation}"
            )
        legacy = self.name_validation == "legacy"
        if action == "hashmod" and self.modulus == 0:
            raise ValueError("relabel configuration for hashmod requires non-zero modulus")
        if self.modulus < 0 or self.modulus >= 1 << 64:
            raise ValueError(f"relabel modulus {self.modulus} is not a uint64")
        if action in _NEEDS_TARGET and target == "":
            raise ValueError(f"relabel configuration for {action} action requires 'target_label' value")

        def valid_with_vars(value: str) -> bool:
            return _LEGACY_TARGET.matches(value) if legacy else is_valid_label_name(value)

        if action == "replace":
            ok = valid_with_vars(target) if "$" in target else _valid_name(target, legacy)
            if not ok:
                raise ValueError(f"\"{target}\" is invalid 'target_label' for {action} action")
        if action in _CASE_OR_EQUAL:
            if not _valid_name(target, legacy):
                raise ValueError(f"\"{target}\" is invalid 'target_label' for {action} action")
            if self.replacement != DEFAULT_REPLACEMENT:
                raise ValueError(f"'replacement' can not be set for {action} action")
        if action == "labelmap" and not valid_with_vars(self.replacement):
            raise ValueError(f"\"{self.replacement}\" is invalid 'replacement' for {action} action")
        if action == "hashmod" and not _valid_name(target, legacy):
            raise ValueError(f"\"{target}\" is invalid 'target_label' for {action} action")
        if action in ("keepequal", "dropequal") and (
            self.regex != DEFAULT_REGEX or self.modulus != 0 or self.separator != DEFAULT_SEPARATOR
        ):
            raise ValueError(
                f"{action} action requires only 'source_labels' and `target_label`, and no other fields"
            )
        if action in ("labeldrop", "labelkeep") and (
            self.source_labels
            or target != ""
            or self.modulus != 0
            or self.separator != DEFAULT_SEPARATOR
            or self.replacement != DEFAULT_REPLACEMENT
        ):
            raise ValueError(f"{action} action requires only 'regex', and no other fields")


_FIELDS = frozenset(
    {
        "source_labels",
        "separator",
        "regex",
        "modulus",
        "target_label",
        "replacement",
        "action",
        "name_validation",
    }
)


# ---------------------------------------------------------------------------------------------------------
# Go's Regexp.Expand.


def _is_name_char(c: str) -> bool:
    # unicode.IsLetter, unicode.IsDigit (Nd) or '_'.
    return c == "_" or c.isalpha() or c.isdecimal()


def _extract(template: str, i: int) -> tuple[str, int, int] | None:
    """Parse a ``$`` reference starting at ``i`` (just after ``$``): (name, number or -1, end)."""
    n = len(template)
    brace = i < n and template[i] == "{"
    j = i + 1 if brace else i
    k = j
    while k < n and _is_name_char(template[k]):
        k += 1
    if k == j:
        return None
    name = template[j:k]
    if brace:
        if k >= n or template[k] != "}":
            return None
        k += 1
    num = 0
    for ch in name:
        if not "0" <= ch <= "9" or num >= 100_000_000:
            num = -1
            break
        num = num * 10 + ord(ch) - 48
    if len(name) > 1 and name[0] == "0":
        num = -1
    return name, num, k


def expand_template(template: str, match: Any, group_names: Mapping[str, int]) -> str:
    """Expand ``template`` against an RE2 match as Go's ``Regexp.ExpandString`` does."""
    if "$" not in template:
        return template
    out: list[str] = []
    i = 0
    n = len(template)
    ngroups = match.re.groups if match is not None else 0
    while True:
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        i = j + 1
        if i < n and template[i] == "$":
            out.append("$")
            i += 1
            continue
        ref = _extract(template, i)
        if ref is None:
            out.append("$")
            continue
        name, num, i = ref
        idx = num if num >= 0 else group_names.get(name, -1)
        if 0 <= idx <= ngroups:
            value = match.group(idx)
            if value is not None:
                out.append(value)
    return "".join(out)


# ---------------------------------------------------------------------------------------------------------
# Applying rules.


def _go_lower(s: str) -> str:
    if s.isascii():
        return s.lower()
    out = []
    for c in s:
        low = c.lower()
        out.append(low if len(low) == 1 else ("i" if c == "\u0130" else c))
    return "".join(out)


def _go_upper(s: str) -> str:
    if s.isascii():
        return s.upper()
    out = []
    for c in s:
        up = c.upper()
        out.append(up if len(up) == 1 else c)
    return "".join(out)


class _Builder:
    """``labels.Builder`` with the iteration order its ``Range`` has (base labels, then additions)."""

    __slots__ = ("added", "cur")

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self.cur: dict[str, str] = {k: v for k, v in items if v != ""}
        self.added: set[str] = set()

    def get(self, name: str) -> str:
        return self.cur.get(name, "")

    def set(self, name: str, value: str) -> None:
        if value == "":
            self.delete(name)
        elif name in self.added:
            self.cur[name] = value
        else:
            self.cur.pop(name, None)
            self.cur[name] = value
            self.added.add(name)

    def delete(self, name: str) -> None:
        self.cur.pop(name, None)
        self.added.discard(name)


_MEMO_MAX = 4096
_MISSING = object()


def _memo(rule: RelabelRule, key: str, compute: Any) -> Any:
    """Per-rule memo of regex work (RE2 calls are slow from Python; relabel inputs repeat a lot)."""
    memo = rule.memo
    out = memo.get(key, _MISSING)
    if out is _MISSING:
        out = compute(rule, key)
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[key] = out
    return out


def _replace_result(rule: RelabelRule, val: str) -> tuple[str, str] | None:
    m = rule.compiled.fullmatch(val)
    if m is None:
        return None
    target = expand_template(rule.target_label, m, rule.group_names)
    if not _valid_name(target, rule.name_validation == "legacy"):
        return None
    return target, expand_template(rule.replacement, m, rule.group_names)


def _matches(rule: RelabelRule, val: str) -> bool:
    return rule.compiled.matches(val)


def _labelmap_result(rule: RelabelRule, name: str) -> str | None:
    m = rule.compiled.fullmatch(name)
    return None if m is None else expand_template(rule.replacement, m, rule.group_names)


def _apply(rule: RelabelRule, lb: _Builder) -> bool:
    action = rule.action
    if rule.source_labels:
        get = lb.cur.get
        val = rule.separator.join([get(name, "") for name in rule.source_labels])
    else:
        val = ""
    if action == "replace":
        if (
            val == ""
            and rule.regex == DEFAULT_REGEX
            and "$" not in rule.target_label
            and "$" not in rule.replacement
        ):
            lb.set(rule.target_label, rule.replacement)
            return True
        result = _memo(rule, val, _replace_result)
        if result is not None:
            target, res = result
            if res == "":
                lb.delete(target)
            else:
                lb.set(target, res)
    elif action == "keep":
        return _memo(rule, val, _matches)
    elif action == "drop":
        return not _memo(rule, val, _matches)
    elif action == "keepequal":
        return lb.get(rule.target_label) == val
    elif action == "dropequal":
        return lb.get(rule.target_label) != val
    elif action == "hashmod":
        digest = hashlib.md5(val.encode("utf-8", "surrogateescape")).digest()
        lb.set(rule.target_label, str(int.from_bytes(digest[8:], "big") % rule.modulus))
    elif action == "lowercase":
        lb.set(rule.target_label, _go_lower(val))
    elif action == "uppercase":
        lb.set(rule.target_label, _go_upper(val))
    elif action == "labelmap":
        for name, value in list(lb.cur.items()):
            target = _memo(rule, name, _labelmap_result)
            if target is not None:
                lb.set(target, value)
    elif action == "labeldrop":
        for name in list(lb.cur):
            if _memo(rule, name, _matches):
                lb.delete(name)
    elif action == "labelkeep":
        for name in list(lb.cur):
            if not _memo(rule, name, _matches):
                lb.delete(name)
    return True


def relabel(labels: Labels | Mapping[str, str], rules: Iterable[RelabelRule]) -> Labels | None:
    """Apply ``rules`` in order; the resulting sorted label set, or None when a rule dropped it.

    Empty label values count as absent (and are removed from the result); the result may be empty.
    """
    items = sorted(labels.items()) if isinstance(labels, Mapping) else labels
    lb = _Builder(items)
    for rule in rules:
        if not _apply(rule, lb):
            return None
    return tuple(sorted(lb.cur.items()))
