from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Callable, Iterator

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from narthex.discovery.targetgroup import TargetGroup
from narthex.scrape.loop import ScrapeLoop
from narthex.scrape.metrics import ScrapeMetrics
from narthex.scrape.pool import ScrapePool
from narthex.scrape.target import targets_from_group
from narthex.tsdb import DB
from tests.scrape.helpers import Exporter, config, new_db


@pytest.fixture
def db(tmp_path: pathlib.Path) -> Iterator[DB]:
    database = new_db(str(tmp_path / "data"))
    yield database
    database.close()


@pytest.fixture
async def exporter() -> AsyncIterator[Exporter]:
    ex = await Exporter().start()
    yield ex
    await ex.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
    ) as sess:
        yield sess


JOB = """
scrape_configs:
  - job_name: test
    scrape_interval: 1s
{extra}
"""


@pytest.fixture
def make_loop(db: DB, session: aiohttp.ClientSession) -> Callable[..., ScrapeLoop]:
    """A loop for one target of a job configured by ``extra`` YAML lines (not running: call
    ``scrape_and_report`` yourself)."""

    def make(address: str, extra: str = "", labels: dict[str, str] | None = None) -> ScrapeLoop:
        cfg = config(JOB.format(extra=extra)).scrape_configs[0]
        metrics = ScrapeMetrics(CollectorRegistry())
        pool = ScrapePool(cfg, lambda: session, lambda: db, metrics)
        group = TargetGroup("0", [{"__address__": address}], labels or {})
        targets, _, failures = targets_from_group(group, cfg, pool.rules)
        assert not failures and targets
        return ScrapeLoop(targets[0], pool.settings, lambda: db, metrics)

    return make
