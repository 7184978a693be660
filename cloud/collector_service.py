"""``pantau collector``: the collector and, beside it, the rollup worker as tasks of their own."""

from __future__ import annotations

import asyncio

from cloud.collector import Collector
from cloud.config import CollectorConfig
from cloud.influx import InfluxSettings
from cloud.rollup.service import run_rollups


async def run_collector_service(
    config: CollectorConfig, collector: Collector | None = None
) -> None:
    """Run a collector (``collector`` if given) and, if enabled, the rollup worker; until
    cancelled or one of them fails."""
    collector = collector or Collector(config)
    i = config.influx
    influx = InfluxSettings(
        url=i.url,
        database=i.database,
        username=i.username,
        password=i.password,
        token=i.token,
        timeout_s=i.timeout_s,
    )
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(collector.run(), name="collector")
        if config.rollup.enabled:
            tasks.create_task(run_rollups(influx, config.rollup), name="rollups")
