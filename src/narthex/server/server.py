"""``narthex serve``: composes storage, scrape manager and web, and runs their lifecycle.

Start-up order follows Prometheus: validate the config, listen (503 until ready), open storage, apply
the config to every component, start them, then report ready. SIGHUP and ``/-/reload`` reload; SIGTERM,
SIGINT and ``/-/quit`` shut down cleanly in reverse order.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time

from narthex import __version__
from narthex.config import Config, ConfigError, load_config
from narthex.discovery.mechanisms import unsupported, unsupported_message
from narthex.notifier.manager import Notifier
from narthex.promql.engine import Engine, QueryGate
from narthex.rules.manager import RuleManager
from narthex.scrape.manager import ScrapeManager
from narthex.server.component import Component
from narthex.server.metrics import ConfigMetrics, new_registry
from narthex.server.options import ServerOptions
from narthex.server.storage import StorageComponent
from narthex.util.buildinfo import revision
from narthex.util.log import get_logger
from narthex.web.api import register_api
from narthex.web.api.wiring import server_api_deps
from narthex.web.app import ReadyState, WebHandler, WebOptions
from narthex.web.lifecycle import register_lifecycle
from narthex.web.webconfig import WebConfig

log = get_logger("")

EXIT_OK = 0
EXIT_RUNTIME_ERROR = 1
EXIT_CONFIG_ERROR = 2


class Server:
    """One running Narthex server."""

    def __init__(self, options: ServerOptions, web_config: WebConfig) -> None:
        self.options = options
        self.registry = new_registry()
        self.config_metrics = ConfigMetrics(self.registry)
        self.config: Config | None = None
        self.web = WebHandler(
            WebOptions(
                listen_addresses=options.listen_addresses,
                external_url=options.external_url,
                route_prefix=options.route_prefix,
                enable_lifecycle=options["web.enable-lifecycle"],
                enable_admin_api=options["web.enable-admin-api"],
                cors_origin=options["web.cors.origin"],
                read_timeout_s=options["web.read-timeout"] / 1000,
                max_connections=options["web.max-connections"],
                web_config=web_config,
            ),
            self.registry,
        )
        register_lifecycle(self.web, self.reload, self.request_quit)
        self.engine = new_engine(options)
        register_api(self.web, server_api_deps(self))
        self.storage = StorageComponent(options, self.registry)
        self.scrape = ScrapeManager(self.registry, lambda: self.storage.db)
        self.notifier = Notifier.from_server_options(options, self.registry)
        self.rule_manager = RuleManager.from_server_options(
            options, self.registry, self.storage, self.notifier, engine=self.engine
        )
        self.components: list[Component] = [self.storage, self.scrape, self.notifier, self.rule_manager]
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._config_digest = b""
        self._quitting = False

    @property
    def config_file(self) -> str:
        return self.options["config.file"]

    async def run(self) -> int:
        """Run until asked to stop; returns the process exit code."""
        log.info("Starting Narthex", version=__version__, revision=revision())
        for feature in self.options.unknown_features:
            log.warn("Unknown option for --enable-feature", option=feature)
        try:
            config = load_config(self.config_file, expand_external_labels_env=True)
        except (ConfigError, OSError) as exc:
            log.error(
                f"Error loading config (--config.file={self.config_file})",
                file=os.path.abspath(self.config_file),
                err=exc,
            )
            return EXIT_CONFIG_ERROR
        try:
            await self.web.start()
        except OSError as exc:
            log.error("Error starting web server", err=exc)
            return EXIT_RUNTIME_ERROR
        try:
            return await self._serve(config)
        finally:
            await self._shutdown()

    async def _serve(self, config: Config) -> int:
        loop = asyncio.get_running_loop()
        try:
            log.info("Starting TSDB ...")
            await self.storage.open()
            log.info("TSDB started")
        except Exception as exc:  # any storage failure stops start-up with its reason
            log.error("Opening storage failed", err=exc)
            return EXIT_RUNTIME_ERROR
        if await self._apply(config) is not None:
            return EXIT_RUNTIME_ERROR
        for component in self.components:
            await component.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        self.web.set_state(ReadyState.READY)
        log.info("Server is ready to receive web requests.")
        watcher = None
        if self.options["config.auto-reload"]:
            watcher = asyncio.create_task(self._watch_config())
        await self._stop.wait()
        if watcher is not None:
            watcher.cancel()
        return EXIT_OK

    async def _shutdown(self) -> None:
        self.web.set_state(ReadyState.STOPPING)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        for component in reversed(self.components):
            try:
                await component.stop()
            except Exception as exc:  # keep stopping the others; report the failure
                log.error("Error stopping component", component=component.name, err=exc)
        await self.web.stop()
        log.info("See you next time!")

    def _on_signal(self, sig: signal.Signals) -> None:
        log.warn("Received an OS signal, exiting gracefully...", signal=sig.name)
        self._stop.set()

    def _on_sighup(self) -> None:
        asyncio.get_running_loop().create_task(self._reload_logged())

    async def _reload_logged(self) -> None:
        error = await self.reload()
        if error is not None:
            log.error("Error reloading config", err=error)

    def request_quit(self) -> bool:
        """Ask the server to stop (``/-/quit``); False if it is already stopping."""
        if self._quitting or self._stop.is_set():
            return False
        self._quitting = True
        log.warn("Received termination request via web service, exiting gracefully...")
        # Let the response go out before the listeners close.
        asyncio.get_running_loop().call_later(0.05, self._stop.set)
        return True

    async def reload(self) -> str | None:
        """Load the config file and apply it everywhere; on failure keep the running config."""
        async with self._reload_lock:
            try:
                config = await asyncio.to_thread(
                    load_config, self.config_file, expand_external_labels_env=True
                )
            except (ConfigError, OSError) as exc:
                self.config_metrics.record(False)
                return f'couldn\'t load configuration (--config.file="{self.config_file}"): {exc}'
            return await self._apply(config)

    async def _apply(self, config: Config) -> str | None:
        start = time.monotonic()
        log.info("Loading configuration file", filename=self.config_file)
        failed = False
        for component in self.components:
            try:
                await component.apply_config(config)
            except Exception as exc:  # a component refusing the config fails the reload, not the server
                log.error("Failed to apply configuration", component=component.name, err=exc)
                failed = True
        self._log_unsupported_alertmanager_discovery(config)
        if failed:
            self.config_metrics.record(False)
            return (
                "one or more errors occurred while applying the new configuration "
                f'(--config.file="{self.config_file}")'
            )
        self.config = config
        self._config_digest = _digest(self.config_file)
        self.config_metrics.record(True)
        log.info(
            "Completed loading of configuration file",
            filename=self.config_file,
            totalDuration=f"{(time.monotonic() - start) * 1000:.3f}ms",
        )
        return None

    def _log_unsupported_alertmanager_discovery(self, config: Config) -> None:
        alerting = config.alerting
        for index, am in enumerate(alerting.alertmanagers if alerting else []):
            for mechanism in unsupported(am.sd_mechanisms()):
                log.error(
                    "Unsupported service discovery mechanism",
                    alertmanager=f"config-{index}",
                    mechanism=mechanism,
                    err=unsupported_message(mechanism),
                )

    async def _watch_config(self) -> None:
        """``--config.auto-reload``: reload when the config file's content changes."""
        interval = self.options["config.auto-reload-interval"] / 1000
        while True:
            await asyncio.sleep(interval)
            if _digest(self.config_file) != self._config_digest:
                await self._reload_logged()


def new_engine(options: ServerOptions) -> Engine:
    """The server's one PromQL engine; ``--query.max-concurrency`` bounds API and rule queries together."""
    return Engine(
        lookback_delta_ms=options["query.lookback-delta"],
        max_samples=options["query.max-samples"],
        timeout_s=options["query.timeout"] / 1000,
        features=frozenset(options.features),
        gate=QueryGate(max(1, options["query.max-concurrency"])),
    )


def _digest(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).digest()
    except OSError:
        return b""
