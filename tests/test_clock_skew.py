"""Site clocks that are wrong, for real: an agent process under libfaketime, 10 minutes ahead and
2 days behind. The agent starts while no collector runs, so its first readings are taken before
any offset is known; once a collector answers, every reading is stored at the true time (checked
against when the camera saw each probe, by this process's own clock), nothing stays queued,
and 'site clock wrong' still says how far off the box is and what the agent corrects."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml

from cloud.collector import Collector
from cloud.config import CollectorConfig
from cloud.influx import InfluxClient, InfluxSettings
from cloud.problems.config import RulesConfig
from cloud.problems.model import Observation, Verdict
from cloud.problems.observe import Observer
from devtools.localsvc import InfluxProcess, MosquittoProcess
from edge_agent.queue import count_queued
from tests.helpers import async_wait_for, influx_rows

S = 10**9
INTERVAL_S = 1.0
TOLERANCE_NS = S  # every reading at the true time +- 1 s
LIBFAKETIME = next(
    (
        path
        for path in (
            Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
            Path("/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"),
            Path("/usr/lib/faketime/libfaketime.so.1"),
            Path("/usr/local/lib/faketime/libfaketime.so.1"),
        )
        if path.exists()
    ),
    None,
)
pytestmark = pytest.mark.skipif(LIBFAKETIME is None, reason="needs libfaketime")


class ProbeWitness:
    """A camera's TCP port that notes, by this process's (true) clock, when it is probed."""

    def __init__(self) -> None:
        self.accepts: list[int] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ProbeWitness:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _accept(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepts.append(time.time_ns())
        writer.close()

    def probes(self) -> list[int]:
        """When each probe cycle began: its first connection (a probe connects per stage)."""
        starts: list[int] = []
        for at in self.accepts:
            if not starts or at - starts[-1] > INTERVAL_S * S / 2:
                starts.append(at)
        return starts


@contextlib.asynccontextmanager
async def running_collector(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> AsyncIterator[Collector]:
    collector = Collector(
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
    task = asyncio.create_task(collector.run(), name="skew-collector")
    try:
        await asyncio.wait_for(collector.ready.wait(), 15)
        yield collector
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@contextlib.contextmanager
def skewed_agent(
    offset: str, broker: MosquittoProcess, camera_port: int, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``pantau agent`` with libfaketime preloaded (not the ``faketime`` wrapper, which forks:
    stopping the wrapper would leave the agent running); stopped and reaped on the way out."""
    config = {
        "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
        "broker": {"url": broker.url},
        "probe": {"interval_s": INTERVAL_S, "timeout_s": 0.3},
        "cameras": [{"id": "c1", "rtsp_url": f"rtsp://127.0.0.1:{camera_port}/stream1"}],
        "sensors": [{"type": "simulated", "id": "cab"}],
        "queue": {"path": str(tmp_path / "q.sqlite")},
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME": offset,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    with (tmp_path / "agent.log").open("wb") as log:
        agent = subprocess.Popen(
            [sys.executable, "-m", "pantau", "agent", "--config", str(path)],
            env=env, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        yield agent
    finally:
        agent.terminate()
        try:
            agent.wait(20)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait(5)


async def clock_problem(influxd: InfluxProcess, database: str) -> Observation:
    """The site's clock observation once the collector has reported the agent's offset (its
    self-metrics write it every few seconds), or the last one seen at the deadline."""
    seen: list[Observation] = []
    async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:

        async def measured() -> bool:
            observations = await Observer(influx, RulesConfig(thresholds=[])).observe(
                time.time_ns()
            )
            seen[:] = [o for o in observations if o.key == "clock:s1"]
            return bool(seen) and seen[0].verdict is Verdict.BAD

        with contextlib.suppress(AssertionError):
            await async_wait_for(measured, timeout_s=15, what="the site's clock measured")
    [clock] = seen
    return clock


def stored(influxd: InfluxProcess, database: str, query: str) -> list[int]:
    return sorted(int(r["time"]) for r in influx_rows(influxd.url, database, query))


async def run_skewed_site(
    offset: str,
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
) -> Observation:
    """Run a skewed agent (collector started only after its first probes), stop it cleanly,
    and check every reading against the witness; return the clock problem seen meanwhile."""
    async with ProbeWitness() as camera:
        with skewed_agent(offset, broker, camera.port, tmp_path) as agent:

            async def probed(n: int) -> bool:
                assert agent.poll() is None, (tmp_path / "agent.log").read_text()[-2000:]
                return len(camera.probes()) >= n

            await async_wait_for(lambda: probed(3), timeout_s=30, what="probes with no receipts")
            assert stored(influxd, database, 'SELECT "up" FROM "camera"') == []
            async with running_collector(broker, influxd, database, tmp_path):
                held = len(camera.probes())

                async def caught_up() -> bool:
                    query = 'SELECT "up" FROM "camera" WHERE time > 0'
                    return len(stored(influxd, database, query)) >= held + 3

                await async_wait_for(caught_up, timeout_s=30, what="held and live readings")
                # The clock problem: what the collector was told, while the site runs.
                problem = await clock_problem(influxd, database)
                agent.terminate()  # a clean stop: the agent sends what is queued first
                await asyncio.to_thread(agent.wait, 20)
            assert agent.returncode == 0, (tmp_path / "agent.log").read_text()[-2000:]
    assert count_queued(tmp_path / "q.sqlite") == 0  # nothing held at the edge
    probes = camera.probes()
    cameras = stored(influxd, database, 'SELECT "up" FROM "camera" WHERE time > 0')
    # One reading per probe cycle (a cycle cut short by the stop may have no reading).
    assert len(probes) - 1 <= len(cameras) <= len(probes), (probes, cameras)
    errors = [ts - at for ts, at in zip(cameras, probes, strict=False)]
    assert max(map(abs, errors)) < TOLERANCE_NS, errors
    # The readings of the cycle: sensors and the agent's own, stamped with the cameras'.
    for query, per_cycle in (
        ('SELECT "value" FROM "sensor" WHERE time > 0', 4),
        ('SELECT "backlog" FROM "agent" WHERE time > 0', 1),
    ):
        times = stored(influxd, database, query)
        assert len(times) == per_cycle * len(cameras), query
        assert all(min(abs(t - c) for c in cameras) < 10**7 for t in times), query
    return problem


async def test_a_clock_ten_minutes_ahead_is_corrected_at_the_edge_and_flagged(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """+600 s: readings stored at the true time, none refused as from the future, none held;
    the problem says 600 s ahead and a -600 s correction."""
    problem = await run_skewed_site("+600", broker, influxd, database, tmp_path)
    assert problem.verdict is Verdict.BAD, problem.cause
    assert problem.cause.startswith("site clock ahead by 600 s"), problem.cause
    assert "corrects its readings by -600 s" in problem.cause, problem.cause
    assert problem.details["correction_s"] == pytest.approx(-600, abs=1)
    births = influx_rows(influxd.url, database, 'SELECT "clock_ahead_s" FROM "site"')
    assert births and 595 < births[-1]["clock_ahead_s"] < 605  # the birth still shows the error


async def test_a_clock_two_days_behind_is_corrected_at_the_edge_and_flagged(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """-2 days: readings stored now, not two days ago; the problem says 172800 s behind and a
    +172800 s correction."""
    problem = await run_skewed_site("-2d", broker, influxd, database, tmp_path)
    assert problem.verdict is Verdict.BAD, problem.cause
    assert problem.cause.startswith("site clock behind by 172800 s"), problem.cause
    assert "corrects its readings by +172800 s" in problem.cause, problem.cause
    assert problem.details["correction_s"] == pytest.approx(172_800, abs=1)
