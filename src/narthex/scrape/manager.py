"""The scrape manager: one pool per job, rebuilt from each applied config.

Scrape loops arrive with the scraping work; today a pool records its job's settings and the discovery
problems that make some of its targets unavailable, so that they show in the job's target status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from narthex.discovery.mechanisms import unsupported, unsupported_message
from narthex.util.log import get_logger

if TYPE_CHECKING:
    from narthex.config import Config

log = get_logger("scrape manager")


@dataclass
class PoolStatus:
    """What a job's target status shows: its settings and discovery errors."""

    job: str
    interval_ms: int
    timeout_ms: int
    mechanisms: list[str]
    discovery_errors: list[str] = field(default_factory=list)


class ScrapeManager:
    """Holds one scrape pool per job of the current config."""

    name = "scrape"

    def __init__(self) -> None:
        self.pools: dict[str, PoolStatus] = {}

    async def start(self) -> None:
        return None

    async def apply_config(self, config: Config) -> None:
        pools: dict[str, PoolStatus] = {}
        for job in config.scrape_configs:
            mechanisms = job.sd_mechanisms()
            status = PoolStatus(job.job_name, job.scrape_interval, job.scrape_timeout, mechanisms)
            for mechanism in unsupported(mechanisms):
                message = unsupported_message(mechanism)
                status.discovery_errors.append(message)
                log.error(
                    "Unsupported service discovery mechanism",
                    scrape_pool=job.job_name,
                    mechanism=mechanism,
                    err=message,
                )
            pools[job.job_name] = status
        self.pools = pools

    async def stop(self) -> None:
        self.pools = {}
