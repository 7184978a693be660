"""The on-disk store-and-forward queue (SQLite, WAL, synchronous=FULL).

A reading is committed here before anything tries to publish it, and deleted only after the broker
acknowledged the message carrying it. ``synchronous=FULL`` makes each commit survive a power cut,
not only ``kill -9``; commits are per probe cycle and per acknowledged message, so this costs
little.

The queue is bounded by count and by age. Readings that have to go are the oldest; they are
counted and replaced by one ``gaps`` entry spanning them, so the cloud can show that span as
unknown rather than down.

All methods block; the agent calls them from one dedicated worker thread.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pantau.core.contract import READING_KINDS, GapReading

KINDS = READING_KINDS
PRUNE_CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class QueuedReading:
    """One queued reading: its row id, kind (a ``ReadingBatch`` list name) and JSON body."""

    id: int
    kind: str
    ts: int
    body: bytes


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Backlog figures."""

    backlog: int
    dropped_total: int
    oldest_ts: int | None


class ForwardQueue(Protocol):
    """What the publisher and the stream scheduler need of a queue (``ReadingQueue`` or the
    ``GuardedQueue`` around it)."""

    def append(self, items: list[tuple[str, int, bytes]], *, now_ns: int) -> int: ...

    def take(self, *, after_id: int, upto_id: int | None, limit: int) -> list[QueuedReading]: ...

    def delete(self, ids: list[int]) -> None: ...

    def max_id(self) -> int: ...

    def __len__(self) -> int: ...


