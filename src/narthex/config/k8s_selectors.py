"""Syntax checks for Kubernetes field and label selectors (``kubernetes_sd_configs[].selectors``)."""

from __future__ import annotations

import re

_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_KEY = re.compile(rf"^(?:[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?/)?{_NAME}$")
_VALUE = re.compile(rf"^(?:{_NAME})?$")
_SET_TERM = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)$")
_OP_TERM = re.compile(r"^([^!=<>\s]+)\s*(==|!=|=|<|>)\s*(.*)$")


def _split_terms(text: str) -> list[str]:
    """Split on commas outside parentheses, honouring backslash escapes."""
    terms, depth, start, escaped = [], 0, 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def check_field_selector(selector: str) -> None:
    """``fields.ParseSelector``: each term needs ``=``, ``==`` or ``!=``."""
    for term in _split_terms(selector):
        if term == "":
            continue
        if "!=" not in term and "==" not in term and "=" not in term:
            raise ValueError(f"invalid selector: '{selector}'; can't understand '{term}'")


def check_label_selector(selector: str) -> None:
    """``labels.Parse``: existence, equality, set-based and numeric comparison requirements."""
    if selector.strip() == "":
        return
    for raw in _split_terms(selector):
        term = raw.strip()
        if term == "":
            raise ValueError(f"unable to parse requirement: found '', expected: identifier in {selector!r}")
        if term.startswith("!"):
            key, values = term[1:].strip(), []
        elif (match := _SET_TERM.match(term)) is not None:
            key = match.group(1)
            values = [v.strip() for v in match.group(3).split(",")]
        elif (match := _OP_TERM.match(term)) is not None:
            key, op, value = match.groups()
            value = value.strip()
            if op in ("<", ">") and not re.fullmatch(r"-?\d+", value):
                raise ValueError(
                    f"unable to parse requirement: for '{op}' operator, the value must be an integer"
                )
            values = [value]
        else:
            key, values = term, []
        if not _KEY.match(key):
            raise ValueError(f"unable to parse requirement: invalid label key {key!r}")
        for value in values:
            if len(value) > 63 or not _VALUE.match(value):
                raise ValueError(f"unable to parse requirement: invalid label value: {value!r}")
