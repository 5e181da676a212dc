"""The rule manager: loads rule files from the config, runs their groups, keeps state across reloads.

A reload keeps unchanged groups running untouched; a changed group takes over the alert state of its
rules that still exist; a removed group's series get staleness markers two intervals later.
"""

from __future__ import annotations

import asyncio
import glob
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from narthex.promql.engine import Engine
from narthex.promql.parser import DEFAULT_FEATURES, parse_expr
from narthex.promql.value import STALE_NAN
from narthex.rules.alerting import Alert, AlertingRule
from narthex.rules.appendable import RuleStorage, TSDBRuleStorage
from narthex.rules.group import Group, GroupOptions, Rule
from narthex.rules.metrics import RuleMetrics
from narthex.rules.recording import RecordingRule
from narthex.rules.rule import engine_query_func, merge_labels
from narthex.rules.rulefmt import parse_rule_file
from narthex.util.log import get_logger

if TYPE_CHECKING:
    from narthex.config import Config

log = get_logger("rule manager")


class RuleLoadError(Exception):
    """Some rule file could not be loaded; the previous rule set stays active."""


@dataclass
class ManagerOptions:
    external_url: str = ""
    resend_delay_ms: int = 60_000
    outage_tolerance_ms: int = 3_600_000
    for_grace_period_ms: int = 600_000
    lookback_delta_ms: int = 300_000
    query_timeout_s: float = 120.0
    max_samples: int = 50_000_000
    features: frozenset[str] = field(default_factory=frozenset)


def expand_rule_files(patterns: Iterable[str]) -> list[str]:
    """Every file named by the config's ``rule_files`` globs, in glob order."""
    files: list[str] = []
    for pattern in patterns:
        files.extend(sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern])
    return files


def generator_url(external_url: str, expr: str) -> str:
    from urllib.parse import quote_plus

    return f"{external_url}/graph?g0.expr={quote_plus(expr)}&g0.tab=1"


class RuleManager:
    """Server component ``rule manager``."""

    name = "rule manager"

    def __init__(
        self,
        storage: RuleStorage | Callable[[], Any] | None,
        options: ManagerOptions | None = None,
        registry: CollectorRegistry | None = None,
        notifier: Any = None,
        engine: Engine | None = None,
    ) -> None:
        self.options = options or ManagerOptions()
        self.metrics = RuleMetrics(registry)
        self._storage_source = storage
        self.notifier = notifier
        self.engine = engine or Engine(
            self.options.lookback_delta_ms,
            self.options.max_samples,
            self.options.query_timeout_s,
            self.options.features,
        )
        self.groups: dict[str, Group] = {}
        self.restored = False
        self.external_labels: dict[str, str] = {}
        self.default_query_offset_ms = 0
        self.started = False
        self._stale_tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    @classmethod
    def from_server_options(
        cls,
        server_options: Any,
        registry: CollectorRegistry,
        storage: Any,
        notifier: Any,
        engine: Engine | None = None,
    ) -> RuleManager:
        """Build from ``narthex serve`` options; ``storage`` is the storage component (its ``db``)."""
        opts = ManagerOptions(
            external_url=server_options.external_url,
            resend_delay_ms=server_options["rules.alert.resend-delay"],
            outage_tolerance_ms=server_options["rules.alert.for-outage-tolerance"],
            for_grace_period_ms=server_options["rules.alert.for-grace-period"],
            lookback_delta_ms=server_options["query.lookback-delta"],
            query_timeout_s=server_options["query.timeout"] / 1000,
            max_samples=int(server_options["query.max-samples"]),
            features=server_options.features,
        )
        return cls(lambda: TSDBRuleStorage(storage.db), opts, registry, notifier, engine)

    # -- storage and options ----------------------------------------------------------------------

    def storage(self) -> RuleStorage:
        source = self._storage_source
        if source is None:
            raise RuntimeError("rule manager has no storage")
        if hasattr(source, "rule_appender"):
            return source  # type: ignore[return-value]
        return source()  # type: ignore[operator]

    def _group_options(self) -> GroupOptions:
        storage = self.storage()
        return GroupOptions(
            storage=storage,
            query_func=engine_query_func(self.engine, storage),
            metrics=self.metrics,
            notify=self._notify if self.notifier is not None else None,
            external_url=self.options.external_url,
            resend_delay_ms=self.options.resend_delay_ms,
            outage_tolerance_ms=self.options.outage_tolerance_ms,
            for_grace_period_ms=self.options.for_grace_period_ms,
            default_query_offset_ms=lambda: self.default_query_offset_ms,
            query_for=lambda queryable: engine_query_func(self.engine, queryable),
        )

    def _notify(self, expr: str, alerts: list[Alert]) -> None:
        self.notifier.send(to_notifier_alerts(alerts, expr, self.options.external_url))

    # -- loading ----------------------------------------------------------------------------------

    def load_groups(
        self, interval_ms: int, files: Sequence[str], external_labels: dict[str, str]
    ) -> tuple[dict[str, Group], list[str]]:
        """Parse ``files`` into new (not yet running) groups; errors instead when any file is bad."""
        return build_groups(
            files,
            interval_ms,
            self._group_options(),
            external_labels,
            self.options.external_url,
            should_restore=not self.restored,
            features=DEFAULT_FEATURES | self.options.features,
        )

    async def update(self, interval_ms: int, files: Sequence[str], external_labels: dict[str, str]) -> None:
        """Replace the rule set (keeping the state of unchanged rules); raises :class:`RuleLoadError`."""
        async with self._lock:
            new_groups, errors = await asyncio.to_thread(
                self.load_groups, interval_ms, files, external_labels
            )
            if errors:
                for error in errors:
                    log.error("loading groups failed", err=error)
                raise RuleLoadError("error loading rules, previous rule set restored")
            self.restored = True
            old_groups = dict(self.groups)
            result: dict[str, Group] = {}
            for key, new in new_groups.items():
                old = old_groups.pop(key, None)
                if old is not None and old.signature() == new.signature():
                    result[key] = old
                    continue
                if old is not None:
                    await old.stop()
                    new.copy_state(old)
                self.metrics.init_group(key, new.interval_ms / 1000, len(new.rules))
                result[key] = new
                if self.started:
                    new.start()
            for key, old in old_groups.items():
                await old.stop()
                self.metrics.remove_group(key)
                if self.started:
                    self._schedule_stale_markers(old)
            self.groups = result

    def _schedule_stale_markers(self, group: Group) -> None:
        series = [*group.all_previous_series(), *group.stale_series]
        if not series:
            return

        async def mark() -> None:
            marked_at = _now_ms()
            await asyncio.sleep(2 * group.interval_ms / 1000)
            app = group.opts.storage.rule_appender()
            for labels in series:
                app.append(labels, marked_at - group.query_offset(), STALE_NAN)
            try:
                await asyncio.to_thread(app.commit)
            except Exception as exc:  # nothing else to do: the series will go stale by lookback
                log.warn("Stale sample appending for previous configuration failed", err=exc)

        task = asyncio.create_task(mark(), name=f"stale markers {group.key}")
        self._stale_tasks.add(task)
        task.add_done_callback(self._stale_tasks.discard)

    # -- component lifecycle ----------------------------------------------------------------------

    async def apply_config(self, config: Config) -> None:
        glob_cfg = config.global_config
        self.default_query_offset_ms = int(glob_cfg.rule_query_offset or 0)
        self.external_labels = dict(glob_cfg.external_labels)
        files = expand_rule_files(config.rule_files)
        await self.update(int(glob_cfg.evaluation_interval), files, self.external_labels)

    async def start(self) -> None:
        self.started = True
        log.info("Starting rule manager...")
        for group in self.groups.values():
            group.start()

    async def stop(self) -> None:
        log.info("Stopping rule manager...")
        self.started = False
        await asyncio.gather(*(g.stop() for g in self.groups.values()))
        for task in list(self._stale_tasks):
            task.cancel()
        await asyncio.gather(*self._stale_tasks, return_exceptions=True)
        log.info("Rule manager stopped")

    # -- views ------------------------------------------------------------------------------------

    def rule_groups(self) -> list[Group]:
        """Groups sorted by file, then name (as the API lists them)."""
        return sorted(self.groups.values(), key=lambda g: (g.file, g.name))

    def alerting_rules(self) -> list[AlertingRule]:
        return [r for g in self.rule_groups() for r in g.alerting_rules()]


