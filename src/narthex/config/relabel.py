"""Relabeling rules (``relabel_configs``, ``metric_relabel_configs``, ``write_relabel_configs`` ...).

Mirrors ``model/relabel``: defaults, the action names, and ``Config.Validate``'s checks.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator

from narthex.config.errors import go_quote
from narthex.config.types import ConfigModel, NullIsZero, Str, UInt, scalar_text, to_str, unmarshal_error
from narthex.model.labels import is_valid_label_name
from narthex.model.regex import Regex, RegexError, compile_regex
from narthex.model.relabel import ACTIONS, DEFAULT_REGEX, DEFAULT_SEPARATOR

DEFAULT_REPLACEMENT = "$1"
# RE2 (linear time, ASCII \w as in Go) rather than Python re, whose nested quantifiers could backtrack.
_LEGACY_TARGET = compile_regex(r"(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+")

ValidationScheme = Literal["utf8", "legacy"]


def _action(value: Any) -> str:
    if value is None:
        return ""
    text = to_str(value)
    if text.lower() not in ACTIONS:
        raise ValueError(f"unknown relabel action {go_quote(text)}")
    return text.lower()


def _regex(value: Any) -> str:
    pattern = "" if value is None else to_str(value)
    try:
        compile_regex(pattern)
    except RegexError as exc:
        raise ValueError(str(exc)) from None
    return pattern


def _label_names(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise unmarshal_error(value, "model.LabelNames")
    names = [to_str(v) for v in value]
    for raw, name in zip(value, names, strict=True):
        if not is_valid_label_name(name):
            raise ValueError(
                f"{go_quote(scalar_text(raw) if raw is not None else '')} is not a valid label name"
            )
    return names


class RelabelConfig(ConfigModel):
    """One relabeling rule."""

    yaml_type = "relabel.plain"

    source_labels: Annotated[list[str], PlainValidator(_label_names)] = Field(default_factory=list)
    separator: Str = DEFAULT_SEPARATOR
    regex: Annotated[str, PlainValidator(_regex), NullIsZero()] = DEFAULT_REGEX
    modulus: UInt = 0
    target_label: Str = ""
    replacement: Str = DEFAULT_REPLACEMENT
    action: Annotated[str, PlainValidator(_action), NullIsZero()] = "replace"

    @property
    def compiled_regex(self) -> Regex:
        """The anchored RE2 regex."""
        return compile_regex(self.regex)

    def validate_rule(self, scheme: ValidationScheme = "utf8") -> None:
        """``relabel.Config.Validate`` with the job's (or global) name validation scheme."""
        action = self.action
        legacy = scheme == "legacy"
        if action == "":
            raise ValueError("relabel action cannot be empty")
        if self.modulus == 0 and action == "hashmod":
            raise ValueError("relabel configuration for hashmod requires non-zero modulus")
        needs_target = ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal")
        if action in needs_target and self.target_label == "":
            raise ValueError(f"relabel configuration for {action} action requires 'target_label' value")
        target = self.target_label
        has_var = "$" in target
        if action == "replace" and not has_var and not is_valid_label_name(target, legacy):
            raise ValueError(f"{go_quote(target)} is invalid 'target_label' for {action} action")
        if action == "replace" and has_var and not self._valid_with_vars(target, legacy):
            raise ValueError(f"{go_quote(target)} is invalid 'target_label' for {action} action")
        case_or_equal = ("lowercase", "uppercase", "keepequal", "dropequal")
        if action in case_or_equal and not is_valid_label_name(target, legacy):
            raise ValueError(f"{go_quote(target)} is invalid 'target_label' for {action} action")
        if action in case_or_equal and self.replacement != DEFAULT_REPLACEMENT:
            raise ValueError(f"'replacement' can not be set for {action} action")
        if action == "labelmap" and not self._valid_with_vars(self.replacement, legacy):
            raise ValueError(f"{go_quote(self.replacement)} is invalid 'replacement' for {action} action")
        if action == "hashmod" and not is_valid_label_name(target, legacy):
            raise ValueError(f"{go_quote(target)} is invalid 'target_label' for {action} action")
        if action in ("keepequal", "dropequal") and (
            self.is_set("regex")
            or self.modulus != 0
            or self.separator != DEFAULT_SEPARATOR
            or self.replacement != DEFAULT_REPLACEMENT
        ):
            raise ValueError(
                f"{action} action requires only 'source_labels' and `target_label`, and no other fields"
            )
        if action in ("labeldrop", "labelkeep") and (
            self.is_set("source_labels")
            or self.target_label != ""
            or self.modulus != 0
            or self.separator != DEFAULT_SEPARATOR
            or self.replacement != DEFAULT_REPLACEMENT
        ):
            raise ValueError(f"{action} action requires only 'regex', and no other fields")

    @staticmethod
    def _valid_with_vars(value: str, legacy: bool) -> bool:
        if legacy:
            return _LEGACY_TARGET.matches(value)
        return is_valid_label_name(value)
