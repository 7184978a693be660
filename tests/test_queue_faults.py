"""The disk queue survives its disk: full (a real tmpfs filled up), the file deleted under the
agent, the file corrupt. Nothing raises, readings wait in memory, what is lost becomes a gap."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud.collector import Collector
from cloud.config import CollectorConfig
from devtools.localsvc import InfluxProcess, MosquittoProcess
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.queue_guard import GuardedQueue
from pantau.core.contract import GapReading
from simulators.uplink import Uplink
from tests.helpers import async_wait_for, influx_rows

NS = 10**9


def items(start: int, count: int) -> list[tuple[str, int, bytes]]:
    return [("sensors", start + i, b'{"sensor":"s","kind":"k","ts":%d,"value":1.0}' % (start + i))
            for i in range(count)]  # fmt: skip


def open_queue(path: Path, **kw: object) -> GuardedQueue:
    return GuardedQueue(path, max_readings=10**6, max_age_s=10**6, **kw)  # type: ignore[arg-type]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a real filesystem that runs out of space."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Take every free byte of the filesystem; return the filler to delete later."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


def test_corrupt_file_at_start_is_moved_aside_and_covered_by_a_gap(tmp_path: Path) -> None:
    """A queue file of garbage (the agent used to exit on it, again and again) is renamed,
    a new file is used, and the first append records a gap."""
    path = tmp_path / "q.sqlite"
    path.write_bytes(os.urandom(8192))
    queue = open_queue(path)
    assert queue.fault and "corrupt" in queue.fault
    assert "corrupt" in (queue.take_fault() or "")
    now = time.time_ns()
    assert queue.append(items(now, 3), now_ns=now) == 0
    rows = queue.take(after_id=0, upto_id=None, limit=10)
    assert [r.kind for r in rows] == ["gaps", "sensors", "sensors", "sensors"]
    gap = GapReading.model_validate_json(rows[0].body)
    assert gap.start_ts <= gap.end_ts <= now and gap.count >= 1  # up to when it was found
    assert len(list(tmp_path.glob("q.sqlite.corrupt-*"))) == 1
    assert queue.fault is None
    queue.close()


def test_deleted_file_rows_move_to_a_new_file_with_their_ids(tmp_path: Path) -> None:
    """rm of the queue file under a running agent: what the open handle still reads moves into a
    new file at the same path, ids kept (the publisher's cursors refer to them)."""
    path = tmp_path / "q.sqlite"
    queue = open_queue(path)
    now = time.time_ns()
    queue.append(items(now, 5), now_ns=now)
    before = [(r.id, r.body) for r in queue.take(after_id=0, upto_id=None, limit=10)]
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    queue.append(items(now + 100, 2), now_ns=now + 100)
    assert path.exists()
    after = [(r.id, r.body) for r in queue.take(after_id=0, upto_id=None, limit=10)]
    assert after[:5] == before
    assert [i for i, _ in after[5:]] == [before[-1][0] + 1, before[-1][0] + 2]
    reported = queue.take_fault()
    assert reported and "deleted" in reported  # over, but reported once
    assert queue.take_fault() is None
    queue.close()
    reopened = open_queue(path)  # what survives a restart: the new file
    assert len(reopened) == 7
    reopened.close()


def test_full_disk_holds_readings_in_memory_then_writes_them(small_disk: Path) -> None:
    """On a full filesystem append raises nothing; readings wait in memory (beyond the memory
    bound they become one gap) and reach the file once space is back."""
    queue = open_queue(small_disk / "q.sqlite", memory_max_readings=50)
    now = time.time_ns()
    queue.append(items(now, 10), now_ns=now)
    filler = fill(small_disk)
    for cycle in range(10):
        ts = now + (cycle + 1) * NS
        queue.append(items(ts, 10), now_ns=ts)
    assert queue.fault and "full" in queue.fault
    assert queue.stats().backlog == 10 + 50  # 10 on disk, the newest 50 in memory
    filler.unlink()
    later = now + 20 * NS
    queue.append(items(later, 1), now_ns=later)
    assert queue.fault is None
    rows = queue.take(after_id=0, upto_id=None, limit=1000)
    kinds = [r.kind for r in rows]
    assert kinds.count("sensors") == 10 + 50 + 1 and kinds.count("gaps") == 1
    gap = GapReading.model_validate_json(rows[kinds.index("gaps")].body)
    assert (gap.count, gap.start_ts) == (50, now + NS)  # the 50 oldest of the full-disk span
    queue.close()


async def test_agent_keeps_running_through_a_full_disk(
    small_disk: Path,
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
) -> None:
    """A real agent whose queue's filesystem fills up never exits, reports queue_error, and once
    space is back every probe cycle of the full-disk span reaches InfluxDB."""
    collector = Collector(
        CollectorConfig.model_validate(
            {
                "mqtt": {"url": broker.url, "client_id": "qf-collector"},
                "influx": {"url": influxd.url, "database": database},
                "batch": {"max_delay_s": 0.05},
                "dead_letter_path": str(tmp_path / "dl.sqlite"),
                "http_port": 0,
            }
        )
    )
    collector_task = asyncio.create_task(collector.run(), name="qf-collector")
    await asyncio.wait_for(collector.ready.wait(), 15)
    agent = Agent(
        AgentConfig.model_validate(
            {
                "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
                "broker": {"url": broker.url},
                "probe": {"interval_s": 0.5, "timeout_s": 0.3},
                "sensors": [{"type": "simulated", "id": "cab"}],
                "queue": {"path": str(small_disk / "q.sqlite")},
            }
        )
    )
    agent_task = asyncio.create_task(agent.run(), name="qf-agent")
    try:
        await asyncio.wait_for(agent.link.connected.wait(), 10)

        def temperatures() -> list[int]:
            return [
                int(r["time"])
                for r in influx_rows(
                    influxd.url,
                    database,
                    "SELECT value FROM sensor WHERE kind = 'temperature' AND site = 's1'",
                )
            ]

        async def some() -> bool:
            return len(await asyncio.to_thread(temperatures)) >= 2

        await async_wait_for(some, timeout_s=15, what="first readings stored")
        filler = await asyncio.to_thread(fill, small_disk)
        full_from = time.time_ns()
        await asyncio.sleep(4)  # eight probe cycles with no disk
        assert not agent_task.done(), agent_task
        await asyncio.to_thread(filler.unlink)
        full_to = time.time_ns()

        async def span_covered() -> bool:
            stamps = await asyncio.to_thread(temperatures)
            inside = [t for t in stamps if full_from <= t <= full_to]
            return len(inside) >= 7

        await async_wait_for(span_covered, timeout_s=30, what="the full-disk span stored")
        faults = influx_rows(
            influxd.url, database, "SELECT queue_error FROM agent WHERE site = 's1'"
        )
        assert any("full" in (r.get("queue_error") or "") for r in faults), faults
        assert not agent_task.done()
    finally:
        agent_task.cancel()
        collector_task.cancel()
        await asyncio.gather(agent_task, collector_task, return_exceptions=True)


def test_a_disk_that_stays_full_still_delivers(small_disk: Path) -> None:
    """Issue 21: the file fills up and stays full. Readings held in memory are taken and deleted
    like rows of the file, the file's backlog is delivered although deletes cannot be written,
    nothing is taken twice, and the queue ends empty with every reading delivered once."""
    queue = open_queue(small_disk / "q.sqlite")
    now = time.time_ns()
    produced = items(now, 200)
    queue.append(produced, now_ns=now)
    filler = fill(small_disk)
    filled = filler.stat().st_size
    for cycle in range(1, 21):
        batch = items(now + cycle * 1000, 10)
        queue.append(batch, now_ns=now + cycle * 1000)
        produced += batch
    assert queue.fault and "full" in queue.fault
    assert queue.stats().backlog == 400
    delivered: list[bytes] = []
    last_id = 0
    while rows := queue.take(after_id=last_id, upto_id=None, limit=50):
        delivered += [r.body for r in rows]
        last_id = rows[-1].id
        queue.delete([r.id for r in rows])
    assert sorted(delivered) == sorted(body for _, _, body in produced)
    assert len(queue) == 0 and queue.stats().backlog == 0
    assert queue.take(after_id=0, upto_id=None, limit=1000) == []  # nothing comes back
    later = items(now + 10**6, 5)  # and it keeps going on the full disk
    queue.append(later, now_ns=now + 10**6)
    rows = queue.take(after_id=0, upto_id=None, limit=1000)
    assert [r.body for r in rows] == [body for _, _, body in later]
    assert min(r.id for r in rows) > last_id
    # The filler stays: what the queue freed was its own delivered file (replaced by an empty one).
    assert filler.stat().st_size == filled
    queue.close()


class CountingAgent(Agent):
    """The agent, counting every reading it hands to its queue: a count outside the queue."""

    def __init__(self, config: AgentConfig) -> None:
        super().__init__(config)
        self.produced = 0

    async def collect_once(self, *args: Any, **kwargs: Any) -> list[tuple[str, int, bytes]]:
        items = await super().collect_once(*args, **kwargs)
        self.produced += len(items)  # the probe loop queues them before its next await
        return items


async def test_agent_on_a_disk_that_stays_full_delivers_every_reading(
    small_disk: Path,
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
) -> None:
    """Issue 21, as measured: the uplink is cut, the queue's disk fills, the uplink comes back
    and the disk stays full. Before, the disk's backlog went out, the queue stuck (756 rows) and
    the readings held in memory died with the process (1,128). Now every reading the agent
    produced (counted as it hands them to its queue, not by the queue) is stored in InfluxDB or
    counted in a gap, exactly, while the disk never frees up."""
    uplink = Uplink("127.0.0.1", broker.port)
    await uplink.start()
    collector = Collector(
        CollectorConfig.model_validate(
            {
                "mqtt": {"url": broker.url, "client_id": "fd-collector"},
                "influx": {"url": influxd.url, "database": database},
                "batch": {"max_delay_s": 0.05},
                "dead_letter_path": str(tmp_path / "dl.sqlite"),
                "http_port": 0,
            }
        )
    )
    collector_task = asyncio.create_task(collector.run(), name="fd-collector")
    await asyncio.wait_for(collector.ready.wait(), 15)
    agent = CountingAgent(
        AgentConfig.model_validate(
            {
                "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
                "broker": {"url": f"mqtt://127.0.0.1:{uplink.port}", "reconnect_max_s": 1},
                "probe": {"interval_s": 0.2, "timeout_s": 0.1},
                "sensors": [{"type": "simulated", "id": "cab"}],
                "queue": {"path": str(small_disk / "q.sqlite")},
                "publish": {"receipt_timeout_s": 3, "ack_timeout_s": 3, "shutdown_flush_s": 15},
            }
        )
    )
    agent_task = asyncio.create_task(agent.run(), name="fd-agent")

    def count(query: str) -> int:
        rows = influx_rows(influxd.url, database, query)
        return int(rows[0]["n"]) if rows and rows[0].get("n") is not None else 0

    def accounted() -> int:
        return (
            count("SELECT count(value) AS n FROM sensor WHERE site = 's1'")
            + count("SELECT count(backlog) AS n FROM agent WHERE site = 's1'")
            + count("SELECT sum(\"count\") AS n FROM gap WHERE site = 's1'")
        )

    async def accounted_at_least(target: int) -> bool:
        return await asyncio.to_thread(accounted) >= target

    async def produced_at_least(target: int) -> bool:
        return agent.produced >= target

    try:
        await async_wait_for(lambda: accounted_at_least(10), timeout_s=15, what="first readings")
        uplink.cut()
        target = agent.produced + 60  # a backlog on disk
        await async_wait_for(lambda: produced_at_least(target), timeout_s=15, what="on disk")
        filler = await asyncio.to_thread(fill, small_disk)
        filled = filler.stat().st_size
        assert shutil.disk_usage(small_disk).free < 4096
        target = agent.produced + 60  # readings only memory takes
        await async_wait_for(lambda: produced_at_least(target), timeout_s=15, what="held")
        uplink.restore()
        target = agent.produced
        await async_wait_for(
            lambda: accounted_at_least(target), timeout_s=45, what="all of it delivered"
        )
        target = agent.produced + 60  # and it keeps delivering on the full disk
        await async_wait_for(lambda: accounted_at_least(target), timeout_s=30, what="more")
        # The filler stays: the disk only has what the queue gave back of its own (WAL, file).
        assert filler.stat().st_size == filled
        backlog = influx_rows(
            influxd.url, database, "SELECT last(backlog) AS n FROM agent WHERE site = 's1'"
        )
        assert backlog[0]["n"] < 60, backlog  # not stuck with hundreds of rows
        faults = influx_rows(
            influxd.url, database, "SELECT queue_error FROM agent WHERE site = 's1'"
        )
        assert any("full" in (r.get("queue_error") or "") for r in faults), faults
        assert not agent_task.done()
    finally:
        agent_task.cancel()  # a clean stop: the agent flushes what is queued
        await asyncio.gather(agent_task, return_exceptions=True)
    try:
        produced = agent.produced
        await async_wait_for(
            lambda: accounted_at_least(produced), timeout_s=20, what="the last readings"
        )
        assert await asyncio.to_thread(accounted) == produced  # none lost, none counted twice
    finally:
        collector_task.cancel()
        await asyncio.gather(collector_task, return_exceptions=True)
        await uplink.stop()
