"""The durable hold: readings stamped before the clock is measured are on disk at once, marked
held with their boot; never taken for sending; released (shifted once, mark cleared, CRC
rewritten) in one transaction; kept through a crash, a full disk and a salvage."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import orjson

from edge_agent.clock import HoldingQueue
from edge_agent.queue import ReadingQueue
from edge_agent.queue_guard import GuardedQueue
from edge_agent.queue_rows import QueuedReading, row_crc
from edge_agent.queue_salvage import Tally, scan
from pantau.core.contract import CameraReading, Cause
from tests.test_queue_faults import fill, small_disk

__all__ = ["small_disk"]  # the fixture, used by name

NS = 10**9
T0 = 1_700_000_000 * NS
BOOT = 7_777
SHIFT = -600 * NS  # the box was 10 minutes ahead


def cameras(start: int, count: int) -> list[tuple[str, int, bytes]]:
    """Camera readings stamped ``T0 + i`` s in the box's frame, each ``since`` 1 s before."""
    out = []
    for i in range(start, start + count):
        ts = T0 + i * NS
        reading = CameraReading(camera="c1", ts=ts, up=True, cause=Cause.OK, since=ts - NS)
        out.append(("cameras", ts, reading.model_dump_json(exclude_none=True).encode()))
    return out


def sendable(queue: ReadingQueue | GuardedQueue) -> list[QueuedReading]:
    return queue.take(after_id=0, upto_id=None, limit=10**6)


def stamps(rows: list[QueuedReading]) -> list[tuple[int, int, int]]:
    """(row ts, body ts, body since) of each row."""
    out = []
    for row in rows:
        body = orjson.loads(row.body)
        out.append((row.ts, body["ts"], body["since"]))
    return out


def expected(start: int, count: int, shift: int) -> list[tuple[int, int, int]]:
    return [(T0 + i * NS + shift, T0 + i * NS + shift, T0 + (i - 1) * NS + shift)
            for i in range(start, start + count)]  # fmt: skip


def file_rows(path: Path) -> list[tuple[int, str, int, bytes, int | None, int | None]]:
    """Every row of a queue file, read with SQL beside the queue."""
    db = sqlite3.connect(path)
    try:
        query = "SELECT id, kind, ts, body, crc, held FROM readings ORDER BY id"
        return list(db.execute(query))
    finally:
        db.close()


def open_guarded(path: Path) -> GuardedQueue:
    return GuardedQueue(path, max_readings=10**6, max_age_s=10**9)


def test_held_rows_are_committed_at_once_and_never_taken(tmp_path: Path) -> None:
    """Held rows are in the file (counted, with a CRC over their mark) but no take returns them,
    whatever the cursor; unheld rows around them are taken as usual."""
    path = tmp_path / "q.sqlite"
    queue = ReadingQueue(path, max_readings=1000, max_age_s=10**9)
    queue.append(cameras(0, 2), now_ns=T0)
    queue.append(cameras(2, 5), now_ns=T0, hold=BOOT)
    assert len(queue) == 7 and queue.readings_held == 7
    assert queue.held_boots() == {BOOT: 5}
    assert stamps(sendable(queue)) == expected(0, 2, 0)
    assert queue.take(after_id=2, upto_id=None, limit=100) == []
    rows = file_rows(path)
    assert [r[5] for r in rows] == [None, None, BOOT, BOOT, BOOT, BOOT, BOOT]
    assert all(crc == row_crc(kind, ts, body, held) for _, kind, ts, body, crc, held in rows)
    assert all(crc != row_crc(kind, ts, body) for _, kind, ts, body, crc, held in rows if held)
    queue.close()


def test_release_shifts_held_rows_once_in_one_transaction(tmp_path: Path) -> None:
    """One BEGIN and one COMMIT; ts, body ts and since move by the shift; the mark is gone and
    the CRC is the plain row CRC again; new ids come after every row, so a cursor already past
    the held ids meets them; a second release moves nothing."""
    path = tmp_path / "q.sqlite"
    queue = ReadingQueue(path, max_readings=1000, max_age_s=10**9)
    queue.append(cameras(0, 3), now_ns=T0, hold=BOOT)
    queue.append(cameras(3, 1), now_ns=T0)  # an unheld row after them (e.g. another boot's)
    cursor = queue.max_id()
    statements: list[str] = []
    queue._db.set_trace_callback(statements.append)
    assert queue.release(BOOT, SHIFT, now_ns=T0) == 0
    queue._db.set_trace_callback(None)
    assert [s for s in statements if s in {"BEGIN IMMEDIATE", "COMMIT"}] == [
        "BEGIN IMMEDIATE",
        "COMMIT",
    ]
    released = queue.take(after_id=cursor, upto_id=None, limit=100)
    assert stamps(released) == expected(0, 3, SHIFT)
    assert all(r.held is None for r in released)
    for _, kind, ts, body, crc, held in file_rows(path):
        assert held is None and crc == row_crc(kind, ts, body)
    assert queue.held_boots() == {} and len(queue) == 4 and queue.readings_held == 4
    queue.release(BOOT, SHIFT, now_ns=T0)
    assert stamps(sendable(queue)) == expected(3, 1, 0) + expected(0, 3, SHIFT)
    queue.close()


