"""``promtool check rules`` lints: rules with the same name and labels (``--lint=duplicate-rules``)."""

from __future__ import annotations

import itertools

from narthex.rules.rulefmt import RuleFile

LINT_PREFIX = "lint error"


def merged_labels(group_labels: dict[str, str], rule_labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """Group labels overridden by rule labels, sorted (upstream's ``FromMaps``)."""
    merged = dict(group_labels)
    merged.update(rule_labels)
    return tuple(sorted(merged.items()))


def duplicate_rules(rule_file: RuleFile) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """(name, labels) of every rule that occurs more than once, each reported once, sorted."""
    keys = sorted(
        (rule.name, merged_labels(group.labels, rule.labels))
        for group in rule_file.groups
        for rule in group.rules
    )
    duplicates: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for previous, current in itertools.pairwise(keys):
        if previous == current and (not duplicates or duplicates[-1] != current):
            duplicates.append(current)
    return duplicates


def duplicate_rules_message(duplicates: list[tuple[str, tuple[tuple[str, str], ...]]]) -> str:
    """The lint error text promtool prints."""
    lines = [f"{LINT_PREFIX} {len(duplicates)} duplicate rule(s) found."]
    for name, labels in duplicates:
        lines.append(f"Metric: {name}")
        lines.append("Label(s):")
        lines.extend(f"\t{k}: {v}" for k, v in labels)
    lines.append("Might cause inconsistency while recording expressions")
    return "\n".join(lines)