def build_groups(
    files: Sequence[str],
    interval_ms: int,
    opts: GroupOptions,
    external_labels: dict[str, str],
    external_url: str,
    *,
    should_restore: bool = False,
    features: frozenset[str] = DEFAULT_FEATURES,
    ignore_unknown_fields: bool = False,
) -> tuple[dict[str, Group], list[str]]:
    """Groups of the rule files keyed by ``file;name`` (upstream's ``LoadGroups``), or the errors."""
    groups: dict[str, Group] = {}
    errors: list[str] = []
    for path in files:
        rule_file, errs = parse_rule_file(path, ignore_unknown_fields, features=features)
        if errs or rule_file is None:
            errors.extend(errs)
            continue
        for spec in rule_file.groups:
            rules: list[Rule] = []
            for r in spec.rules:
                expr = parse_expr(r.expr, features=features)
                labels = merge_labels(spec.labels, r.labels)
                if r.alert:
                    rules.append(
                        AlertingRule(
                            r.alert,
                            expr,
                            r.for_ms,
                            r.keep_firing_for_ms,
                            labels,
                            r.annotations,
                            external_labels,
                            external_url,
                            restored=not should_restore,
                        )
                    )
                else:
                    rules.append(RecordingRule(r.record, expr, labels))
            group = Group(
                spec.name,
                path,
                spec.interval_ms or interval_ms,
                rules,
                opts,
                limit=spec.limit,
                query_offset_ms=spec.query_offset_ms,
                should_restore=should_restore,
                source_labels=spec.labels,
            )
            groups[group.key] = group
    return groups, errors


def to_notifier_alerts(alerts: list[Alert], expr: str, external_url: str) -> list[Any]:
    """Rule alerts as notifier alerts: ends at the resolve time, else at ``ValidUntil``."""
    from narthex.notifier.alert import NotifierAlert

    url = generator_url(external_url, expr)
    out = []
    for a in alerts:
        out.append(
            NotifierAlert(
                labels=a.labels,
                annotations=a.annotations,
                starts_at=a.fired_at or 0,
                ends_at=a.resolved_at if a.resolved_at is not None else a.valid_until or 0,
                generator_url=url,
            )
        )
    return out


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
