"""The labels of scraped samples: target labels merged in (``honor_labels`` or ``exported_*``), then
``metric_relabel_configs`` (``mutateSampleLabels``), then the validity checks of the scrape loop."""

from __future__ import annotations

from narthex.model.exposition import ScrapeError, check_label_limits
from narthex.model.labels import (
    METRIC_NAME,
    Labels,
    is_valid_label_name,
    is_valid_label_value,
    is_valid_metric_name,
)
from narthex.model.relabel import RelabelRule, relabel

EXPORTED_PREFIX = "exported_"


def merge_target_labels(exposed: Labels, target: Labels, honor: bool) -> dict[str, str]:
    """Exposed labels with the target's: kept as exposed (honor) or renamed ``exported_<name>``."""
    lb = dict(exposed)
    if honor:
        for name, value in target:
            if name not in lb:
                lb[name] = value
        return lb
    conflicts = [(name, lb[name]) for name, _ in target if lb.get(name)]
    for name, value in target:
        lb[name] = value
    for name, value in sorted(conflicts, key=lambda kv: len(kv[0])):
        new = name
        while True:
            new = EXPORTED_PREFIX + new
            if not lb.get(new):
                lb[new] = value
                break
    return lb


def labels_text(labels: Labels) -> str:
    """``labels.Labels.String()``: ``{__name__="up", job="x"}``."""
    inner = ", ".join(f'{n}="{v}"'.replace("\n", "\\n") for n, v in labels)
    return "{" + inner + "}"


class SampleLabeler:
    """Turns exposed label sets into final ones for one target, or None when dropped."""

    def __init__(
        self,
        target_labels: Labels,
        honor_labels: bool,
        rules: list[RelabelRule],
        legacy_names: bool = False,
        label_limit: int = 0,
        name_length_limit: int = 0,
        value_length_limit: int = 0,
    ) -> None:
        self.target_labels = target_labels
        self.honor_labels = honor_labels
        self.rules = rules
        self.legacy_names = legacy_names
        self.limits = (label_limit, name_length_limit, value_length_limit)
        self.has_limits = any(self.limits)

    def __call__(self, exposed: Labels) -> Labels | None:
        """Final labels; raises :class:`ScrapeError` when the scrape must fail."""
        target = self.target_labels
        if self.honor_labels:
            merged = merge_target_labels(exposed, target, True)
        else:
            merged = dict(exposed)
            n = len(merged)
            merged.update(target)
            if len(merged) != n + len(target):  # an exposed label has a target label's name
                merged = merge_target_labels(exposed, target, False)
        if self.rules:
            lset = relabel(merged, self.rules)
            if not lset:
                return None
            name = ""
            for n, v in lset:
                if n == METRIC_NAME:
                    name = v
                    break
        else:
            if "" in merged.values():
                lset = tuple(sorted(kv for kv in merged.items() if kv[1]))
            else:
                lset = tuple(sorted(merged.items()))
            name = merged.get(METRIC_NAME, "")
        if not lset:
            return None
        if not name:
            raise ScrapeError("missing metric name (__name__ label)")
        if not self._valid(name, lset):
            raise ScrapeError(f"invalid metric name or label names: {labels_text(lset)}")
        if self.has_limits:
            message = check_label_limits(lset, *self.limits)
            if message is not None:
                raise LabelLimitError(message)
        return lset

    def _valid(self, name: str, lset: Labels) -> bool:
        """``labels.IsValid``: metric and label names per the validation scheme, values valid UTF-8."""
        if self.legacy_names:
            return (
                is_valid_metric_name(name, True)
                and all(n == METRIC_NAME or is_valid_label_name(n, True) for n, _ in lset)
                and all(is_valid_label_value(v) for _, v in lset)
            )
        if not all(n for n, _ in lset):
            return False
        text = "".join(map("".join, lset))
        if text.isascii():
            return True
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True


class LabelLimitError(ScrapeError):
    """A series broke ``label_limit``, ``label_name_length_limit`` or ``label_value_length_limit``."""


def report_labels(name: str, target_labels: Labels) -> Labels:
    """The labels of a synthetic series (``up`` ...): the name plus the target's labels."""
    return tuple(sorted({METRIC_NAME: name, **dict(target_labels)}.items()))
