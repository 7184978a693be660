"""The disk queue, kept working when its disk is not: full, the file deleted, the file corrupt.

The agent must never stop for its queue's sake. ``GuardedQueue`` wraps ``ReadingQueue``:

- **disk full / I/O error**: new readings get their ids in memory (at most
  ``memory_max_readings``; the oldest beyond that become a ``gap``) and the publisher sends them
  from there, so a disk that stays full still delivers; they are written to the file as soon as
  it takes writes again. Deletes the file refuses are remembered (those rows are not sent again)
  and retried; once the file holds nothing undelivered it is replaced by an empty one, and
  after deletes the WAL is checkpointed and truncated, giving its space back.
- **file deleted or replaced** under the running agent: the rows still readable through the open
  handle move, with their ids, into a new file at the configured path;
- **file corrupt** (at start or later, any byte): it is moved aside as ``<name>.corrupt-<time>``,
  the rows that survive are salvaged page by page (``queue_salvage``) into a new file with their
  ids, and a ``gap`` counts what was destroyed: the rows the file held (known to the running
  queue, else the file's own ``meta.readings_held``) minus those salvaged.

Held rows (``edge_agent/clock.py``) stay held in memory, moved or salvaged; a release the file
refuses is retried by the next write (they wait, held, in the file). While a fault lasts,
``fault`` says what is wrong (the agent's ``queue_error``). All methods block and run on the
agent's queue thread, like ``ReadingQueue``'s.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import sqlite3
import time
from pathlib import Path

from edge_agent.queue import QueuedReading, QueueStats, ReadingQueue
from edge_agent.queue_memory import HeldRows, LostSpan
from edge_agent.queue_rows import Item
from edge_agent.queue_salvage import Tally, is_corruption, move_aside, scan

log = logging.getLogger(__name__)

WRITE_CHUNK = 2_000  # held or salvaged rows per transaction: a full disk refuses the first fast


class GuardedQueue:
    """A ``ReadingQueue`` that survives its disk (see the module doc)."""

    def __init__(
        self,
        path: Path,
        *,
        max_readings: int,
        max_age_s: float,
        ledger: bool = False,
        memory_max_readings: int = 50_000,
    ) -> None:
        self._path = path
        self._max_readings, self._max_age_s, self._ledger = max_readings, max_age_s, ledger
        self._memory_max = memory_max_readings
        self._held = HeldRows()
        self._held_gap: int | None = None  # the gap row waiting in memory, if any
        self._deferred: set[int] = set()  # delivered rows the file has not deleted yet
        self._releases: dict[int, int] = {}  # boot -> shift of held rows the file must release
        self._lost = LostSpan()
        self._last_stats = QueueStats(backlog=0, dropped_total=0, oldest_ts=None)
        self._last_id = 0  # highest id handed out, by the file or in memory
        self.fault: str | None = None  # what is wrong now
        self._event: str | None = None  # the latest fault, until reported
        self._queue = self._open_or_salvage()

    def take_fault(self) -> str | None:
        """The current fault, else the latest one since the last call (recovered faults are
        reported once too), else ``None``."""
        event, self._event = self._event, None
        return self.fault or event

    def _set_fault(self, text: str) -> None:
        self.fault = self._event = text

    # --- opening, salvaging, replacing --------------------------------------------------------

    def _open(self) -> ReadingQueue:
        queue = ReadingQueue(
            self._path,
            max_readings=self._max_readings,
            max_age_s=self._max_age_s,
            ledger=self._ledger,
        )
        queue.continue_ids_after(self._last_id)
        self._inode = os.stat(self._path).st_ino
        return queue

    def _open_or_salvage(self) -> ReadingQueue:
        try:
            queue = self._open()
            self._last_stats = queue.stats()
            self._last_id = queue.max_id()
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise
            return self._salvage(exc, known=None, now_ns=time.time_ns())
        return queue

    def _salvage(self, exc: sqlite3.Error, *, known: int | None, now_ns: int) -> ReadingQueue:
        """Move the corrupt file aside, salvage its rows into a new file, count the rest lost.

        ``known``: the readings the file held (from the running queue); ``None`` at start, when
        the file's own ``meta.readings_held`` is used if it survived.
        """
        aside = move_aside(self._path, now_ns)
        queue = self._open()
        tally = Tally()
        rows = scan(aside, tally, unchecked_rows=not self._ledger) if aside.exists() else iter([])
        chunk: list[QueuedReading] = []
        try:
            for row in rows:
                if row.id not in self._deferred:  # delivered already: the salvage is its delete
                    chunk.append(row)
                if len(chunk) >= WRITE_CHUNK:
                    self._restore(queue, chunk)
                    chunk = []
        except Exception:  # a damage the scan did not foresee ends it; what it found counts
            log.exception("salvaging %s stopped early", aside.name)
        self._restore(queue, chunk)
        found = len(tally.ids)
        self._last_id = max(self._last_id, tally.last_id or 0, max(tally.ids, default=0))
        self._deferred.clear()
        with contextlib.suppress(sqlite3.Error):
            queue.continue_ids_after(self._last_id)
            carried = self._last_stats.dropped_total if known is not None else tally.dropped_total
            if carried:
                queue.restore([], dropped_total=carried)
        lost = tally.lost(known)
        if lost:
            oldest = self._last_stats.oldest_ts
            self._lost.add(*tally.lost_span(oldest_ts=oldest, now_ns=now_ns), lost)
        self._set_fault(
            f"queue file corrupt ({exc}); moved to {aside.name}: {found} rows salvaged, "
            f"{lost} lost (sent as a gap)"
        )
        log.error("%s", self.fault)
        return queue

    def _restore(self, queue: ReadingQueue, rows: list[QueuedReading]) -> None:
        """Write salvaged rows; hold them in memory if the new file refuses them."""
        if not rows:
            return
        try:
            queue.restore(rows)
        except sqlite3.Error as exc:
            log.warning("salvaged rows wait in memory, the new queue file refused them: %s", exc)
            for row in rows:
                self._held.add(row)

    def _replace_corrupt(self, exc: sqlite3.Error, now_ns: int) -> None:
        known = self._queue.readings_held
        with contextlib.suppress(sqlite3.Error):
            self._queue.close()
        self._queue = self._salvage(exc, known=known, now_ns=now_ns)

    def _check_file(self) -> None:
        """If our file was deleted or replaced, move what the open handle still reads."""
        try:
            if os.stat(self._path).st_ino == self._inode:
                return
        except FileNotFoundError:
            pass
        old = self._queue
        rows = old.take(after_id=0, upto_id=None, limit=2**62, include_held=True)
        rows = [r for r in rows if r.id not in self._deferred]
        self._last_id = max(self._last_id, old.max_id())
        old.close()
        self._deferred.clear()
        self._queue = self._open()
        self._queue.restore(rows)
        self._set_fault(f"queue file {self._path} was deleted or replaced; {len(rows)} rows moved")
        log.error("%s", self.fault)

    def _recover(self, exc: sqlite3.Error, now_ns: int) -> None:
        """After a failed operation: replace a corrupt file; otherwise note the fault."""
        if is_corruption(exc):
            self._replace_corrupt(exc, now_ns)
        else:
            self._disk_failed(exc)

    def _disk_failed(self, exc: sqlite3.Error) -> None:
        if self.fault is None:
            log.error("queue write failed (%s): holding readings in memory", exc)
        self._set_fault(f"queue write failed: {exc}")

    # --- the ReadingQueue interface ---------------------------------------------------------

    def append(self, items: list[Item], *, now_ns: int, hold: int | None = None) -> int:
        """Queue ``items`` (held for boot ``hold``, if given); on a failing disk keep them in
        memory. Return readings dropped."""
        for _ in range(2):  # a corrupt file is replaced, and the new one gets a second try
            try:
                self._check_file()
                return self._write(items, now_ns, hold)
            except sqlite3.Error as exc:
                if not is_corruption(exc):
                    self._disk_failed(exc)
                    break
                self._replace_corrupt(exc, now_ns)
        return self._hold(items, hold)

    def release(self, boot: int, shift_ns: int, *, now_ns: int) -> int:
        """Release the rows held for ``boot`` (shifted by ``shift_ns``): those in memory at
        once, the file's in one transaction, or by the next write it takes. Return drops."""
        self._last_id += self._held.release(boot, shift_ns, first_id=self._last_id + 1)
        self._releases[boot] = shift_ns
        try:
            return self._release_in_file(now_ns)
        except sqlite3.Error as exc:
            self._recover(exc, now_ns)
        return 0

    def _release_in_file(self, now_ns: int) -> int:
        dropped = 0
        for boot, shift_ns in list(self._releases.items()):
            ids_after = self._last_id
            dropped += self._queue.release(boot, shift_ns, now_ns=now_ns, ids_after=ids_after)
            del self._releases[boot]
            self._last_id = max(self._last_id, self._queue.max_id())
        return dropped

    def held_boots(self) -> dict[int, int]:
        """Boot id -> rows held for it (file and memory)."""
        boots = self._held.boots()
        with contextlib.suppress(sqlite3.Error):  # a damaged file shows at the next take
            boots.update(self._queue.held_boots())
        return dict(boots)

    def _write(self, items: list[Item], now_ns: int, hold: int | None = None) -> int:
        """Write what memory holds, pending releases, the gap of what was lost, ``items``."""
        self._retry_deletes()
        dropped = 0
        held = self._held.rows()
        for start in range(0, len(held), WRITE_CHUNK):
            chunk = held[start : start + WRITE_CHUNK]
            dropped += self._queue.append([], now_ns=now_ns, held=chunk, ids_after=self._last_id)
            self._held.discard(row.id for row in chunk)
        self._held_gap = None
        dropped += self._release_in_file(now_ns)
        unheld, marked = (items, []) if hold is None else ([], items)
        lost = self._lost.as_items(now_ns)
        if lost or unheld or not marked:
            dropped += self._queue.append(lost + unheld, now_ns=now_ns, ids_after=self._last_id)
            self._lost.clear()
        if marked:
            dropped += self._queue.append(marked, now_ns=now_ns, ids_after=self._last_id, hold=hold)
        self._last_id = max(self._last_id, self._queue.max_id())
        if self.fault is not None:
            log.warning("queue writes work again after: %s", self.fault)
            self.fault = None
        return dropped

    def _hold(self, items: list[Item], hold: int | None) -> int:
        """Give ``items`` ids in memory; trim memory to its bound (the oldest become a gap)."""
        for kind, ts, body in items:
            self._last_id += 1
            self._held.add(QueuedReading(self._last_id, kind, ts, body, hold))
        removed = self._held.trim(self._memory_max)
        for row in removed:
            self._lost.add(row.ts, row.ts, 1)
        return len(removed)

    def _send_lost_from_memory(self) -> None:
        """While the file refuses writes, the gap of what was lost is sent from memory too.

        One gap row at a time waits there (sent like any row); later losses join the span until
        it is delivered, so a long outage does not fill memory with gaps.
        """
        if not self._lost.count or self.fault is None:
            return
        if self._held_gap is not None and self._held_gap in self._held:
            return
        for kind, ts, body in self._lost.as_items(time.time_ns()):
            self._last_id += 1
            self._held.add(QueuedReading(self._last_id, kind, ts, body))
            self._held_gap = self._last_id
        self._lost.clear()

    def _retry_deletes(self) -> None:
        if not self._deferred:
            return
        with contextlib.suppress(sqlite3.OperationalError):
            self._queue.delete(sorted(self._deferred))
            self._deferred.clear()
            self.checkpoint()

    def take(self, *, after_id: int, upto_id: int | None, limit: int) -> list[QueuedReading]:
        """Oldest readings in ``(after_id, upto_id]``, from the file and from memory."""
        self._send_lost_from_memory()
        disk: list[QueuedReading] = []
        for _ in range(2):  # a deleted file still reads through the open handle
            try:
                disk = self._take_from_file(after_id, upto_id, limit)
                break
            except sqlite3.Error as exc:
                self._recover(exc, time.time_ns())
                if not is_corruption(exc):
                    break
        memory = self._held.take(after_id=after_id, upto_id=upto_id, limit=limit)
        if not memory:
            return disk
        return list(heapq.merge(disk, memory, key=lambda row: row.id))[:limit]

    def _take_from_file(
        self, after_id: int, upto_id: int | None, limit: int
    ) -> list[QueuedReading]:
        rows: list[QueuedReading] = []
        while len(rows) < limit:
            page = self._queue.take(after_id=after_id, upto_id=upto_id, limit=limit)
            rows += [r for r in page if r.id not in self._deferred]
            if len(page) < limit:
                break
            after_id = page[-1].id
        return rows[:limit]

    def delete(self, ids: list[int]) -> None:
        """Remove delivered readings; what the file refuses is remembered and retried."""
        on_disk = self._held.discard(ids)
        if not on_disk:
            return
        try:
            self._queue.delete(on_disk + sorted(self._deferred))
        except sqlite3.Error as exc:
            try:
                present = self._queue.ids_present(on_disk)
            except sqlite3.Error:
                present = on_disk
            self._deferred.update(present)
            self._recover(exc, time.time_ns())
            if not is_corruption(exc):
                self._replace_if_delivered()
            return
        self._deferred.clear()
        if self.fault is not None:
            self.checkpoint()

    def _replace_if_delivered(self) -> None:
        """A file that cannot be written and holds only delivered rows is replaced by an empty
        one: deleting it frees its space when deleting its rows cannot."""
        try:
            present = self._queue.ids_present(sorted(self._deferred))
            stats = self._queue.stats()
        except sqlite3.Error:
            return
        if len(present) < len(self._queue):
            return
        self._last_id = max(self._last_id, self._queue.max_id())
        self._queue.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self._path}{suffix}").unlink(missing_ok=True)
        self._deferred.clear()
        self._queue = self._open()
        with contextlib.suppress(sqlite3.Error):
            self._queue.restore([], dropped_total=stats.dropped_total)
        log.warning("queue file held only delivered rows it could not delete: started a new one")

    def checkpoint(self) -> None:
        """Copy the WAL into the file and truncate it, giving its space back (best effort)."""
        with contextlib.suppress(sqlite3.Error):
            self._queue.checkpoint()

    def max_id(self) -> int:
        """Highest id assigned so far (in the file or in memory)."""
        try:
            self._last_id = max(self._last_id, self._queue.max_id())
        except sqlite3.Error as exc:
            self._recover(exc, time.time_ns())
        return self._last_id

    def stats(self) -> QueueStats:
        """Backlog (memory included), drops, oldest timestamp; the last known ones on error."""
        try:
            self._last_stats = self._queue.stats()
        except sqlite3.Error as exc:
            self._recover(exc, time.time_ns())
        oldest = self._last_stats.oldest_ts
        held_oldest = self._held.oldest_ts() if len(self._held) else None
        if held_oldest is not None:
            oldest = held_oldest if oldest is None else min(oldest, held_oldest)
        return QueueStats(
            backlog=len(self), dropped_total=self._last_stats.dropped_total, oldest_ts=oldest
        )

    def __len__(self) -> int:
        return max(0, len(self._queue) - len(self._deferred)) + len(self._held)

    def close(self) -> None:
        """Write what memory holds if the file takes it, and close the file."""
        if len(self._held) or self._lost.count:
            with contextlib.suppress(sqlite3.Error):
                self._write([], time.time_ns())
        if len(self._held):
            log.warning("%d readings held in memory are lost on exit", len(self._held))
        with contextlib.suppress(sqlite3.Error):
            self._queue.close()
