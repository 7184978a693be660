"""The Hikvision ISAPI adapter against the simulated NVR (simulators/hikvision_sim.py): paging,
time zone, errors in HTTP 200, busy, namespaces, gaps, disks and hostile answers."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from edge_agent.devices.settings import DeviceChecksConfig, HikvisionRecorder
from edge_agent.recorders.hikvision import HikvisionAdapter
from pantau.core.contract import DiskStatus, RecorderDiskReading, RecordingReading
from simulators.hikvision_sim import Hdd, HikvisionSimulator, NvrMode, NvrState

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
HOUR = dt.timedelta(hours=1)


def adapter(sim: HikvisionSimulator, **limits: object) -> HikvisionAdapter:
    config = HikvisionRecorder.model_validate(
        {
            "type": "hikvision", "id": "nvr1", "url": sim.url, "username": "admin",
            "password": sim.state.password,
            "cameras": [
                {"camera": "cam1", "channel": 1, "retention_goal_days": 30},
                {"camera": "cam2", "channel": 2, "retention_goal_days": 30},
            ],
        }
    )  # fmt: skip
    settings = DeviceChecksConfig.model_validate({"timeout_s": 2.0, **limits})
    return HikvisionAdapter(config, settings, busy_wait_s=0.05)


def split(readings: list) -> tuple[dict[str, RecordingReading], list[RecorderDiskReading]]:  # type: ignore[type-arg]
    recs = {r.camera: r for kind, _, r in readings if kind == "recordings"}
    disks = [r for kind, _, r in readings if kind == "disks"]
    return recs, disks


def now_ns() -> int:
    return int(NOW.timestamp() * 1e9)


async def test_gap_found_with_its_start_and_end_across_pages() -> None:
    """Recording with a 2-minute hole, cut into 2-minute files so the hour spans several pages
    of 10: recorded seconds, the gap's start/end and retention are right."""
    state = NvrState(page_max=10)
    hole = (NOW - dt.timedelta(minutes=30), NOW - dt.timedelta(minutes=28))
    state.record(101, NOW - dt.timedelta(days=12), hole[0], file_s=120)
    state.record(101, hole[1], NOW, file_s=120)
    async with HikvisionSimulator(state) as sim:
        recs, _ = split(await adapter(sim).check(now_ns()))
    cam1 = recs["cam1"]
    assert cam1.error is None
    assert len(cam1.gaps) == 1
    gap = cam1.gaps[0]
    assert abs(gap.start_ts / 1e9 - hole[0].timestamp()) <= 1
    assert abs(gap.end_ts / 1e9 - hole[1].timestamp()) <= 1
    assert 3600 - 120 - 60 <= (cam1.recorded_s or 0) <= 3600 - 120
    assert cam1.retention_days is not None and abs(cam1.retention_days - 12) < 0.01
    pages = [s for s in state.searches if s["trackID"] == "101" and s["maxResults"] != "1"]
    assert len(pages) >= 3, "the hour's files span several pages"
    assert [int(p["searchResultPostion"]) for p in pages] == sorted(
        {int(p["searchResultPostion"]) for p in pages}
    )
    # cam2 records nothing: the whole window is one gap, no retention.
    assert recs["cam2"].recorded_s == 0 and len(recs["cam2"].gaps) == 1
    assert recs["cam2"].retention_days is None


@pytest.mark.parametrize("local_times", [True, False])
async def test_time_zone_local_wall_times_with_z(local_times: bool) -> None:
    """A recorder writing its local wall time (WIB, +7 h) with a Z, or true UTC: the gap lands
    at the same true time either way once the adapter is told (search_times)."""
    state = NvrState(local_times=local_times, tz_hours=7)
    state.record(101, NOW - 2 * HOUR, NOW - dt.timedelta(minutes=20))
    async with HikvisionSimulator(state) as sim:
        nvr = adapter(sim)
        nvr._config = nvr._config.model_copy(
            update={"search_times": "local" if local_times else "utc"}
        )
        recs, _ = split(await nvr.check(now_ns()))
    gap = recs["cam1"].gaps[-1]
    assert abs(gap.start_ts / 1e9 - (NOW - dt.timedelta(minutes=20)).timestamp()) <= 1
    sent = state.searches[0]["startTime"]
    shown = NOW - HOUR + (dt.timedelta(hours=7) if local_times else dt.timedelta(0))
    assert sent == shown.replace(tzinfo=None).isoformat() + "Z"