class ReadingQueue:
    """SQLite-backed FIFO of serialized readings with count and age bounds."""

    def __init__(
        self, path: Path, *, max_readings: int, max_age_s: float, ledger: bool = False
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._max_readings = max_readings
        self._max_age_ns = int(max_age_s * 1e9)
        self._ledger = ledger
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS readings (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                ts INTEGER NOT NULL,
                body BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS ledger (
                id INTEGER PRIMARY KEY, kind TEXT NOT NULL, ts INTEGER NOT NULL,
                body BLOB NOT NULL);
            """
        )
        self._count: int = self._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]

    def close(self) -> None:
        """Close the database file."""
        self._db.close()

    def __len__(self) -> int:
        return self._count

    def append(self, items: list[tuple[str, int, bytes]], *, now_ns: int) -> int:
        """Commit ``(kind, ts, body)`` items; enforce the bounds; return how many were dropped."""
        for kind, _, _ in items:
            if kind not in KINDS:
                raise ValueError(f"unknown reading kind {kind!r}")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT INTO readings (kind, ts, body) VALUES (?, ?, ?)", items)
            if self._ledger:
                self._db.executemany("INSERT INTO ledger (kind, ts, body) VALUES (?, ?, ?)", items)
            self._count += len(items)
            dropped = self._enforce_bounds(now_ns)
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            self._count = self._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
            raise
        return dropped

    def _enforce_bounds(self, now_ns: int) -> int:
        """Drop the oldest readings beyond the count bound or the age bound (inside a txn)."""
        excess = max(0, self._count - self._max_readings)
        cutoff = now_ns - self._max_age_ns
        dropped_ids: list[int] = []
        start_ts = end_ts = None
        after = 0
        chunk = min(PRUNE_CHUNK, excess + 16)  # usually nothing is due: look at a few rows only
        while True:
            rows = self._db.execute(
                "SELECT id, ts FROM readings WHERE id > ? AND kind != 'gaps' ORDER BY id LIMIT ?",
                (after, chunk),
            ).fetchall()
            for row_id, ts in rows:
                if len(dropped_ids) >= excess and ts >= cutoff:
                    break
                dropped_ids.append(row_id)
                start_ts = ts if start_ts is None else min(start_ts, ts)
                end_ts = ts if end_ts is None else max(end_ts, ts)
            else:
                if len(rows) == chunk:
                    after = rows[-1][0]
                    chunk = PRUNE_CHUNK
                    continue
            break
        if not dropped_ids or start_ts is None or end_ts is None:
            return 0
        self._db.executemany("DELETE FROM readings WHERE id = ?", [(i,) for i in dropped_ids])
        # One gap row per outage, however long: earlier gap rows merge into the new one, so
        # gaps never crowd readings out of a small queue.
        count = len(dropped_ids)
        earlier = self._db.execute("SELECT id, body FROM readings WHERE kind = 'gaps'").fetchall()
        for _, body in earlier:
            old = GapReading.model_validate_json(body)
            start_ts, end_ts = min(start_ts, old.start_ts), max(end_ts, old.end_ts)
            count += old.count
        self._db.executemany("DELETE FROM readings WHERE id = ?", [(i,) for i, _ in earlier])
        gap = GapReading(ts=now_ns, start_ts=start_ts, end_ts=end_ts, count=count)
        self._db.execute(
            "INSERT INTO readings (kind, ts, body) VALUES ('gaps', ?, ?)",
            (now_ns, gap.model_dump_json().encode()),
        )
        self._count += 1 - len(dropped_ids) - len(earlier)
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES ('dropped_total', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            (len(dropped_ids),),
        )
        return len(dropped_ids)

    def take(self, *, after_id: int, upto_id: int | None, limit: int) -> list[QueuedReading]:
        """Oldest readings with ``after_id < id <= upto_id``, at most ``limit``."""
        rows = self._db.execute(
            "SELECT id, kind, ts, body FROM readings WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
            (after_id, upto_id if upto_id is not None else 2**62, limit),
        ).fetchall()
        return [QueuedReading(*row) for row in rows]

    def delete(self, ids: list[int]) -> None:
        """Remove acknowledged readings (ids already gone are ignored)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            before = self._db.total_changes
            self._db.executemany("DELETE FROM readings WHERE id = ?", [(i,) for i in ids])
            self._count -= self._db.total_changes - before
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        # SQLite rolls back by itself on some errors (SQLITE_FULL, I/O): a second ROLLBACK
        # would raise and hide the error that matters.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def restore(self, rows: list[QueuedReading]) -> None:
        """Insert rows moved from another queue file, keeping their ids (the publisher's cursors
        and in-flight messages refer to them)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO readings (id, kind, ts, body) VALUES (?, ?, ?, ?)",
                [(r.id, r.kind, r.ts, r.body) for r in rows],
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self._count = self._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]

    def continue_ids_after(self, last_id: int) -> None:
        """Make new ids start after ``last_id`` (a fresh file replacing one that had ids)."""
        if last_id <= self.max_id():
            return
        self._db.execute("DELETE FROM sqlite_sequence WHERE name = 'readings'")
        self._db.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES ('readings', ?)", (last_id,)
        )

    def max_id(self) -> int:
        """Highest id ever assigned (0 if none)."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'readings'").fetchone()
        return int(row[0]) if row else 0

    def stats(self) -> QueueStats:
        """Backlog size, readings dropped so far, timestamp of the oldest queued reading."""
        dropped = self._db.execute("SELECT value FROM meta WHERE key = 'dropped_total'").fetchone()
        oldest = self._db.execute("SELECT ts FROM readings ORDER BY id LIMIT 1").fetchone()
        return QueueStats(
            backlog=self._count,
            dropped_total=int(dropped[0]) if dropped else 0,
            oldest_ts=int(oldest[0]) if oldest else None,
        )

    def ledger(self) -> list[tuple[str, int, bytes]]:
        """Every reading ever appended (only when opened with ``ledger=True``)."""
        return [
            (kind, ts, body)
            for kind, ts, body in self._db.execute("SELECT kind, ts, body FROM ledger ORDER BY id")
        ]


def count_queued(path: Path) -> int:
    """Readings (gaps included) waiting in a queue file, read-only: safe while an agent runs."""
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT COUNT(*) FROM readings").fetchone()[0])
    finally:
        db.close()
