"""Site clocks that are wrong, for real: an agent process run under libfaketime, 10 minutes
ahead and 2 days behind. Ahead beyond the horizon its readings are held at the edge (refused,
not receipted, still queued); behind they are stored at the edge's time; either way the cloud
measures the error and raises 'site clock wrong'."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from cloud.collector import Collector
from cloud.config import CollectorConfig
from cloud.influx import InfluxClient, InfluxSettings
from cloud.problems.config import RulesConfig
from cloud.problems.model import Verdict
from cloud.problems.observe import Observer
from devtools.localsvc import InfluxProcess, MosquittoProcess
from edge_agent.queue import count_queued
from tests.helpers import async_wait_for, counters, influx_rows

S = 10**9
pytestmark = pytest.mark.skipif(shutil.which("faketime") is None, reason="needs faketime")


@pytest.fixture
async def collector(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> AsyncIterator[Collector]:
    running = Collector(
        CollectorConfig.model_validate(
            {
                "mqtt": {"url": broker.url, "client_id": "skew-collector"},
                "influx": {"url": influxd.url, "database": database},
                "batch": {"max_delay_s": 0.05},
                "dead_letter_path": str(tmp_path / "dl.sqlite"),
                "http_port": 0,
                "self_metrics_interval_s": 1,
            }
        )
    )
    task = asyncio.create_task(running.run(), name="skew-collector")
    await asyncio.wait_for(running.ready.wait(), 15)
    yield running
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def start_skewed_agent(
    offset: str, broker: MosquittoProcess, tmp_path: Path
) -> subprocess.Popen[bytes]:
    config = {
        "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
        "broker": {"url": broker.url},
        "probe": {"interval_s": 0.5, "timeout_s": 0.3},
        "sensors": [{"type": "simulated", "id": "cab"}],
        "queue": {"path": str(tmp_path / "q.sqlite")},
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    return subprocess.Popen(
        ["faketime", "-f", offset, sys.executable, "-m", "pantau", "agent", "--config", str(path)],
        env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "agent.log").open("wb"),
    )  # fmt: skip


async def clock_verdict(influxd: InfluxProcess, database: str) -> tuple[Verdict, str]:
    async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
        observations = await Observer(influx, RulesConfig(thresholds=[])).observe(time.time_ns())
    [clock] = [o for o in observations if o.key == "clock:s1"]
    return clock.verdict, clock.cause


async def test_a_clock_ten_minutes_ahead_is_held_at_the_edge_and_flagged(
    collector: Collector, broker: MosquittoProcess, influxd: InfluxProcess, database: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    agent = start_skewed_agent("+600s", broker, tmp_path)
    try:

        async def refused() -> bool:
            seen = await counters(collector.http_port)
            return seen.get("pantau_future_rejected_total:s1", 0) >= 3

        await async_wait_for(refused, timeout_s=30, what="future-stamped batches refused")
        assert agent.poll() is None
        births = influx_rows(influxd.url, database, 'SELECT "clock_ahead_s" FROM "site"')
        assert births and 595 < births[-1]["clock_ahead_s"] < 605  # stored, with its error
        assert influx_rows(influxd.url, database, 'SELECT "value" FROM "sensor"') == []
        assert count_queued(tmp_path / "q.sqlite") > 0  # held at the edge, nothing lost
        verdict, cause = await clock_verdict(influxd, database)
        assert verdict is Verdict.BAD and cause.startswith("site clock ahead by 600 s")
    finally:
        agent.terminate()
        agent.wait(15)


async def test_a_clock_two_days_behind_is_stored_at_edge_time_and_flagged(
    collector: Collector, broker: MosquittoProcess, influxd: InfluxProcess, database: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    agent = start_skewed_agent("-2d", broker, tmp_path)
    try:

        async def measured() -> bool:
            rows = influx_rows(
                influxd.url, database, 'SELECT "offset_ms" FROM "pantau_site_clock"'
            )  # the collector records the agent's offset at its own (right) time
            return any(r["offset_ms"] > 172_000_000 for r in rows)

        await async_wait_for(measured, timeout_s=30, what="the agent's clock offset")
        sensors = influx_rows(influxd.url, database, 'SELECT "value" FROM "sensor" WHERE time > 0')
        two_days_ago = time.time_ns() - 2 * 86400 * S
        assert sensors and all(abs(int(r["time"]) - two_days_ago) < 120 * S for r in sensors)
        verdict, cause = await clock_verdict(influxd, database)
        assert verdict is Verdict.BAD and cause.startswith("site clock behind by 172800 s")
    finally:
        agent.terminate()
        agent.wait(15)
