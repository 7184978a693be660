"""Camera events end to end: the agent's device scheduler queues a camera's event verdict at
once when it changes (not a device interval later), and the cloud raises "camera tampered",
"video signal lost", "camera storage failed" and the "camera rebooted" event from the stored
device points (real InfluxDB), leaving cameras whose events are unknown as they were."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cloud.influx import InfluxClient, InfluxSettings
from cloud.lineproto import batch_lines
from cloud.problems.config import RulesConfig
from cloud.problems.model import Observation, Verdict
from cloud.problems.observe import Observer
from devtools.localsvc import InfluxProcess
from edge_agent.config import AgentConfig
from edge_agent.devices.scheduler import DeviceScheduler
from edge_agent.queue import ReadingQueue
from pantau.core.contract import DeviceReading, ReadingBatch
from simulators.onvif_events_sim import CameraEvents
from simulators.onvif_sim import OnvifDevice, OnvifSimulator
from tests.fakes import WallClock
from tests.helpers import async_wait_for
from tests.history import History, S


async def test_scheduler_queues_event_changes_at_once(tmp_path: Path) -> None:
    """With a 300 s device interval, a tamper is in the queue within seconds of the camera's
    report, with the camera's identity and the hold said (``events_held``)."""
    events = CameraEvents(one_shot_tamper=True)
    async with OnvifSimulator(OnvifDevice(events=events)) as sim:
        config = AgentConfig.model_validate(
            {
                "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
                "broker": {"url": "mqtt://127.0.0.1:1"},
                "queue": {"path": str(tmp_path / "q.sqlite")},
                "devices": {
                    "interval_s": 300, "timeout_s": 2,
                    "events": {"subscription_s": 10, "pull_timeout_s": 1},
                },
                "cameras": [
                    {"id": "c1", "rtsp_url": "rtsp://127.0.0.1/x", "onvif": {"port": sim.port}},
                ],
            }
        )  # fmt: skip
        queue = ReadingQueue(config.queue.path, max_readings=1000, max_age_s=3600)
        with ThreadPoolExecutor(1) as executor:
            scheduler = DeviceScheduler.for_site(
                config, clock=WallClock(), queue=queue, executor=executor, publisher=None
            )
            task = asyncio.create_task(scheduler.run())

            async def readings() -> list[DeviceReading]:
                rows = queue.take(after_id=0, upto_id=None, limit=100)
                return [DeviceReading.model_validate_json(r.body) for r in rows]

            async def live() -> bool:
                return any(r.events_ok for r in await readings())

            async def tampered() -> list[DeviceReading]:
                return [r for r in await readings() if r.events == ["tamper"]]

            try:
                await async_wait_for(live, timeout_s=10, what="a reading with live events")
                events.set_tamper(True)
                started = time.monotonic()
                found = await async_wait_for(tampered, timeout_s=10, what="the tamper queued")
                took = time.monotonic() - started
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        queue.close()
    reading = found[0]
    assert reading.ok and reading.serial == "SC200-0001"
    assert reading.events_held == ["tamper"] and reading.events_ok
    assert took < 5  # at once, not at the next 300 s round


def device(camera: str, t: int, **events: object) -> DeviceReading:
    return DeviceReading.model_validate(
        {"device": camera, "ts": t, "ok": True, "serial": f"S-{camera}", **events}
    )


async def test_event_problems(influxd: InfluxProcess, database: str) -> None:
    """Each event raises its problem from the latest point; an unknown state (subscription
    down) or an unwatched camera is not judged; a reboot within the hour is an event."""
    t0 = (time.time_ns() // S - 86400) * S
    history = History(t0, step_s=60)
    end_s = 20_000
    history.collector(end_s - 1800, end_s)
    history.site("s1", "d1", end_s - 1800, end_s)
    now = history.at(end_s - 1)
    early, late = history.at(end_s - 1200), history.at(end_s - 300)
    live = {"events_ok": True}
    batch = ReadingBatch(
        site="s1",
        district="d1",
        devices=[
            device("c1", late, events=["tamper"], events_held=["tamper"], **live),
            device("c2", late, events=["signal_loss"], **live),
            device("c3", late, events=["storage_failure"], **live),
            device("c4", early, events=["tamper"], **live),
            device("c4", late, events_ok=False, events_error="no answer"),  # unknown now
            device("c5", late),  # events not watched
            device("c6", early, events=["tamper"], **live),
            device("c6", late, **live),  # the tamper ended
            device("c7", late, rebooted_ns=late - 600 * S, **live),
            device("c8", late, rebooted_ns=t0 - 86400 * S, **live),
        ],
    )
    history.lines += batch_lines(batch)
    async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
        await history.write(influx)
        observations = await Observer(influx, RulesConfig()).observe(now)
    by_key: dict[str, Observation] = {o.key: o for o in observations}

    def verdict(key: str) -> Verdict | None:
        found = by_key.get(key)
        return None if found is None else found.verdict

    tamper = by_key["camera_tamper:s1/c1"]
    assert tamper.verdict is Verdict.BAD and tamper.title == "camera tampered"
    assert "one-shot" in tamper.cause and "pantau clears it" in tamper.cause
    assert verdict("video_signal:s1/c2") is Verdict.BAD
    assert verdict("camera_tamper:s1/c2") is Verdict.GOOD
    assert verdict("camera_storage:s1/c3") is Verdict.BAD
    assert verdict("camera_storage:s1/c1") is Verdict.GOOD
    assert verdict("camera_tamper:s1/c4") is None  # unknown: an open problem stays as it is
    assert verdict("camera_tamper:s1/c5") is None
    assert verdict("camera_tamper:s1/c6") is Verdict.GOOD
    reboot = by_key["camera_reboot:s1/c7"]
    assert reboot.verdict is Verdict.BAD and reboot.since_ns == late - 600 * S
    assert verdict("camera_reboot:s1/c8") is Verdict.GOOD
