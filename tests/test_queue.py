"""The agent's on-disk queue: FIFO, bounds with gap reports, durability across kill -9."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson

from edge_agent.queue import ReadingQueue

NS = 10**9


def items(start: int, count: int, kind: str = "cameras") -> list[tuple[str, int, bytes]]:
    return [(kind, (start + i) * NS, json.dumps({"i": start + i}).encode()) for i in range(count)]


def test_fifo_take_and_delete(tmp_path: Path) -> None:
    """Rows come back oldest first and leave only when deleted."""
    queue = ReadingQueue(tmp_path / "q.sqlite", max_readings=1000, max_age_s=86400)
    queue.append(items(0, 10), now_ns=10 * NS)
    first = queue.take(after_id=0, upto_id=None, limit=4)
    assert [orjson.loads(r.body)["i"] for r in first] == [0, 1, 2, 3]
    queue.delete([r.id for r in first])
    assert len(queue) == 6
    rest = queue.take(after_id=0, upto_id=None, limit=100)
    assert [orjson.loads(r.body)["i"] for r in rest] == [4, 5, 6, 7, 8, 9]
    assert queue.take(after_id=rest[2].id, upto_id=rest[4].id, limit=100) == rest[3:5]


def test_count_bound_drops_oldest_and_reports_a_gap(tmp_path: Path) -> None:
    """Beyond max_readings the oldest go, are counted, and one gap reading spans them."""
    queue = ReadingQueue(tmp_path / "q.sqlite", max_readings=100, max_age_s=86400)
    queue.append(items(0, 80), now_ns=200 * NS)
    dropped = queue.append(items(80, 40), now_ns=200 * NS)
    # 120 readings in a queue of 100: the 20 oldest go, replaced by one small gap row.
    assert dropped == 20
    stats = queue.stats()
    assert stats.dropped_total == 20
    rows = queue.take(after_id=0, upto_id=None, limit=1000)
    gaps = [orjson.loads(r.body) for r in rows if r.kind == "gaps"]
    assert gaps == [{"ts": 200 * NS, "start_ts": 0, "end_ts": 19 * NS, "count": 20}]
    kept = [orjson.loads(r.body)["i"] for r in rows if r.kind == "cameras"]
    assert kept == list(range(20, 120))


def test_a_long_outage_keeps_one_gap_row_and_the_newest_readings(tmp_path: Path) -> None:
    """Hundreds of overflowing cycles in a small queue: gap rows merge into one spanning them
    all, so the queue keeps holding the newest readings (issue 13: it used to end full of gaps
    and drop every new reading)."""
    queue = ReadingQueue(tmp_path / "q.sqlite", max_readings=100, max_age_s=10**6)
    for cycle in range(300):
        queue.append(items(cycle * 10, 10), now_ns=(cycle * 10 + 10) * NS)
    rows = queue.take(after_id=0, upto_id=None, limit=1000)
    gaps = [orjson.loads(r.body) for r in rows if r.kind == "gaps"]
    kept = [orjson.loads(r.body)["i"] for r in rows if r.kind == "cameras"]
    assert len(gaps) == 1 and len(rows) <= 101
    assert kept[-1] == 2999 and len(kept) >= 99
    assert gaps[0]["start_ts"] == 0 and gaps[0]["end_ts"] == (kept[0] - 1) * NS
    assert gaps[0]["count"] == 3000 - len(kept) == queue.stats().dropped_total


def test_age_bound(tmp_path: Path) -> None:
    """Readings older than max_age are dropped and reported the same way."""
    queue = ReadingQueue(tmp_path / "q.sqlite", max_readings=1000, max_age_s=50)
    queue.append(items(0, 10), now_ns=10 * NS)
    dropped = queue.append(items(100, 1), now_ns=100 * NS)  # cutoff is t=50 s
    assert dropped == 10
    assert queue.stats().dropped_total == 10
    assert queue.stats().backlog == 2  # the new reading and the gap


def test_survives_kill_9(tmp_path: Path) -> None:
    """Everything appended before SIGKILL is there after reopening."""
    path = tmp_path / "q.sqlite"
    script = textwrap.dedent(f"""
        import sys, time
        from edge_agent.queue import ReadingQueue
        q = ReadingQueue(__import__("pathlib").Path({str(path)!r}), max_readings=10**6,
                         max_age_s=10**6)
        for batch in range(50):
            q.append([("sensors", (batch * 10 + i) * 10**9, b"{{}}") for i in range(10)],
                     now_ns=10**12)
        print("committed", flush=True)
        time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "committed"
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    reopened = ReadingQueue(path, max_readings=10**6, max_age_s=10**6)
    assert len(reopened) == 500
    assert reopened.stats().oldest_ts == 0


def test_ledger_records_every_append(tmp_path: Path) -> None:
    """With a ledger, every appended reading is recorded even after delivery."""
    queue = ReadingQueue(tmp_path / "q.sqlite", max_readings=1000, max_age_s=86400, ledger=True)
    queue.append(items(0, 5), now_ns=5 * NS)
    queue.delete([r.id for r in queue.take(after_id=0, upto_id=None, limit=5)])
    assert len(queue) == 0
    assert [ts for _, ts, _ in queue.ledger()] == [i * NS for i in range(5)]
