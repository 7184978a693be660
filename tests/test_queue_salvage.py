"""A corrupt queue file, damaged in any byte: the agent's queue never raises, salvages every row
that survives (page by page, as sqlite3's ``.recover`` does) and sends a gap that counts exactly
what was destroyed."""

from __future__ import annotations

import os
import random
from pathlib import Path

from edge_agent.queue import PAGE_SIZE, QueuedReading
from edge_agent.queue_guard import GuardedQueue
from edge_agent.queue_salvage import Tally, scan
from pantau.core.contract import GapReading

NS = 10**9
T0 = 1_700_000_000 * NS


def items(start: int, count: int) -> list[tuple[str, int, bytes]]:
    return [
        ("sensors", T0 + (start + i) * NS,
         b'{"sensor":"cab","kind":"temperature","ts":%d,"value":%d.5}' % (T0 + (start + i) * NS, i))
        for i in range(count)
    ]  # fmt: skip


def open_queue(path: Path) -> GuardedQueue:
    return GuardedQueue(path, max_readings=10**7, max_age_s=10**9)


class Sink:
    """What a publisher would deliver: each reading once, gaps by the readings they count."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.gap_counts: list[int] = []

    def deliver(self, queue: GuardedQueue, limit: int = 500) -> int:
        rows = queue.take(after_id=0, upto_id=None, limit=limit)
        self.record(rows)
        queue.delete([r.id for r in rows])
        return len(rows)

    def record(self, rows: list[QueuedReading]) -> None:
        for row in rows:
            if row.kind == "gaps":
                self.gap_counts.append(GapReading.model_validate_json(row.body).count)
            else:
                self.bodies.append(row.body)

    def drain(self, queue: GuardedQueue) -> None:
        while self.deliver(queue):
            pass


def damage(path: Path, rng: random.Random) -> None:
    """Overwrite random bytes of random pages: a whole page, a run inside one, or one byte."""
    pages = os.path.getsize(path) // PAGE_SIZE
    with path.open("r+b") as file:
        for _ in range(rng.randint(1, 3)):
            page = rng.randrange(pages)
            length = rng.choice([PAGE_SIZE, rng.randint(2, 512), 1])
            offset = rng.randrange(PAGE_SIZE - length + 1)
            file.seek(page * PAGE_SIZE + offset)
            file.write(rng.randbytes(length))


def test_head_overwritten_keeps_every_row_on_an_intact_page(tmp_path: Path) -> None:
    """Issue 21's case: 16 KiB of random bytes over the head of a file of 300 readings. Before,
    all 300 became one gap with count=1; now the rows on intact pages come back with their ids
    and bodies, and what is missing is counted."""
    path = tmp_path / "q.sqlite"
    queue = open_queue(path)
    queue.append(items(0, 300), now_ns=T0 + 300 * NS)
    before = {r.id: r.body for r in queue.take(after_id=0, upto_id=None, limit=1000)}
    queue.close()
    with path.open("r+b") as file:
        file.write(os.urandom(16384))
    reopened = open_queue(path)
    assert reopened.fault and "300 rows salvaged" in reopened.fault, reopened.fault
    rows = reopened.take(after_id=0, upto_id=None, limit=1000)
    assert {r.id: r.body for r in rows if r.kind != "gaps"} == before
    sink = Sink()
    sink.drain(reopened)
    assert len(sink.bodies) + sum(sink.gap_counts) == 300
    assert len(list(tmp_path.glob("q.sqlite.corrupt-*"))) == 1
    reopened.close()


def test_destroyed_leaf_is_a_gap_with_its_true_count(tmp_path: Path) -> None:
    """A table page destroyed under a running queue: its rows, and only those, become a gap
    whose count is how many it held; new ids continue after the highest one ever handed out."""
    path = tmp_path / "q.sqlite"
    queue = open_queue(path)
    queue.append(items(0, 2000), now_ns=T0)
    queue.checkpoint()  # every page in the main file, none in the WAL
    expected = {r.body for r in queue.take(after_id=0, upto_id=None, limit=5000)}
    tally = Tally()
    pages_before = list(scan(path, tally))
    assert len(pages_before) == 2000
    with path.open("r+b") as file:  # page 10: a leaf in the middle of the table
        file.seek(9 * PAGE_SIZE)
        file.write(b"\xff" * PAGE_SIZE)
    survivors = {r.body for r in scan(path, Tally())}
    lost = 2000 - len(survivors)
    assert 0 < lost < 100
    reopened = open_queue(path)  # the live handle has the page cached; a restart reads it
    sink = Sink()
    sink.drain(reopened)
    assert set(sink.bodies) == survivors <= expected
    assert sink.gap_counts == [lost]
    reopened.append(items(5000, 1), now_ns=T0)
    assert reopened.take(after_id=0, upto_id=None, limit=10)[-1].id == 2000 + 1 + 1  # gap, new
    reopened.close()


def test_random_damage_to_a_live_queue_loses_only_what_was_destroyed(tmp_path: Path) -> None:
    """30 rounds of appending, delivering and damaging random pages of the file in use (now and
    then the agent restarts): nothing raises, nothing is delivered twice or made up, and the
    readings delivered plus the gaps' counts equal the readings enqueued."""
    rng = random.Random(21)
    path = tmp_path / "q.sqlite"
    queue = open_queue(path)
    sink = Sink()
    enqueued: set[bytes] = set()
    for round_ in range(30):
        batch = items(len(enqueued), rng.randint(2000, 4000))
        queue.append(batch, now_ns=T0 + len(enqueued) * NS)
        enqueued.update(body for _, _, body in batch)
        for _ in range(rng.randint(0, 8)):
            sink.deliver(queue)
        if rng.random() < 0.5:
            queue.checkpoint()  # the damage then lands on pages the queue reads from the file
        damage(path, rng)
        # The queue goes on: a full pass reads past its cache, as a backlog replay does.
        assert queue.take(after_id=0, upto_id=None, limit=10**6) is not None
        if round_ % 7 == 6:
            queue.close()
            queue = open_queue(path)
    sink.drain(queue)
    queue.close()
    assert len(set(sink.bodies)) == len(sink.bodies)  # nothing twice
    assert set(sink.bodies) <= enqueued  # nothing made up
    assert len(sink.bodies) + sum(sink.gap_counts) == len(enqueued)
    salvages = list(tmp_path.glob("q.sqlite.corrupt-*[0-9]"))
    assert len(salvages) >= 5, salvages
    assert len(sink.bodies) > 0.8 * len(enqueued)  # most survive
