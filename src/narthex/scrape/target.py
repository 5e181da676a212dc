"""Scrape targets: label population and target relabeling (``scrape/target.go``), URL, identity, offset.

:func:`populate_labels` applies Prometheus's defaults (``job``, ``__scheme__``, ``__metrics_path__``,
``__scrape_interval__``, ``__scrape_timeout__``, ``__param_*``), runs ``relabel_configs``, checks the
result and defaults ``instance`` to ``__address__``; meta labels (``__meta_*``) are removed afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from narthex.config.model import ScrapeConfig
from narthex.discovery.targetgroup import TargetGroup
from narthex.model.duration import DurationError, format_duration, parse_duration
from narthex.model.labels import Labels, is_valid_label_value
from narthex.model.relabel import RelabelRule, relabel

ADDRESS = "__address__"
SCHEME = "__scheme__"
METRICS_PATH = "__metrics_path__"
SCRAPE_INTERVAL = "__scrape_interval__"
SCRAPE_TIMEOUT = "__scrape_timeout__"
PARAM_PREFIX = "__param_"
META_PREFIX = "__meta_"
RESERVED_PREFIX = "__"
_HISTOGRAM_LABELS = (
    ("__convert_classic_histograms_to_nhcb__", "convert classic histograms to nhcb"),
    ("__always_scrape_classic_histograms__", "always scrape classic histograms"),
    ("__scrape_native_histograms__", "scrape native histograms"),
)
_GO_BOOLS = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1


def fnv64a(data: bytes, h: int = FNV_OFFSET) -> int:
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & _MASK64
    return h


def go_quote_value(text: str) -> str:
    """Go's ``%q`` for plain values."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def relabel_rules(configs: Iterable[Any]) -> list[RelabelRule]:
    """Config relabel entries as :class:`RelabelRule` objects."""
    return [RelabelRule.from_dict(c.model_dump()) for c in configs]


def discovered_labels(
    cfg: ScrapeConfig, t_labels: dict[str, str], tg_labels: dict[str, str]
) -> dict[str, str]:
    """``PopulateDiscoveredLabels``: target and group labels plus the job's defaults."""
    lb = {k: v for k, v in tg_labels.items() if k not in t_labels}
    lb.update(t_labels)
    defaults = (
        ("job", cfg.job_name),
        (SCRAPE_INTERVAL, format_duration(cfg.scrape_interval)),
        (SCRAPE_TIMEOUT, format_duration(cfg.scrape_timeout)),
        (METRICS_PATH, cfg.metrics_path),
        (SCHEME, cfg.scheme),
        (_HISTOGRAM_LABELS[0][0], _go_bool(cfg.convert_classic_histograms_to_nhcb)),
        (_HISTOGRAM_LABELS[1][0], _go_bool(cfg.always_scrape_classic_histograms)),
        (_HISTOGRAM_LABELS[2][0], _go_bool(cfg.scrape_native_histograms)),
    )
    for name, value in defaults:
        if not lb.get(name):
            lb[name] = value
    for key, values in cfg.params.items():
        name = PARAM_PREFIX + key
        if values and not lb.get(name):
            lb[name] = values[0]
    return {k: v for k, v in lb.items() if v != ""}


def _go_bool(value: bool | None) -> str:
    return "true" if value else "false"


class TargetError(ValueError):
    """A discovered target that cannot be scraped (no address, bad interval, invalid labels...)."""


def populate_labels(
    cfg: ScrapeConfig, rules: list[RelabelRule], t_labels: dict[str, str], tg_labels: dict[str, str]
) -> tuple[Labels | None, dict[str, str]]:
    """``PopulateLabels``: (final labels or None when relabeling dropped the target, discovered labels).

    Raises :class:`TargetError` for a target Prometheus refuses.
    """
    disc = discovered_labels(cfg, t_labels, tg_labels)
    result = relabel(disc, rules) if rules else tuple(sorted(disc.items()))
    if result is None:
        return None, disc
    lb = dict(result)
    addr = lb.get(ADDRESS, "")
    if addr == "":
        raise TargetError("no address")
    if "/" in addr:
        raise TargetError(f"{go_quote_value(addr)} is not a valid hostname")
    interval = lb.get(SCRAPE_INTERVAL, "")
    interval_ms = _duration(interval, "interval")
    timeout = lb.get(SCRAPE_TIMEOUT, "")
    timeout_ms = _duration(timeout, "timeout")
    if timeout_ms > interval_ms:
        raise TargetError(
            f"scrape timeout cannot be greater than scrape interval "
            f"({go_quote_value(timeout)} > {go_quote_value(interval)})"
        )
    for name, desc in _HISTOGRAM_LABELS:
        value = lb.get(name, "")
        if value and value not in _GO_BOOLS:
            raise TargetError(f'error parsing {desc}: strconv.ParseBool: parsing "{value}": invalid syntax')
    lb = {k: v for k, v in lb.items() if not k.startswith(META_PREFIX)}
    if not lb.get("instance"):
        lb["instance"] = addr
    for name, value in sorted(lb.items()):
        if not is_valid_label_value(value):
            raise TargetError(f"invalid label value for {go_quote_value(name)}: {go_quote_value(value)}")
    return tuple(sorted(lb.items())), disc


