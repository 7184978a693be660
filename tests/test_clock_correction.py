"""The edge clock's rules on fakes (no broker, no faketime): stamps from the boot clock plus the
offset measured from receipts, readings held (on disk, never taken) until the first offset and
shifted exactly once,
per-device stamps strictly increasing through every correction. tests/test_clock_skew.py proves
the whole under libfaketime."""

from __future__ import annotations

import asyncio
import itertools
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from edge_agent.clock import (
    MS,
    SLEW,
    TIMESTAMP_FIELDS,
    DeviceClock,
    EdgeClock,
    HoldingQueue,
    keep_time,
    shift_item,
)
from edge_agent.config import PublishConfig
from edge_agent.publisher import Publisher
from edge_agent.queue import ReadingQueue
from edge_agent.roundtrips import ClockProbe, RoundTrips
from edge_agent.wire import encode_batch
from pantau.core.compat import reading_model
from pantau.core.contract import (
    READING_KINDS,
    CameraReading,
    Cause,
    GapReading,
    PublishTopic,
    ReadingBatch,
    SensorReading,
)
from tests.helpers import async_wait_for
from tests.test_publisher_unit import FakeLink

S = 10**9
BOX_AHEAD = 600 * S  # the box's clock at start is 10 minutes ahead of the true time
TRUE_START = 1_700_000_000 * S


@dataclass
class FakeTime:
    """A system clock and a monotonic clock the test moves."""

    wall: int = TRUE_START + BOX_AHEAD
    mono: int = 5 * S

    def advance(self, ns: int) -> None:
        self.wall += ns
        self.mono += ns

    def clock(self) -> EdgeClock:
        return EdgeClock(wall_ns=lambda: self.wall, mono_ns=lambda: self.mono)


def disk_queue(tmp_path: Path) -> ReadingQueue:
    return ReadingQueue(tmp_path / "q.sqlite", max_readings=10**6, max_age_s=10**9)


def sendable(queue: ReadingQueue) -> list[tuple[str, int, bytes]]:
    """What the publisher could take now (never held rows), oldest first."""
    return [(r.kind, r.ts, r.body) for r in queue.take(after_id=0, upto_id=None, limit=10**6)]


def sensor_item(clock: EdgeClock, device: str, boot_ns: int) -> tuple[str, int, bytes]:
    ts = clock.stamp(("sensor", device), boot_ns)
    body = SensorReading(sensor=device, kind="t", ts=ts, value=1.0).model_dump_json()
    return "sensors", ts, body.encode()


def test_device_clock_breaks_ties_by_a_millisecond_and_never_runs_back() -> None:
    """Same or earlier time for one device: one millisecond after its last stamp."""
    clock = DeviceClock()
    assert clock.stamp(("a",), 10 * MS + 5) == 10 * MS
    assert clock.stamp(("a",), 10 * MS) == 11 * MS
    assert clock.stamp(("a",), 3 * MS) == 12 * MS
    assert clock.stamp(("b",), 3 * MS) == 3 * MS  # other devices are independent


def test_stamps_follow_the_monotonic_clock_not_system_clock_steps() -> None:
    """NTP stepping the system clock by a day moves nothing: the boot frame is monotonic."""
    t = FakeTime()
    clock = t.clock()
    before = clock.boot_ns()
    t.wall -= 86_400 * S  # stepped back a day
    t.mono += 2 * S
    assert clock.boot_ns() - before == 2 * S
    assert clock.error_ms() is None and clock.correction_ms() is None


