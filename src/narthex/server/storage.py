"""The storage component: the embedded TSDB under ``--storage.tsdb.path``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from narthex.server.options import ServerOptions
from narthex.tsdb import TSDBOptions, open_db
from narthex.util.log import get_logger

if TYPE_CHECKING:
    from narthex.config import Config

log = get_logger("storage")


class StorageComponent:
    """Opens the TSDB before the config is applied, applies the storage section, closes it last."""

    name = "storage"

    def __init__(self, options: ServerOptions, registry: CollectorRegistry) -> None:
        self._options = options
        self._registry = registry
        self.db: Any = None

    async def open(self) -> None:
        """Open the database (replaying its WAL) off the event loop."""
        opts = self._options
        tsdb_options = TSDBOptions(
            retention_ms=opts.retention_ms,
            retention_bytes=opts.retention_bytes,
            no_lockfile=opts["storage.tsdb.no-lockfile"],
            chunk_cache_bytes=opts["storage.tsdb.decoded-chunks-cache-size"],
        )
        self.db = await asyncio.to_thread(open_db, opts["storage.tsdb.path"], tsdb_options, self._registry)

    async def start(self) -> None:
        return None

    async def apply_config(self, config: Config) -> None:
        tsdb = getattr(config.storage, "tsdb", None) if config.storage else None
        window = getattr(tsdb, "out_of_order_time_window", 0) if tsdb else 0
        if self.db is not None:
            self.db.set_out_of_order_window(window or 0)

    async def stop(self) -> None:
        if self.db is not None:
            await asyncio.to_thread(self.db.close)
            self.db = None
