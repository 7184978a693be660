"""A power cut during the clock hold loses nothing: an agent under libfaketime (2 days behind)
with no collector holds its readings on disk, is killed (SIGKILL), starts again, and once a
collector comes every reading taken before the kill is stored, at the box's own time (the
documented rule for an earlier start whose offset was never measured), and every reading of
the new start at the true time."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import yaml

from devtools.localsvc import InfluxProcess, MosquittoProcess
from edge_agent.queue import count_queued
from tests.helpers import async_wait_for
from tests.test_clock_skew import (
    INTERVAL_S,
    LIBFAKETIME,
    TOLERANCE_NS,
    ProbeWitness,
    pytestmark,
    running_collector,
    stored,
)

__all__ = ["pytestmark"]

S = 10**9
BEHIND_NS = 2 * 86_400 * S
MEASUREMENTS = {"cameras": ("camera", "up"), "sensors": ("sensor", "value"),
                "agent": ("agent", "backlog")}  # fmt: skip


@contextlib.contextmanager
def agent_process(broker: MosquittoProcess, camera_port: int, tmp_path: Path, name: str
                  ) -> Iterator[subprocess.Popen[bytes]]:  # fmt: skip
    """``pantau agent`` 2 days behind (libfaketime preloaded), its queue in ``tmp_path``."""
    config = {
        "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
        "broker": {"url": broker.url},
        "probe": {"interval_s": INTERVAL_S, "timeout_s": 0.3},
        "cameras": [{"id": "c1", "rtsp_url": f"rtsp://127.0.0.1:{camera_port}/stream1"}],
        "sensors": [{"type": "simulated", "id": "cab"}],
        "queue": {"path": str(tmp_path / "q.sqlite")},
        # Rows released at start go out before any collector subscribed: resent soon.
        "publish": {"receipt_timeout_s": 3},
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": "-2d",
           "FAKETIME_DONT_FAKE_MONOTONIC": "1"}  # fmt: skip
    with (tmp_path / f"{name}.log").open("wb") as log:
        agent = subprocess.Popen(
            [sys.executable, "-m", "pantau", "agent", "--config", str(path)],
            env=env, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        yield agent
    finally:
        if agent.poll() is None:
            agent.terminate()
            try:
                agent.wait(20)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait(5)


def queued_rows(path: Path) -> list[tuple[str, int, int | None]]:
    """(kind, ts, held) of every row in the queue file (read-only, the agent is dead)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(db.execute("SELECT kind, ts, held FROM readings ORDER BY id"))
    finally:
        db.close()


def cycles(accepts: list[int]) -> list[int]:
    """When each probe cycle began (as ``ProbeWitness.probes``, for some of its accepts)."""
    starts: list[int] = []
    for at in accepts:
        if not starts or at - starts[-1] > INTERVAL_S * S / 2:
            starts.append(at)
    return starts


def near(ts: int, witnessed: list[int]) -> bool:
    return min(abs(ts - at) for at in witnessed) < TOLERANCE_NS


async def test_readings_held_when_the_agent_is_killed_are_stored_after_a_restart(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """SIGKILL during the hold, restart, then a collector: every held row of the killed start
    is stored at its box time (witness time - 2 days), the new start's at the true time."""
    async with ProbeWitness() as camera:
        with agent_process(broker, camera.port, tmp_path, "first") as first:

            async def probed(n: int) -> bool:
                assert first.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
                return len(camera.probes()) >= n

            await async_wait_for(lambda: probed(4), timeout_s=30, what="probes with no receipts")
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait, 10)
        before = camera.probes()
        restart_at = time.time_ns()  # the witness's probes after this are the new start's
        held = queued_rows(tmp_path / "q.sqlite")
        assert held and len({boot for _, _, boot in held}) == 1, held
        assert None not in {boot for _, _, boot in held}  # all held: nothing was sendable
        held_cameras = [ts for kind, ts, _ in held if kind == "cameras"]
        assert len(before) - 1 <= len(held_cameras) <= len(before), (before, held_cameras)
        with agent_process(broker, camera.port, tmp_path, "second") as second:
            log = tmp_path / "second.log"

            async def released() -> bool:
                assert second.poll() is None, log.read_text()[-2000:]
                return "released at the box's own time" in log.read_text()

            await async_wait_for(released, timeout_s=30, what="the earlier start's release")
            await async_wait_for(
                lambda: _true(len(cycles([a for a in camera.accepts if a >= restart_at])) >= 2),
                timeout_s=30,
                what="probes of the new start",
            )
            async with running_collector(broker, influxd, database, tmp_path):
                query = 'SELECT "up" FROM "camera" WHERE time > 0'

                async def caught_up() -> bool:
                    times = stored(influxd, database, query)
                    return set(held_cameras) <= set(times) and len(times) >= len(before) + 4

                await async_wait_for(caught_up, timeout_s=60, what="held and new readings")
                second.terminate()
                await asyncio.to_thread(second.wait, 20)
        assert second.returncode == 0, log.read_text()[-2000:]
    assert count_queued(tmp_path / "q.sqlite") == 0
    after = cycles([at for at in camera.accepts if at >= restart_at])
    # The killed start's readings: all stored, each at its box time (2 days behind the probe).
    assert all(near(ts + BEHIND_NS, before) for ts in held_cameras), held_cameras
    for kind, (measurement, field) in MEASUREMENTS.items():
        times = Counter(
            stored(influxd, database, f'SELECT "{field}" FROM "{measurement}" WHERE time > 0')
        )
        wanted = Counter(ts for k, ts, _ in held if k == kind)
        assert not wanted - times, (kind, wanted - times)
    # The new start's readings: at the true time (its own offset, measured from receipts).
    cameras = stored(influxd, database, 'SELECT "up" FROM "camera" WHERE time > 0')
    new = [ts for ts in cameras if ts not in set(held_cameras)]
    assert len(after) - 1 <= len(new) <= len(after), (after, new)
    assert all(near(ts, after) for ts in new), (new, after)


async def _true(value: bool) -> bool:
    return value