async def test_time_zone_misread_is_caught_by_the_test() -> None:
    """Reading a local-time recorder as UTC puts the gap 7 hours off: the check above can fail."""
    state = NvrState(local_times=True, tz_hours=7)
    state.record(101, NOW - 2 * HOUR, NOW - dt.timedelta(minutes=20))
    async with HikvisionSimulator(state) as sim:
        nvr = adapter(sim)
        nvr._config = nvr._config.model_copy(update={"search_times": "utc"})
        recs, _ = split(await nvr.check(now_ns()))
    assert recs["cam1"].recorded_s == 0  # the recording seems to lie 7 hours away


async def test_error_in_http_200_is_the_cameras_error() -> None:
    """A ResponseStatus "Invalid Operation" with HTTP 200 is an error, not an empty search."""
    state = NvrState(search_error=True)
    state.record(101, NOW - 2 * HOUR, NOW)
    async with HikvisionSimulator(state) as sim:
        recs, disks = split(await adapter(sim).check(now_ns()))
    assert recs["cam1"].recorded_s is None
    assert recs["cam1"].error is not None and "Invalid Operation" in recs["cam1"].error
    assert [d.status for d in disks] == [DiskStatus.OK]


async def test_busy_is_asked_again() -> None:
    """Three "Device Busy" answers in a row are waited out; the check still succeeds."""
    state = NvrState(busy=3)
    state.record(101, NOW - 2 * HOUR, NOW)
    async with HikvisionSimulator(state) as sim:
        started = time.monotonic()
        recs, _ = split(await adapter(sim).check(now_ns()))
    assert recs["cam1"].error is None and recs["cam1"].gaps == []
    assert state.busy == 0 and time.monotonic() - started >= 0.05 + 0.1 + 0.2


async def test_busy_for_good_is_an_error() -> None:
    state = NvrState(busy=1000)
    async with HikvisionSimulator(state) as sim:
        recs, disks = split(await adapter(sim).check(now_ns()))
    assert disks == [] and "Device Busy" in (recs["cam1"].error or "")


@pytest.mark.parametrize("namespace", ["isapi20", "hik20", "hik10", "none"])
async def test_namespaces_of_every_firmware(namespace: str) -> None:
    state = NvrState(namespace=namespace)
    state.record(101, NOW - 2 * HOUR, NOW)
    async with HikvisionSimulator(state) as sim:
        recs, disks = split(await adapter(sim).check(now_ns()))
    assert recs["cam1"].recorded_s == pytest.approx(3600, abs=10)
    assert len(disks) == 1


async def test_disks_failed_full_and_absent() -> None:
    state = NvrState(
        hdds=[Hdd(1), Hdd(2, status="error"), Hdd(3, free=0), Hdd(4, status="notexist")]
    )
    async with HikvisionSimulator(state) as sim:
        _, disks = split(await adapter(sim).check(now_ns()))
    assert [d.status for d in disks] == [
        DiskStatus.OK, DiskStatus.FAILED, DiskStatus.FULL, DiskStatus.ABSENT,
    ]  # fmt: skip
    assert disks[0].capacity_mb == 3_815_447 and disks[0].free_mb == 120_000


@pytest.mark.parametrize("mode", [NvrMode.HUGE, NvrMode.SILENT, NvrMode.GARBAGE])
async def test_hostile_recorder_costs_only_its_verdict(mode: NvrMode) -> None:
    """10 MB answers, silence and garbage: every camera gets an error within the deadline."""
    state = NvrState(mode=mode)
    async with HikvisionSimulator(state) as sim:
        started = time.monotonic()
        recs, disks = split(await adapter(sim, timeout_s=1.0).check(now_ns()))
    assert time.monotonic() - started < 3
    assert disks == [] and all(r.error for r in recs.values()), recs


async def test_wrong_password_says_so() -> None:
    async with HikvisionSimulator() as sim:
        nvr = adapter(sim)
        nvr._config = nvr._config.model_copy(update={"password": "wrong"})
        recs, _ = split(await nvr.check(now_ns()))
    assert "401" in (recs["cam1"].error or "")