def test_a_crash_during_the_hold_keeps_the_held_rows_for_the_next_start(tmp_path: Path) -> None:
    """Closed without a release (the process died): the next start finds them held, takes none,
    and releases them at the box's own time (the documented rule), once."""
    path = tmp_path / "q.sqlite"
    first = open_guarded(path)
    HoldingQueue(first, boot=BOOT, holding=True).append(cameras(0, 4), now_ns=T0)
    first._queue.close()
    queue = open_guarded(path)
    assert queue.held_boots() == {BOOT: 4} and sendable(queue) == [] and len(queue) == 4
    gate = HoldingQueue(queue, boot=BOOT + 1, holding=True)
    gate.append(cameras(10, 1), now_ns=T0)  # this start's own hold is not released
    assert gate.release_earlier(now_ns=T0) == 4
    assert stamps(sendable(queue)) == expected(0, 4, 0)
    assert queue.held_boots() == {BOOT + 1: 1}
    assert gate.release_earlier(now_ns=T0) == 0
    gate.release(SHIFT, now_ns=T0)
    assert stamps(sendable(queue)) == expected(0, 4, 0) + expected(10, 1, SHIFT)
    queue.close()


def test_held_rows_wait_through_a_full_disk(small_disk: Path) -> None:
    """Held rows in the file and held rows in memory (the disk refused them): none taken while
    held; the release shifts the memory ones at once and the file's when the disk takes writes
    (the next append); every reading taken exactly once, shifted exactly once."""
    path = small_disk / "q.sqlite"
    queue = open_guarded(path)
    gate = HoldingQueue(queue, boot=BOOT, holding=True)
    gate.append(cameras(0, 3), now_ns=T0)
    filler = fill(small_disk)
    for i in range(3, 303):  # until the disk refuses them: then memory holds them, held
        gate.append(cameras(i, 1), now_ns=T0)
        if queue.fault:
            break
    assert queue.fault, "the disk never filled"
    held = i + 1
    assert sendable(queue) == [] and len(queue) == held and gate.held == held
    taken: list[QueuedReading] = []
    gate.release(SHIFT, now_ns=T0)
    taken += sendable(queue)
    assert len(taken) == held - 3  # the file's 3 wait, held, until it takes writes
    queue.delete([r.id for r in taken])
    filler.unlink()
    gate.append(cameras(1000, 1), now_ns=T0)  # unheld now; writes the pending release first
    assert queue.fault is None
    rest = sendable(queue)
    taken += rest
    queue.delete([r.id for r in rest])
    assert sorted(stamps(taken)) == expected(0, held, SHIFT) + expected(1000, 1, 0)
    assert len(queue) == 0 and queue.held_boots() == {}
    queue.close()


def test_held_rows_written_from_memory_keep_their_mark(small_disk: Path) -> None:
    """Held rows that waited in memory go to the file held when it takes writes again, and a
    crash then keeps them held."""
    path = small_disk / "q.sqlite"
    queue = open_guarded(path)
    gate = HoldingQueue(queue, boot=BOOT, holding=True)
    filler = fill(small_disk)
    gate.append(cameras(0, 50), now_ns=T0)
    assert queue.fault and queue.held_boots() == {BOOT: 50}
    filler.unlink()
    gate.append(cameras(50, 1), now_ns=T0)
    assert queue.fault is None and [r[5] for r in file_rows(path)] == [BOOT] * 51
    queue._queue.close()
    reopened = open_guarded(path)
    assert reopened.held_boots() == {BOOT: 51} and sendable(reopened) == []
    reopened.close()


def test_a_salvaged_held_row_stays_held(tmp_path: Path) -> None:
    """A file whose head is destroyed: its held rows come back held (the mark is under the
    CRC), its unheld rows sendable; the release then shifts the held ones once."""
    path = tmp_path / "q.sqlite"
    queue = open_guarded(path)
    queue.append(cameras(0, 100), now_ns=T0)
    queue.append(cameras(100, 200), now_ns=T0, hold=BOOT)
    queue.close()
    with path.open("r+b") as file:
        file.write(os.urandom(4096))  # the first page: "file is not a database"
    tally = Tally()
    marks = {row.held for row in scan(path, tally)}
    assert marks == {None, BOOT}
    salvaged = open_guarded(path)
    assert salvaged.fault and "salvaged" in salvaged.fault, salvaged.fault
    boots = salvaged.held_boots()
    assert set(boots) == {BOOT} and 150 <= boots[BOOT] <= 200, boots  # most pages survive
    before = [r for r in sendable(salvaged) if r.kind == "cameras"]
    assert all(T0 <= r.ts < T0 + 100 * NS for r in before)
    cursor = salvaged.max_id()
    salvaged.release(BOOT, SHIFT, now_ns=T0)
    after = salvaged.take(after_id=cursor, upto_id=None, limit=1000)
    assert len(after) == boots[BOOT]
    assert all(T0 + 100 * NS + SHIFT <= r.ts < T0 + 300 * NS + SHIFT for r in after)
    assert salvaged.held_boots() == {}
    salvaged.close()
