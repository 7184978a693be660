"""Rollups hold the same counts as the raw points: availability read through them equals the raw
computation exactly, for any window, grouping and maintenance window, and still after an
uplink replays hours of late readings through the collector."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cloud.api.app import create_app
from cloud.auth.settings import AuthSettings
from cloud.availability import GroupBy, MaintenanceSpan, compute
from cloud.collector import Collector
from cloud.collector_service import run_collector_service
from cloud.config import CollectorConfig
from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.rollup.reader import Source, plan, rollup_state
from cloud.rollup.retention import Retention, ensure_policies
from cloud.rollup.timegrid import DAY_NS, HOUR_NS, LocalDays, fixed_offset_s, floor_hour
from cloud.rollup.worker import RollupWorker, WorkerSettings
from cloud.rollup.writer import RollupSpec
from devtools.localsvc import InfluxProcess, MosquittoProcess
from pantau.core.contract import CameraReading, Cause, ReadingBatch, TopicKind, site_topic
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from tests.helpers import async_wait_for, serving
from tests.history import History

S = 1_000_000_000
SPEC = RollupSpec(days=LocalDays(fixed_offset_s("Asia/Jakarta")))


def _fleet_history(t0_ns: int, hours: int) -> History:
    """3 sites in 2 districts, 2 cameras each, probed every 10 s for ``hours``: outages, a site
    whose agent was off for 5 hours, a camera that is degraded for a while, a cabinet sensor."""
    h = History(t0_ns)
    end = hours * 3600
    for site, district in (("s1", "d1"), ("s2", "d1"), ("s3", "d2")):
        h.lines.append(
            f"site,district={district},site={site} online=1i,probe_interval_s=10.0 {t0_ns}"
        )
        for number in (1, 2):
            camera = f"{site}c{number}"
            # s2's agent is off from hour 7 to hour 12: unknown, not down.
            spans = [(0, 7 * 3600), (12 * 3600, end)] if site == "s2" else [(0, end)]
            for start_s, end_s in spans:
                h.camera(
                    site,
                    district,
                    camera,
                    start_s=start_s,
                    end_s=end_s,
                    up=lambda t, n=number: not (n * 5000 <= t % 30000 < n * 5000 + 1700),
                )
    h.sensor("s1", "cab", "temperature", span=(0, end), value=lambda t: 30 + (t % 7200) / 600)
    # s3c1 shows a frozen picture for two hours: degraded (up, with state).
    h.lines = [
        line.replace(" up=1i", ' up=1i,state="degraded"')
        if line.startswith("camera,camera=s3c1,")
        and 20 * 3600 * S <= _ts(line) - t0_ns < 22 * 3600 * S
        else line
        for line in h.lines
    ]
    return h


def _ts(line: str) -> int:
    return int(line.rsplit(" ", 1)[1])


@pytest.fixture
async def influx(influxd: InfluxProcess, database: str) -> AsyncIterator[InfluxClient]:
    async with InfluxClient(
        InfluxSettings(url=influxd.url, database=database, timeout_s=60)
    ) as client:
        assert await ensure_policies(client, Retention())
        yield client


async def _both(
    influx: InfluxClient,
    start: int,
    end: int,
    group_by: GroupBy,
    maintenance: list[MaintenanceSpan],
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    answers = []
    for use in (True, False):
        rows = await compute(
            influx,
            start_ns=start,
            end_ns=end,
            maintenance=maintenance,
            group_by=group_by,
            use_rollups=use,
        )
        answers.append([row.as_dict() for row in rows])
    rolled, raw = answers
    return rolled, raw


async def test_rollups_equal_the_raw_computation(influx: InfluxClient) -> None:
    """50 hours of a 6-camera fleet rolled up by the worker: every window (partial hours at the
    edges, local-day boundaries, all of it), every grouping, with and without a maintenance
    window, gives exactly the raw answer, while reading days and hours instead of probes."""
    now = time.time_ns()
    t0 = floor_hour(now) - 50 * HOUR_NS
    history = _fleet_history(t0, 50)
    await history.write(influx)
    report = await RollupWorker(influx, SPEC, WorkerSettings(settle_s=60)).step(now)
    assert report.hours == 50 if now - floor_hour(now) >= 60 * S else 49

    state = await rollup_state(influx, now)
    assert state is not None and state.watermark_ns >= floor_hour(now) - HOUR_NS
    whole = (t0 + 1234 * S, now - 95 * S)
    sources = {segment.source for segment in plan(*whole, state)}
    assert sources == {Source.RAW, Source.HOURS, Source.DAYS}

    day = SPEC.days.ceil(t0)
    windows = [whole, (day - 3 * HOUR_NS - 17 * S, day + 5 * HOUR_NS + 3 * S), (t0, t0 + DAY_NS)]
    maintenance = [
        MaintenanceSpan(t0 + 7 * HOUR_NS + 600 * S, t0 + 9 * HOUR_NS + 1200 * S, site="s1"),
        MaintenanceSpan(day - 2 * HOUR_NS, day + 2 * HOUR_NS, district="d2"),
    ]
    for window in windows:
        for group_by in GroupBy:
            for spans in ([], maintenance):
                rolled, raw = await _both(influx, *window, group_by, spans)
                assert rolled == raw, (window, group_by, spans)
                assert raw and all(r["up_seconds"] or r["unknown_seconds"] for r in raw)

    # The site whose agent was off has 5 hours unknown, not down, in both.
    rows = {r["camera"]: r for r in (await _both(influx, t0, t0 + DAY_NS, GroupBy.CAMERA, []))[0]}
    assert rows["s2c1"]["unknown_seconds"] == pytest.approx(5 * 3600, abs=10)

    # Districts, degraded probes and sensors are rolled up with the same numbers as raw.
    district = series_rows(
        await influx.query(
            'SELECT sum("probes") AS "probes", sum("degraded") AS "degraded" FROM '
            f'"rollup_1h"."district_1h" WHERE time >= {t0} AND time < {t0 + 50 * HOUR_NS} '
            'GROUP BY "district"'
        )
    )
    raw_district = series_rows(
        await influx.query(
            f'SELECT count("up") AS "probes" FROM "camera" WHERE time >= {t0} '
            f'AND time < {t0 + 50 * HOUR_NS} GROUP BY "district"'
        )
    )
    assert {r["district"]: r["probes"] for r in district} == {
        r["district"]: r["probes"] for r in raw_district
    }
    assert {r["district"]: r["degraded"] for r in district} == {"d1": 0, "d2": 720}
    sensor = series_rows(
        await influx.query(
            'SELECT "min", "mean", "max", "count" FROM "rollup_1h"."sensor_1h" '
            f"WHERE time = {t0 + 3 * HOUR_NS}"
        )
    )
    truth = [30 + (t % 7200) / 600 for t in range(3 * 3600, 4 * 3600, 10)]  # what was written
    assert sensor == [
        {
            "time": t0 + 3 * HOUR_NS,
            "min": min(truth),
            "mean": pytest.approx(sum(truth) / len(truth)),
            "max": max(truth),
            "count": len(truth),
            "_measurement": "sensor_1h",
        }
    ]


def _replay(site: str, camera: str, start_ns: int, end_ns: int) -> list[bytes]:
    """An agent's store-and-forward replay: one reading every 10 s, 400 per message."""
    readings = [
        CameraReading(camera=camera, ts=ts, up=True, cause=Cause.OK, latency_ms=3.0)
        for ts in range(start_ns, end_ns, 10 * S)
    ]
    return [
        ReadingBatch(site=site, district="d1", cameras=readings[i : i + 400])
        .model_dump_json()
        .encode()
        for i in range(0, len(readings), 400)
    ]


