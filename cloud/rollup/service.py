"""The rollup worker as a collector task: retention policies at start, then cycles forever."""

from __future__ import annotations

import asyncio
import logging

from cloud.config import RollupConfig
from cloud.influx import InfluxClient, InfluxError, InfluxSettings
from cloud.rollup.retention import Retention, ensure_policies
from cloud.rollup.timegrid import DAY_NS, LocalDays, fixed_offset_s
from cloud.rollup.worker import RollupWorker, WorkerSettings
from cloud.rollup.writer import RollupSpec

log = logging.getLogger(__name__)
WORKER_TIMEOUT_S = 120.0  # catching up a day of a large fleet is one long query


def rollup_spec(config: RollupConfig) -> RollupSpec:
    """The rollup computation's settings from the configuration."""
    return RollupSpec(
        days=LocalDays(fixed_offset_s(config.timezone)),
        default_interval_s=config.default_probe_interval_s,
        lookback_ns=config.raw_days * DAY_NS,
    )


async def run_rollups(influx: InfluxSettings, config: RollupConfig) -> None:
    """Set the retention policies (if managed), then keep the rollups up to date forever."""
    settings = InfluxSettings(
        url=influx.url,
        database=influx.database,
        username=influx.username,
        password=influx.password,
        token=influx.token,
        timeout_s=max(influx.timeout_s, WORKER_TIMEOUT_S),
    )
    async with InfluxClient(settings) as client:
        if config.manage_retention:
            await _set_policies(client, config)
        worker = RollupWorker(
            client,
            rollup_spec(config),
            WorkerSettings(
                every_s=config.every_s,
                settle_s=config.settle_s,
                live_every_s=config.live_every_s,
            ),
        )
        await worker.run()


async def _set_policies(client: InfluxClient, config: RollupConfig) -> None:
    """Create the policies, retrying while InfluxDB (or the database) is not there yet."""
    retention = Retention(
        raw_days=config.raw_days, hourly_days=config.hourly_days, daily_days=config.daily_days
    )
    warned = False
    while True:
        try:
            await ensure_policies(client, retention)
        except InfluxError as exc:
            if not warned:
                log.warning("retention policies not set yet, retrying: %s", exc)
            warned = True
        else:
            return
        await asyncio.sleep(config.every_s)
