"""End to end: fake cameras → agent processes → mosquitto → collector → InfluxDB."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cloud.influx import InfluxClient, InfluxSettings, series_rows
from devtools.localsvc import InfluxProcess, MosquittoProcess
from simulators.cameras import CameraMode
from simulators.runner import Simulation
from simulators.scenario import Scenario, SimSite
from tests.helpers import async_wait_for, running_simulation

PROBE_INTERVAL_S = 1.0
KEEPALIVE_S = 2


@pytest.fixture
async def influx(influxd: InfluxProcess, database: str) -> AsyncIterator[InfluxClient]:
    async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as client:
        yield client


@pytest.fixture
async def sim(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> AsyncIterator[Simulation]:
    scenario = Scenario(
        seed=1,
        probe_interval=PROBE_INTERVAL_S,
        probe_timeout=0.5,
        keepalive=KEEPALIVE_S,
        sites=[
            SimSite(id=f"s{i}", district=f"d{i}", lat=-3.8, lon=102.2 + i, cameras=4)
            for i in (1, 2, 3)
        ],
    )
    async with running_simulation(
        scenario,
        mqtt_url=broker.url,
        influx_url=influxd.url,
        database=database,
        workdir=tmp_path / "sim",
    ) as simulation:
        yield simulation


async def rows(influx: InfluxClient, query: str) -> list[dict[str, Any]]:
    return series_rows(await influx.query(query))


async def test_three_sites_end_to_end(sim: Simulation, influx: InfluxClient) -> None:
    """12 cameras, sensors and births land; down, hung and a killed agent show as specified."""

    async def all_present() -> bool:
        cams = await rows(influx, 'SELECT count("up") FROM camera GROUP BY site, camera')
        sensors = await rows(influx, 'SELECT count("value") FROM sensor GROUP BY site')
        online = await rows(influx, 'SELECT last("online") FROM site GROUP BY site')
        return len(cams) == 12 and len(sensors) == 3 and len(online) == 3

    await async_wait_for(all_present, timeout_s=30, what="points for 12 cameras and 3 sites")
    districts = await rows(influx, 'SELECT last("up") FROM camera GROUP BY district')
    assert {r["district"] for r in districts} == {"d1", "d2", "d3"}
    sites = await rows(influx, 'SELECT last("online"), "lat", "lon" FROM site GROUP BY site')
    assert all(r["last"] == 1 and r["lat"] == -3.8 for r in sites)

    # A camera switched down shows up=0, cause refused, within two probe intervals.
    switched_ns = time.time_ns()
    await sim.sites["s1"].cameras["c2"].set_mode(CameraMode.DOWN)
    # A hung camera shows cause timeout.
    await sim.sites["s3"].cameras["c3"].set_mode(CameraMode.HUNG)

    async def failures(site: str, camera: str) -> list[dict[str, Any]] | None:
        found = await rows(
            influx,
            f"SELECT up, cause, stage FROM camera WHERE site='{site}' AND camera='{camera}' "
            f"AND up = 0 AND time >= {switched_ns} ORDER BY time LIMIT 2",
        )
        return found if len(found) == 2 else None

    # A probe in flight at the switch may fail at a later stage (it passed TCP before); the
    # next probe begins after the switch and must name the first stage that fails.
    down = await async_wait_for(lambda: failures("s1", "c2"), timeout_s=15, what="c2 down")
    assert down[0]["time"] - switched_ns <= 2 * PROBE_INTERVAL_S * 1e9
    assert (down[1]["cause"], down[1]["stage"]) == ("refused", "tcp")
    hung = await async_wait_for(lambda: failures("s3", "c3"), timeout_s=15, what="c3 hung")
    assert (hung[1]["cause"], hung[1]["stage"]) == ("timeout", "rtsp")

    # An agent killed with SIGKILL shows site online=0 via its Last Will within 1.5 x keepalive.
    killed_ns = time.time_ns()
    await sim.kill_process(sim.sites["s2"].process)

    async def offline() -> dict[str, Any] | None:
        found = await rows(
            influx,
            f"SELECT online FROM site WHERE site='s2' AND time >= {killed_ns} AND online = 0",
        )
        return found[0] if found else None

    will = await async_wait_for(offline, timeout_s=1.5 * KEEPALIVE_S + 5, what="s2 offline")
    assert will["time"] - killed_ns <= 1.5 * KEEPALIVE_S * 1e9
    # Every other site is still online.
    latest = await rows(influx, 'SELECT last("online") FROM site GROUP BY site')
    assert {r["site"]: r["last"] for r in latest} == {"s1": 1, "s2": 0, "s3": 1}
