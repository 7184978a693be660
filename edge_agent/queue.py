"""The on-disk store-and-forward queue (SQLite, WAL, synchronous=FULL).

A reading is committed here before anything tries to publish it, and deleted only after the
collector's receipt named the message carrying it (a PUBACK only marks it sent, unless the
publisher runs with ``receipts: false``). ``synchronous=FULL`` makes each commit survive a power
cut, not only ``kill -9``; commits are per probe cycle and per receipt, so this costs little.

The queue is bounded by count and by age. Readings that have to go are the oldest; they are
counted and replaced by one ``gaps`` entry spanning them, so the cloud can show that span as
unknown rather than down.

Each row carries a CRC of its kind, stamp and body, and ``meta.readings_held`` counts what the
rows stand for (same transaction), so damage is found row by row and a salvage
(``queue_salvage``) knows how much it could not read.

Rows stamped before the clock of their start was measured are *held* (``held``: that start's
boot id, in the CRC): on disk at once like any reading, never taken for sending, and released by
``release`` (timestamps shifted, mark cleared, CRC rewritten, new ids after every other row so
the publisher's cursors meet them) in one transaction. Bounds are enforced at release, not
while rows are held (the hold is short and bounded: ``edge_agent/clock.py``).

``secure_delete`` zeroes delivered rows; the WAL is kept small so that it cannot fill a small
disk by itself.

All methods block; the agent calls them from one dedicated worker thread.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from edge_agent.queue_rows import (
    CorruptRowError,
    ForwardQueue,
    Item,
    QueuedReading,
    QueueStats,
    gap_count,
    row_crc,
    shift_held,
)
from pantau.core.contract import READING_KINDS, GapReading

__all__ = ["ForwardQueue", "QueueStats", "QueuedReading", "ReadingQueue", "count_queued"]

KINDS = READING_KINDS
PRUNE_CHUNK = 10_000
PAGE_SIZE = 4096  # set on new files; a salvage assumes it when the file's header is destroyed
WAL_AUTOCHECKPOINT_PAGES = 256  # 1 MiB of WAL before SQLite copies it back (default 4 MiB)
WAL_SIZE_LIMIT_BYTES = 1 << 20  # a checkpointed WAL is truncated to this, not kept at its peak
CACHE_KIB = 512  # page cache per queue (default 8 MiB): the OS caches the file as well


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
        try:
            self._count = self._prepare()
            # Gap rows by id -> readings they stand for: ``readings_held`` counts readings.
            self._gaps: dict[int, int] = {
                row_id: gap_count(body)
                for row_id, body in self._db.execute(
                    "SELECT id, body FROM readings WHERE kind = 'gaps'"
                )
            }
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> int:
        """Set the pragmas, create or upgrade the tables; return the row count."""
        for pragma in (
            f"page_size={PAGE_SIZE}",
            "journal_mode=WAL",
            "synchronous=FULL",
            "secure_delete=ON",
            "cell_size_check=ON",
            f"cache_size=-{CACHE_KIB}",
            f"wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}",
            f"journal_size_limit={WAL_SIZE_LIMIT_BYTES}",
        ):
            self._db.execute(f"PRAGMA {pragma}").fetchall()
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS readings (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                ts INTEGER NOT NULL,
                body BLOB NOT NULL,
                crc INTEGER,
                held INTEGER);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS ledger (
                id INTEGER PRIMARY KEY, kind TEXT NOT NULL, ts INTEGER NOT NULL,
                body BLOB NOT NULL);
            """
        )
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(readings)")]
        if "crc" not in columns:  # a file from before row checksums: its old rows stay unchecked
            self._db.execute("ALTER TABLE readings ADD COLUMN crc INTEGER")
        if "held" not in columns:
            self._db.execute("ALTER TABLE readings ADD COLUMN held INTEGER")
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS held_rows ON readings (held) WHERE held IS NOT NULL"
        )
        return int(self._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0])

    def close(self) -> None:
        """Close the database file."""
        self._db.close()

    def __len__(self) -> int:
        return self._count

    @property
    def readings_held(self) -> int:
        """Readings the file's rows stand for (a gap row counts what it covers)."""
        return self._count - len(self._gaps) + sum(self._gaps.values())

    def append(
        self,
        items: list[tuple[str, int, bytes]],
        *,
        now_ns: int,
        held: Sequence[QueuedReading] = (),
        ids_after: int = 0,
        hold: int | None = None,
    ) -> int:
        """Commit ``(kind, ts, body)`` items; enforce the bounds; return how many were dropped.

        ``held`` rows (readings that waited in memory) are written first with their own ids;
        new ids start after ``ids_after`` (ids handed out while the file could not be written).
        ``hold``: the items are held for that boot (no bounds enforced, nothing in the ledger).
        """
        for kind, _, _ in items:
            if kind not in KINDS:
                raise ValueError(f"unknown reading kind {kind!r}")
        with self._transaction():
            if held:
                self._insert_with_ids(held)
            if ids_after > self._sequence():
                self._set_sequence(ids_after)
            self._insert(items, hold)
            return 0 if hold is not None else self._enforce_bounds(now_ns)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction that also saves the count; in-memory counts undone on error."""
        before = self._count, dict(self._gaps)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._save_count()
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            self._count, self._gaps = before
            raise

    def _insert(self, items: Sequence[Item], hold: int | None) -> None:
        """Insert new rows (inside a transaction); unheld ones go to the ledger too."""
        insert = "INSERT INTO readings (kind, ts, body, crc, held) VALUES (?, ?, ?, ?, ?)"
        for k, ts, body in items:  # one by one, to learn the gaps' ids
            row_id = self._db.execute(insert, (k, ts, body, row_crc(k, ts, body, hold), hold))
            if k == "gaps" and row_id.lastrowid is not None:
                self._gaps[row_id.lastrowid] = gap_count(body)
        if self._ledger and hold is None:
            self._db.executemany("INSERT INTO ledger (kind, ts, body) VALUES (?, ?, ?)", items)
        self._count += len(items)

    def release(self, boot: int, shift_ns: int, *, now_ns: int, ids_after: int = 0) -> int:
        """Release the rows held for ``boot``: timestamps moved by ``shift_ns``, mark cleared,
        new ids (after ``ids_after`` and every row), bounds enforced; one transaction. Return
        the readings the bounds dropped. Raises ``CorruptRowError`` on a damaged held row."""
        with self._transaction():
            rows = self._db.execute(
                "SELECT id, kind, ts, body, crc FROM readings WHERE held = ? ORDER BY id", (boot,)
            ).fetchall()
            for row_id, kind, ts, body, crc in rows:
                if kind not in KINDS or crc != row_crc(kind, ts, body, boot):
                    raise CorruptRowError(f"database disk image is malformed: row {row_id} damaged")
            shifted = shift_held([(k, ts, body) for _, k, ts, body, _ in rows], shift_ns)
            rows = [row for row, item in zip(rows, shifted, strict=True) if item is not None]
            self._db.executemany("DELETE FROM readings WHERE id = ?", [(r[0],) for r in rows])
            for row in rows:
                self._gaps.pop(row[0], None)
            self._count -= len(rows)
            if ids_after > self._sequence():
                self._set_sequence(ids_after)
            self._insert([item for item in shifted if item is not None], None)
            return self._enforce_bounds(now_ns)

    def held_boots(self) -> dict[int, int]:
        """Boot id -> rows held for it."""
        query = "SELECT held, COUNT(*) FROM readings WHERE held IS NOT NULL GROUP BY held"
        return {int(boot): int(n) for boot, n in self._db.execute(query)}

    def _insert_with_ids(self, rows: Sequence[QueuedReading]) -> None:
        changes = self._db.total_changes
        self._db.executemany(
            "INSERT OR IGNORE INTO readings (id, kind, ts, body, crc, held) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (r.id, r.kind, r.ts, r.body, row_crc(r.kind, r.ts, r.body, r.held), r.held)
                for r in rows
            ],
        )
        self._count += self._db.total_changes - changes
        self._gaps.update((r.id, gap_count(r.body)) for r in rows if r.kind == "gaps")

    def _save_count(self) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES ('readings_held', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (self.readings_held,),
        )

    def _sequence(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'readings'").fetchone()
        return int(row[0]) if row else 0

    def _set_sequence(self, last_id: int) -> None:
        self._db.execute("DELETE FROM sqlite_sequence WHERE name = 'readings'")
        self._db.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES ('readings', ?)", (last_id,)
        )

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
                "SELECT id, ts FROM readings WHERE id > ? AND kind != 'gaps' AND held IS NULL "
                "ORDER BY id LIMIT ?",
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
        for row_id, _ in earlier:
            self._gaps.pop(row_id, None)
        gap = GapReading(ts=now_ns, start_ts=start_ts, end_ts=end_ts, count=count)
        body = gap.model_dump_json().encode()
        row_id = self._db.execute(
            "INSERT INTO readings (kind, ts, body, crc) VALUES ('gaps', ?, ?, ?)",
            (now_ns, body, row_crc("gaps", now_ns, body)),
        ).lastrowid
        if row_id is not None:
            self._gaps[row_id] = count
        self._count += 1 - len(dropped_ids) - len(earlier)
        self._add_dropped(len(dropped_ids))
        return len(dropped_ids)

    def take(
        self, *, after_id: int, upto_id: int | None, limit: int, include_held: bool = False
    ) -> list[QueuedReading]:
        """Oldest readings with ``after_id < id <= upto_id``, at most ``limit``; held rows only
        with ``include_held`` (moving the file's rows, never for sending).

        Raises ``CorruptRowError`` (a ``sqlite3.DatabaseError``) on a row that fails its check.
        """
        rows = self._db.execute(
            "SELECT id, kind, ts, body, crc, held FROM readings WHERE id > ? AND id <= ? "
            f"{'' if include_held else 'AND held IS NULL '}ORDER BY id LIMIT ?",
            (after_id, upto_id if upto_id is not None else 2**62, limit),
        ).fetchall()
        taken = []
        for row_id, kind, ts, body, crc, held in rows:
            if (
                kind not in KINDS
                or not isinstance(body, bytes)
                or not isinstance(ts, int)
                or (crc is not None and crc != row_crc(kind, ts, body, held))
            ):
                raise CorruptRowError(f"database disk image is malformed: row {row_id} damaged")
            taken.append(QueuedReading(row_id, kind, ts, body, held))
        return taken

    def ids_present(self, ids: Sequence[int]) -> list[int]:
        """Which of ``ids`` are in the file."""
        found: list[int] = []
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            query = f"SELECT id FROM readings WHERE id IN ({marks})"
            found += [row[0] for row in self._db.execute(query, chunk)]
        return found

    def delete(self, ids: list[int]) -> None:
        """Remove acknowledged readings (ids already gone are ignored)."""
        with self._transaction():
            changes = self._db.total_changes
            self._db.executemany("DELETE FROM readings WHERE id = ?", [(i,) for i in ids])
            self._count -= self._db.total_changes - changes
            for row_id in ids:
                self._gaps.pop(row_id, None)

    def checkpoint(self) -> None:
        """Copy the WAL into the file and truncate it, giving its disk space back."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _rollback(self) -> None:
        # SQLite rolls back by itself on some errors (SQLITE_FULL, I/O): a second ROLLBACK
        # would raise and hide the error that matters.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def restore(self, rows: Sequence[QueuedReading], *, dropped_total: int = 0) -> None:
        """Insert rows moved from another queue file, keeping their ids (the publisher's cursors
        and in-flight messages refer to them); ``dropped_total`` carries that file's count."""
        with self._transaction():
            self._insert_with_ids(rows)
            if dropped_total:
                self._add_dropped(dropped_total)

    def _add_dropped(self, count: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES ('dropped_total', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            (count,),
        )

    def continue_ids_after(self, last_id: int) -> None:
        """Make new ids start after ``last_id`` (a fresh file replacing one that had ids)."""
        if last_id > self._sequence():
            self._set_sequence(last_id)

    def max_id(self) -> int:
        """Highest id ever assigned (0 if none)."""
        return self._sequence()

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