async def test_late_replay_is_rolled_up_again(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """A site's uplink was down for 3 of the last 8 hours; its hours were rolled up without the
    data. The agent then replays them through the collector: the collector marks those hours,
    its rollup worker recomputes them, and rollups equal the raw computation again."""
    now = time.time_ns()
    t0 = floor_hour(now) - 8 * HOUR_NS
    history = History(t0)
    history.lines.append(f"site,district=d1,site=s1 online=1i,probe_interval_s=10.0 {t0}")
    history.camera("s1", "d1", "c1", start_s=0, end_s=2 * 3600)
    history.camera("s1", "d1", "c1", start_s=5 * 3600, end_s=8 * 3600)
    config = CollectorConfig.model_validate(
        {
            "mqtt": {"url": broker.url, "client_id": "rollup-collector"},
            "influx": {"url": influxd.url, "database": database},
            "dead_letter_path": str(tmp_path / "dl.sqlite"),
            "http_port": 0,
            "rollup": {"every_s": 0.3, "settle_s": 0},
        }
    )
    publisher = MqttLink(LinkSettings(address=BrokerAddress.parse(broker.url), client_id="s1"))
    window = (t0, floor_hour(now))
    async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
        await history.write(influx)  # what was stored live, before the collector below started
        collector = Collector(config)
        task = asyncio.create_task(run_collector_service(config, collector))
        try:
            await collector.ready.wait()

            async def caught_up() -> bool:
                state = await rollup_state(influx, time.time_ns())
                return state is not None and state.watermark_ns >= floor_hour(now)

            await async_wait_for(caught_up, timeout_s=30, what="the worker rolled up 8 hours")
            before, raw_before = await _both(influx, *window, GroupBy.CAMERA, [])
            assert before == raw_before
            assert before[0]["unknown_seconds"] == pytest.approx(3 * 3600, abs=10)

            await publisher.start()
            await publisher.wait_connected(10)
            for message in _replay("s1", "c1", t0 + 2 * HOUR_NS, t0 + 5 * HOUR_NS):
                await publisher.publish(site_topic("s1", TopicKind.READINGS), message)

            async def recomputed() -> bool:
                rolled, raw = await _both(influx, *window, GroupBy.CAMERA, [])
                return rolled == raw and raw[0]["unknown_seconds"] < 60

            await async_wait_for(recomputed, timeout_s=30, what="rollups equal raw after replay")
            rows = series_rows(
                await influx.query(
                    f'SELECT "marked", "done" FROM "rollup_dirty" WHERE time >= {t0}'
                )
            )
            assert {r["time"] for r in rows} == {t0 + k * HOUR_NS for k in (2, 3, 4)}
            assert all(r["done"] == r["marked"] for r in rows)
        finally:
            await publisher.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_policies_and_a_slow_influxdb_answers_504(
    influx: InfluxClient, database: str, tmp_path: Path
) -> None:
    """The collector's retention policies are the documented ones; an InfluxDB that does not
    answer within the API's --influx-timeout gives 504 naming the timeout, not 'unavailable'."""
    rows = await influx.query(f'SHOW RETENTION POLICIES ON "{database}"', database="")
    policies = {v[0]: (v[1], v[4]) for v in rows[0]["series"][0]["values"]}
    assert policies == {
        "autogen": ("840h0m0s", True),
        "rollup_1h": ("17520h0m0s", False),
        "rollup_1d": ("87600h0m0s", False),
    }
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        slow = InfluxSettings(
            url=f"http://127.0.0.1:{silent.getsockname()[1]}", database=database, timeout_s=0.5
        )
        app = create_app(
            influx=slow,
            state_url=f"sqlite:///{tmp_path / 's.sqlite'}",
            auth=AuthSettings(public_read=True),
        )
        async with serving(app) as url, httpx.AsyncClient(timeout=10) as http:
            response = await http.get(
                f"{url}/api/availability",
                params={"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"},
            )
    assert response.status_code == 504
    problem = response.json()
    assert problem["title"] == "InfluxDB timeout"
    assert "0.5 s" in problem["detail"] and "--influx-timeout" in problem["detail"]