def test_the_first_offset_corrects_stamps_taken_before_it_and_after() -> None:
    """Held stamps shifted by settle()'s result and new stamps are both at the true time, and
    each device's stamps stay strictly increasing across the correction."""
    t = FakeTime()
    clock = t.clock()
    taken = [clock.stamp(("camera", "c1"), clock.boot_ns())]
    t.advance(S)
    taken.append(clock.stamp(("camera", "c1"), clock.boot_ns()))
    shift = clock.settle(-BOX_AHEAD + 123_456)  # measured: the box is 600 s ahead
    assert shift == -BOX_AHEAD  # whole milliseconds: stamps stay rounded
    corrected = [ts + shift for ts in taken]
    assert corrected == [TRUE_START, TRUE_START + S]
    t.advance(S)
    after = clock.stamp(("camera", "c1"), clock.boot_ns())
    assert after == TRUE_START + 2 * S
    # A cycle that read the time before settle() and stamps after it is corrected too.
    started = clock.boot_ns()
    t.advance(S // 2)
    assert clock.stamp(("camera", "c2"), started) == TRUE_START + 2 * S
    assert clock.error_ms() == pytest.approx(-600_000, abs=1)
    assert clock.correction_ms() == pytest.approx(-600_000, abs=1)


def test_a_later_offset_steps_forward_and_slews_back_without_running_back() -> None:
    """Drift measured later: forward at once; backward at half speed until absorbed, every stamp
    of a device after the one before."""
    t = FakeTime(wall=TRUE_START)
    clock = t.clock()
    clock.settle(0)
    clock.observe(2 * S)  # true time is 2 s later than we thought: step forward
    assert clock.now_ns() == TRUE_START + 2 * S
    clock.observe(-2 * S)  # and now 2 s earlier: slew back over 8 s at SLEW = 0.5
    stamps = []
    for _ in range(20):
        t.advance(S)
        stamps.append(clock.stamp(("sensor", "x"), clock.boot_ns()))
    steps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(steps) >= int((1 - SLEW) * S) - MS  # never backwards, at least half speed
    assert stamps[-1] == clock.boot_ns() - 2 * S  # caught up


def test_held_readings_are_released_shifted_once_then_pass_through(tmp_path: Path) -> None:
    """Before the clock is settled readings are on disk but none can be taken; the release
    shifts them; after that readings go straight through, unchanged."""
    queue = disk_queue(tmp_path)
    gate = HoldingQueue(queue, boot=1, holding=True)
    camera = CameraReading(camera="c1", ts=10 * S, up=True, cause=Cause.OK, since=9 * S)
    gap = GapReading(ts=10 * S, start_ts=8 * S, end_ts=9 * S, count=2)
    gate.append([("cameras", 10 * S, camera.model_dump_json().encode())], now_ns=0)
    gate.append([("gaps", 10 * S, gap.model_dump_json().encode())], now_ns=0)
    assert sendable(queue) == [] and gate.held == 2 and len(gate) == 2
    gate.release(-3 * S, now_ns=0)
    released = sendable(queue)
    moved = CameraReading.model_validate_json(released[0][2])
    assert (released[0][1], moved.ts, moved.since) == (7 * S, 7 * S, 6 * S)
    moved_gap = GapReading.model_validate_json(released[1][2])
    assert (moved_gap.ts, moved_gap.start_ts, moved_gap.end_ts) == (7 * S, 5 * S, 6 * S)
    gate.append([("gaps", 10 * S, b"{}")], now_ns=0)
    assert sendable(queue)[2:] == [("gaps", 10 * S, b"{}")] and gate.held == 0
    queue.close()


def test_every_timestamp_field_of_every_reading_kind_is_shifted() -> None:
    """A new TimestampNs field in the contract must be listed in TIMESTAMP_FIELDS."""
    for kind in READING_KINDS:
        properties = reading_model(kind).model_json_schema()["properties"]
        declared = {  # TimestampNs: an int below 2**63 - 1 (the InfluxDB limit)
            name
            for name, spec in properties.items()
            if f'"exclusiveMaximum": {2**63 - 1}' in json.dumps(spec)
        }
        assert declared == set(TIMESTAMP_FIELDS[kind]), kind
    item = ("cameras", 5, orjson.dumps({"ts": 5, "since": None}))
    assert orjson.loads(shift_item(item, 2)[2]) == {"ts": 7, "since": None}


@dataclass
class FakeSource:
    """Round trips the test sets, probes counted."""

    round_trips: RoundTrips = field(default_factory=RoundTrips)
    probes: int = 0

    def probe(self) -> bool:
        self.probes += 1
        return True

    def measured(self, offset_ns: int, rtt_ns: int) -> None:
        self.round_trips.add(0, rtt_ns, offset_ns + rtt_ns // 2)


async def test_keep_time_holds_until_a_fast_receipt_then_releases_once(tmp_path: Path) -> None:
    """Probes go out while holding; a slow round trip (5 s) is not trusted; the first fast one
    settles the clock: held readings and the cameras' state move by the same shift, and every
    reading reaches the queue exactly once, at the true time."""
    t = FakeTime()
    clock, queue, source = t.clock(), disk_queue(tmp_path), FakeSource()
    gate = HoldingQueue(queue, boot=clock.boot_id, holding=True)
    shifts: list[int] = []

    def hold(item: tuple[str, int, bytes]) -> None:
        gate.append([item], now_ns=0)

    with ThreadPoolExecutor(1) as executor:
        task = asyncio.create_task(
            keep_time(
                clock,
                gate,
                source.round_trips,
                source.probe,
                executor,
                on_settled=shifts.append,
                hold_max_s=60,
            )
        )
        loop = asyncio.get_running_loop()
        for _ in range(3):  # three probe cycles before any receipt, one second apart
            await loop.run_in_executor(executor, hold, sensor_item(clock, "x", clock.boot_ns()))
            t.advance(S)
        await async_wait_for(lambda: _true(source.probes >= 1), timeout_s=5, interval_s=0.01)
        source.measured(-BOX_AHEAD, 5 * S)  # too slow to trust: still holding
        await asyncio.sleep(0.3)
        assert sendable(queue) == [] and len(queue) == 3 and gate.holding
        source.measured(-BOX_AHEAD, 40 * MS)
        await async_wait_for(lambda: _true(not gate.holding), timeout_s=5, interval_s=0.01)
        await loop.run_in_executor(executor, hold, sensor_item(clock, "x", clock.boot_ns()))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert shifts == [-BOX_AHEAD]
    stamps = [ts for _, ts, _ in sendable(queue)]
    assert stamps == [TRUE_START + i * S for i in range(4)]
    bodies = [SensorReading.model_validate_json(body).ts for _, _, body in sendable(queue)]
    assert bodies == stamps
    assert queue.held_boots() == {}
    queue.close()


async def test_keep_time_falls_back_to_the_box_clock_when_no_receipt_comes(
    tmp_path: Path,
) -> None:
    """No receipt within the hold bound: the held readings go to the queue at the box's own time
    (nothing is lost, nothing shifted twice)."""
    t = FakeTime()
    clock, queue, source = t.clock(), disk_queue(tmp_path), FakeSource()
    gate = HoldingQueue(queue, boot=clock.boot_id, holding=True)
    item = sensor_item(clock, "x", clock.boot_ns())
    gate.append([item], now_ns=0)
    with ThreadPoolExecutor(1) as executor:
        task = asyncio.create_task(
            keep_time(
                clock,
                gate,
                source.round_trips,
                source.probe,
                executor,
                on_settled=lambda _: None,
                hold_max_s=0.3,
            )
        )
        await async_wait_for(lambda: _true(not gate.holding), timeout_s=5, interval_s=0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sendable(queue) == [item] and clock.correction_ms() is None
    queue.close()


async def test_a_clock_probe_is_an_empty_batch_whose_receipt_measures_the_offset(
    tmp_path: Path,
) -> None:
    """An empty message with an id; its receipt, through the publisher, measures the offset
    against the clock the publisher was given; nothing is queued or deleted for it."""
    link = FakeLink()
    queue = ReadingQueue(tmp_path / "q.sqlite", max_readings=100, max_age_s=10**6)
    box = FakeTime()
    with ThreadPoolExecutor(1) as executor:
        publisher = Publisher(
            link=link, queue=queue, executor=executor, site="s1", district="d1",
            config=PublishConfig(), now_ns=lambda: box.wall,
        )  # fmt: skip
        probe = ClockProbe(
            link,
            publisher.round_trips,
            topic=PublishTopic("pantau/v1/sites/s1/readings"),
            encode=lambda msg: encode_batch("s1", "d1", [], msg=msg),
        )
        assert not probe()  # not connected: nothing sent
        link.connected.set()
        assert probe()
        [sent] = link.sent
        assert ReadingBatch.model_validate(sent.payload).count() == 0
        box.advance(40 * MS)
        publisher.on_receipt([sent.payload["msg"]], stored_ns=TRUE_START + 20 * MS)  # type: ignore[list-item]
        assert publisher.round_trips.best == (-BOX_AHEAD, 40 * MS)
        assert publisher.clock_offset_ms == -600_000
        assert len(queue) == 0
        queue.close()


async def _true(value: bool) -> bool:
    return value
