"""Recording and device problems from what the collector stores (its own line format), on a
real InfluxDB: recording gap, retention below goal, recorder disk failed, camera replaced,
firmware changed, camera clock wrong; and each one's good case."""

from __future__ import annotations

import time

from cloud.influx import InfluxClient, InfluxSettings
from cloud.lineproto import batch_lines
from cloud.problems.config import RulesConfig
from cloud.problems.model import Observation, Verdict
from cloud.problems.observe import Observer
from devtools.localsvc import InfluxProcess
from pantau.core.contract import (
    DeviceReading,
    DiskStatus,
    ReadingBatch,
    RecorderDiskReading,
    RecordGap,
    RecordingReading,
)
from tests.history import History, S

HOUR = 3600


def recording(camera: str, t: int, *, gap_s: int = 0, days: float = 40.0) -> RecordingReading:
    gaps = [RecordGap(start_ts=t - 600 * S, end_ts=t - (600 - gap_s) * S)] if gap_s else []
    return RecordingReading(
        camera=camera, recorder="nvr1", ts=t, window_s=HOUR, recorded_s=float(HOUR - gap_s),
        gaps=gaps, retention_days=days, retention_goal_days=30.0,
    )  # fmt: skip


def device(
    camera: str, t: int, *, serial: str, firmware: str = "V1", offset_ms: float = 0.0
) -> DeviceReading:
    return DeviceReading(
        device=camera, ts=t, ok=True, manufacturer="Hikvision", model="DS-2CD",
        firmware=firmware, serial=serial, clock_offset_ms=offset_ms,
    )  # fmt: skip


async def test_recording_and_device_problems(influxd: InfluxProcess, database: str) -> None:
    """Six cameras, each showing one condition (and c0 none), judged at one instant."""
    t0 = (time.time_ns() // S - 3 * 86400) * S
    history = History(t0, step_s=60)
    end_s = 2 * 86400
    history.collector(end_s - 1800, end_s)
    history.site("s1", "d1", end_s - 1800, end_s)
    now = history.at(end_s - 1)
    early, late = history.at(end_s - 2 * 3600 * 10), history.at(end_s - 300)
    batch = ReadingBatch(
        site="s1",
        district="d1",
        recordings=[
            recording("c0", late),
            recording("c1", late, gap_s=150),  # a 2.5-minute gap in the last hour
            recording("c2", late, days=12.0),  # 12 days kept, goal 30
        ],
        disks=[
            RecorderDiskReading(recorder="nvr1", disk="1", ts=late, status=DiskStatus.OK),
            RecorderDiskReading(
                recorder="nvr1", disk="2", ts=late, status=DiskStatus.FAILED, detail="smartFailed"
            ),
        ],
        devices=[
            device("c0", early, serial="A0"), device("c0", late, serial="A0"),
            device("c3", early, serial="OLD-3"), device("c3", late, serial="NEW-3"),
            device("c4", early, serial="A4", firmware="V1"),
            device("c4", late, serial="A4", firmware="V2"),
            device("c5", late, serial="A5", offset_ms=-125_000.0),
        ],
    )  # fmt: skip
    history.lines += batch_lines(batch)
    async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
        await history.write(influx)
        observations = await Observer(influx, RulesConfig()).observe(now)
    by_key: dict[str, Observation] = {o.key: o for o in observations}

    def verdict(key: str) -> Verdict:
        assert key in by_key, sorted(by_key)
        return by_key[key].verdict

    assert verdict("recording_gap:s1/c1@nvr1") is Verdict.BAD
    gap = by_key["recording_gap:s1/c1@nvr1"]
    assert "150 s not recorded" in gap.cause
    assert gap.details["gaps"] == [{"start_ns": late - 600 * S, "end_ns": late - 450 * S}]
    assert verdict("recording_gap:s1/c0@nvr1") is Verdict.GOOD
    assert verdict("retention:s1/c2@nvr1") is Verdict.BAD
    assert "12.0 days kept, goal 30" in by_key["retention:s1/c2@nvr1"].cause
    assert verdict("retention:s1/c0@nvr1") is Verdict.GOOD
    assert verdict("recorder_disk:s1/nvr1/disk2") is Verdict.BAD
    assert verdict("recorder_disk:s1/nvr1/disk1") is Verdict.GOOD
    replaced = by_key["camera_replaced:s1/c3"]
    assert replaced.verdict is Verdict.BAD and replaced.details == {"was": "OLD-3", "now": "NEW-3"}
    assert replaced.since_ns == early + 1
    assert verdict("camera_replaced:s1/c0") is Verdict.GOOD
    assert verdict("camera_replaced:s1/c4") is Verdict.GOOD
    assert verdict("firmware:s1/c4") is Verdict.BAD
    assert verdict("firmware:s1/c3") is Verdict.GOOD
    clock = by_key["camera_clock:s1/c5"]
    assert clock.verdict is Verdict.BAD and "behind by 125 s" in clock.cause
    assert verdict("camera_clock:s1/c0") is Verdict.GOOD  # only the latest hour is judged
