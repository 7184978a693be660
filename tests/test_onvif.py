"""ONVIF device checks against ipycam (a virtual IP camera written elsewhere) and pantau's own
simulator (simulators/onvif_sim.py): identity, the camera's clock offset, the field pitfalls, and
hostile services that cost nothing but their own camera's verdict."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.config import AgentConfig
from edge_agent.devices.onvif_check import OnvifTarget, check_onvif
from edge_agent.devices.onvif_time import (
    camera_utc,
    parse_duration_s,
    parse_xs_datetime,
    tz_offset,
)
from edge_agent.devices.scheduler import DeviceScheduler, onvif_jobs
from edge_agent.queue import ReadingQueue
from pantau.core.contract import DeviceReading
from simulators.onvif_sim import OnvifDevice, OnvifMode, OnvifSimulator
from tests.fakes import WallClock
from tests.helpers import async_wait_for

DEADLINE_S = 2.0
LIMIT = 2_000_000


async def check(port: int, *, user: str | None = "admin", pw: str | None = "pw") -> DeviceReading:
    target = OnvifTarget("cam1", "127.0.0.1", port, user, pw)
    return await check_onvif(target, now_ns=time.time_ns, timeout_s=DEADLINE_S, max_bytes=LIMIT)


@pytest.fixture
def ipycam() -> Iterator[tuple[int, object]]:
    """ipycam's own HTTP/ONVIF server (its streaming left off), with credentials set, so every
    call (the time too) needs WS-Security."""
    from ipycam.camera import IPCamera, ReusableThreadingTCPServer  # noqa: PLC0415
    from ipycam.config import CameraConfig  # noqa: PLC0415
    from ipycam.http import IPCameraHTTPHandler  # noqa: PLC0415

    config = CameraConfig(
        local_ip="127.0.0.1", serial_number="IPY-4242", firmware_version="9.9.1",
        manufacturer="PythonCam", model="VirtualCam-1", username="admin", password="pw",
    )  # fmt: skip
    camera = IPCamera(config)
    handler = type("Handler", (IPCameraHTTPHandler,), {"camera": camera})
    server = ReusableThreadingTCPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], config
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_ipycam_identity_and_clock(ipycam: tuple[int, object]) -> None:
    """ipycam says who it is; its clock (the host's) is within the second's resolution."""
    port, _ = ipycam
    reading = await check(port)
    assert reading.ok, reading.error
    assert (reading.manufacturer, reading.model) == ("PythonCam", "VirtualCam-1")
    assert (reading.serial, reading.firmware) == ("IPY-4242", "9.9.1")
    assert reading.clock_offset_ms is not None and abs(reading.clock_offset_ms) < 1500
    assert "media" in reading.services


async def test_ipycam_wrong_password_is_its_error(ipycam: tuple[int, object]) -> None:
    port, _ = ipycam
    reading = await check(port, pw="wrong")
    assert not reading.ok and reading.error and reading.serial is None


async def test_ipycam_serial_changed_is_seen(ipycam: tuple[int, object]) -> None:
    """A replaced camera (new serial, same address) reads differently on the next check."""
    port, config = ipycam
    first = await check(port)
    config.serial_number = "IPY-9999"  # type: ignore[attr-defined]
    config.firmware_version = "10.0.0"  # type: ignore[attr-defined]
    second = await check(port)
    assert (first.serial, second.serial) == ("IPY-4242", "IPY-9999")
    assert second.firmware == "10.0.0"


@pytest.mark.parametrize("offset_s", [0.0, 120.0, -3600.0, 86400.0 * 2])
async def test_clock_offset_measured(offset_s: float) -> None:
    """The camera's clock minus the agent's, within the second the answer carries."""
    async with OnvifSimulator(OnvifDevice(clock_offset_s=offset_s)) as sim:
        reading = await check(sim.port)
    assert reading.ok and reading.clock_offset_ms is not None
    assert abs(reading.clock_offset_ms - offset_s * 1000) < 1000


async def test_utc_filled_with_local_time_is_corrected() -> None:
    """A camera writing Jakarta time (+7 h) into UTCDateTime is not 7 hours off."""
    async with OnvifSimulator(OnvifDevice(mode=OnvifMode.UTC_IS_LOCAL, clock_offset_s=30)) as sim:
        reading = await check(sim.port)
    assert reading.clock_offset_ms is not None
    assert abs(reading.clock_offset_ms - 30_000) < 1000


async def test_auth_on_every_call_and_a_far_clock() -> None:
    """A camera that refuses the unauthenticated time request and whose clock is a day off
    still answers (the WS-Security timestamps follow its clock)."""
    device = OnvifDevice(mode=OnvifMode.AUTH_EVERY_CALL, clock_offset_s=86400)
    async with OnvifSimulator(device) as sim:
        reading = await check(sim.port)
    assert reading.ok and reading.serial == "SC200-0001"
    assert device.actions[:2] == ["GetSystemDateAndTime", "GetSystemDateAndTime"]


async def test_serial_and_firmware_switch() -> None:
    device = OnvifDevice()
    async with OnvifSimulator(device) as sim:
        before = await check(sim.port)
        device.serial, device.firmware = "SC200-0002", "V5.7.0"
        after = await check(sim.port)
    assert (before.serial, after.serial) == ("SC200-0001", "SC200-0002")
    assert (before.firmware, after.firmware) == ("V5.5.0 build 200101", "V5.7.0")


async def test_hostile_services_cost_only_their_verdict() -> None:
    """Malformed XML, 10 MB bodies (announced or not) and silence, checked at once beside a good
    camera: each hostile one gets its error within the deadline, the good one its identity."""
    modes = [OnvifMode.MALFORMED, OnvifMode.HUGE, OnvifMode.HUGE_STREAM, OnvifMode.SILENT]
    sims = [OnvifSimulator(OnvifDevice(mode=m)) for m in [OnvifMode.NORMAL, *modes]]
    for sim in sims:
        await sim.start()
    try:
        started = time.monotonic()
        readings = await asyncio.gather(*(check(sim.port) for sim in sims))
        took = time.monotonic() - started
    finally:
        for sim in sims:
            await sim.stop()
    good, *bad = readings
    assert good.ok and good.serial == "SC200-0001"
    assert all(not r.ok and r.error for r in bad), bad
    assert "2000000" in (bad[1].error or "") and "2000000" in (bad[2].error or "")
    assert "within" in (bad[3].error or "")
    assert took < DEADLINE_S + 1.5


async def test_scheduler_queues_stamped_device_readings(tmp_path: Path) -> None:
    """The agent's device scheduler checks each ONVIF camera and queues its reading, stamped."""
    async with OnvifSimulator() as good, OnvifSimulator(OnvifDevice(mode=OnvifMode.SILENT)) as bad:
        config = AgentConfig.model_validate(
            {
                "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
                "broker": {"url": "mqtt://127.0.0.1:1"},
                "queue": {"path": str(tmp_path / "q.sqlite")},
                "devices": {"interval_s": 5, "timeout_s": 1},
                "cameras": [
                    {"id": "c1", "rtsp_url": "rtsp://127.0.0.1/x", "onvif": {"port": good.port}},
                    {"id": "c2", "rtsp_url": "rtsp://127.0.0.1/y", "onvif": {"port": bad.port}},
                ],
            }
        )
        queue = ReadingQueue(config.queue.path, max_readings=1000, max_age_s=3600)
        clock = WallClock()
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        with ThreadPoolExecutor(1) as executor:
            scheduler = DeviceScheduler(
                config, onvif_jobs(config, clock), clock=clock, queue=queue,
                executor=executor, publisher=None,
            )  # fmt: skip
            task = asyncio.create_task(scheduler.run())

            async def both() -> bool:
                return len(queue) >= 2

            try:
                await async_wait_for(both, timeout_s=10)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        rows = queue.take(after_id=0, upto_id=None, limit=10)
        queue.close()
    readings = {r.device: r for r in (DeviceReading.model_validate_json(q.body) for q in rows)}
    assert readings["c1"].ok and readings["c1"].serial == "SC200-0001" and readings["c1"].ts > 0
    assert not readings["c2"].ok


def test_posix_and_iana_time_zones() -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert tz_offset("WIB-7", at) == dt.timedelta(hours=7)
    assert tz_offset("CST-8:00:00", at) == dt.timedelta(hours=8)
    assert tz_offset("EST5EDT,M3.2.0,M11.1.0", at) == dt.timedelta(hours=-5)
    assert tz_offset("<+0530>-5:30", at) == dt.timedelta(hours=5, minutes=30)
    assert tz_offset("Asia/Jakarta", at) == dt.timedelta(hours=7)
    assert tz_offset("GMT0", at) == dt.timedelta(0)
    assert tz_offset("nonsense", at) is None and tz_offset("XYZ-99", at) is None


def _when(moment: dt.datetime) -> dict[str, object]:
    return {
        "Date": {"Year": moment.year, "Month": moment.month, "Day": moment.day},
        "Time": {"Hour": moment.hour, "Minute": moment.minute, "Second": moment.second},
    }


def test_camera_utc_pitfalls() -> None:
    utc = dt.datetime(2026, 3, 1, 5, 0, 0, tzinfo=dt.UTC)
    local = utc + dt.timedelta(hours=7)
    zone = {"TZ": "WIB-7"}
    plain = {"UTCDateTime": _when(utc), "LocalDateTime": _when(local), "TimeZone": zone}
    assert camera_utc(plain) == (utc, "")
    wrong = {"UTCDateTime": _when(local), "LocalDateTime": _when(local), "TimeZone": zone}
    assert camera_utc(wrong)[0] == utc
    no_utc = {"LocalDateTime": _when(local), "TimeZone": zone}
    assert camera_utc(no_utc)[0] == utc
    assert camera_utc({"LocalDateTime": _when(local)})[0] is None
    assert camera_utc({})[0] is None
    assert camera_utc({"UTCDateTime": {"Date": {"Year": "x"}}})[0] is None


def test_subscription_times_and_durations() -> None:
    z = parse_xs_datetime("2026-03-01T05:00:00Z")
    assert z == dt.datetime(2026, 3, 1, 5, tzinfo=dt.UTC)
    assert parse_xs_datetime("2026-03-01T12:00:00+07:00") == z
    assert parse_xs_datetime("2026-03-01T05:00:00") == z
    assert parse_xs_datetime("soon") is None
    assert parse_duration_s("PT600S") == 600
    assert parse_duration_s("PT10M") == 600
    assert parse_duration_s("PT1H30M") == 5400
    assert parse_duration_s("PT") is None and parse_duration_s("600") is None