def _duration(text: str, what: str) -> int:
    try:
        ms = parse_duration(text)
    except DurationError as exc:
        raise TargetError(f"error parsing scrape {what}: {exc}") from None
    if ms == 0:
        raise TargetError(f"scrape {what} cannot be 0")
    return ms


@dataclass(eq=False)
class Target:
    """One scrape target with its state, as ``/api/v1/targets`` shows it."""

    labels: Labels
    discovered: dict[str, str]
    scrape_pool: str
    params: dict[str, list[str]] = field(default_factory=dict)
    health: str = "unknown"
    last_error: str = ""
    last_scrape: float = 0.0  # wall-clock seconds; 0 = never
    last_scrape_duration: float = 0.0

    def __post_init__(self) -> None:
        self._map = dict(self.labels)
        self.url = self._build_url()
        self.key = (self.labels, self.url)
        timing = (SCRAPE_INTERVAL, SCRAPE_TIMEOUT)
        self.cache_key = (tuple(kv for kv in self.labels if kv[0] not in timing), self.url)
        self.public_labels: Labels = tuple(kv for kv in self.labels if not kv[0].startswith(RESERVED_PREFIX))
        self.interval_ms = parse_duration(self._map[SCRAPE_INTERVAL])
        self.timeout_ms = parse_duration(self._map[SCRAPE_TIMEOUT])

    def get(self, name: str) -> str:
        return self._map.get(name, "")

    def _build_url(self) -> str:
        params = {k: list(v) for k, v in self.params.items()}
        for name, value in self.labels:
            if name.startswith(PARAM_PREFIX):
                key = name[len(PARAM_PREFIX) :]
                if params.get(key):
                    params[key][0] = value
                else:
                    params[key] = [value]
        query = urlencode([(k, v) for k in sorted(params) for v in params[k]])
        path = quote(self.get(METRICS_PATH), safe="/:@!$&'()*+,;=-._~")
        url = f"{self.get(SCHEME)}://{self.get(ADDRESS)}{path}"
        return f"{url}?{query}" if query else url

    def hash(self) -> int:
        """A stable 64-bit identity of labels and URL (FNV-1a), as the basis of the scrape offset."""
        h = FNV_OFFSET
        for name, value in self.labels:
            h = fnv64a(name.encode("utf-8", "surrogateescape") + b"\xff", h)
            h = fnv64a(value.encode("utf-8", "surrogateescape") + b"\xff", h)
        return fnv64a(self.url.encode("utf-8", "surrogateescape"), h)

    def offset_s(self, interval_s: float, seed: int, now_ns: int | None = None) -> float:
        """Seconds until this target's slot in the interval: ``hash % interval`` past absolute time."""
        interval_ns = int(interval_s * 1e9)
        if interval_ns <= 0:
            return 0.0
        now = time.time_ns() if now_ns is None else now_ns
        base = interval_ns - now % interval_ns
        nxt = base + (self.hash() ^ seed) % interval_ns
        if nxt > interval_ns:
            nxt -= interval_ns
        return nxt / 1e9

    def report(self, start: float, duration: float, error: str | None) -> None:
        self.health = "up" if error is None else "down"
        self.last_error = error or ""
        self.last_scrape = start
        self.last_scrape_duration = duration


@dataclass(slots=True)
class DroppedTarget:
    """A target relabeling dropped: only its discovered labels are kept."""

    discovered: dict[str, str]
    scrape_pool: str


def targets_from_group(
    group: TargetGroup, cfg: ScrapeConfig, rules: list[RelabelRule]
) -> tuple[list[Target], list[DroppedTarget], list[str]]:
    """``TargetsFromGroup``: active targets, targets dropped by relabeling, and failures."""
    active: list[Target] = []
    dropped: list[DroppedTarget] = []
    failures: list[str] = []
    for i, t_labels in enumerate(group.targets):
        try:
            labels, disc = populate_labels(cfg, rules, t_labels, group.labels)
        except TargetError as exc:
            failures.append(f"instance {i} in group {group.source}: {exc}")
            continue
        if labels is None:
            dropped.append(DroppedTarget(disc, cfg.job_name))
        else:
            active.append(Target(labels, disc, cfg.job_name, cfg.params))
    return active, dropped, failures
