"""The disk queue, kept working when its disk is not: full, the file deleted, the file corrupt.

The agent must never stop for its queue's sake. ``GuardedQueue`` wraps ``ReadingQueue``:

- **disk full / I/O error**: new readings wait in memory (at most ``memory_max_readings``; the
  oldest beyond that become a ``gap``) and are written as soon as the disk takes them again;
- **file deleted or replaced** under the running agent: the rows still readable through the open
  handle move, with their ids, into a new file at the configured path;
- **file corrupt** (at start or later): it is moved aside as ``<name>.corrupt-<time>``, a new file
  continues the ids, and a ``gap`` covers what the old file held (as far as it can be read).

While a fault lasts, ``fault`` says what is wrong; the agent reports it (``queue_error``).
All methods block and run on the agent's queue thread, like ``ReadingQueue``'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections import deque
from pathlib import Path

from edge_agent.queue import QueuedReading, QueueStats, ReadingQueue
from pantau.core.contract import GapReading

log = logging.getLogger(__name__)

Item = tuple[str, int, bytes]


def _is_corruption(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "file is encrypted" in text


class _Lost:
    """A span of readings that could not be kept, to be recorded as one gap."""

    def __init__(self) -> None:
        self.start_ts: int | None = None
        self.end_ts: int | None = None
        self.count = 0

    def add(self, start_ts: int, end_ts: int, count: int) -> None:
        self.start_ts = start_ts if self.start_ts is None else min(self.start_ts, start_ts)
        self.end_ts = end_ts if self.end_ts is None else max(self.end_ts, end_ts)
        self.count += count

    def as_items(self, now_ns: int) -> list[Item]:
        """The span as one gap reading (nothing if nothing was lost)."""
        if self.start_ts is None or self.end_ts is None or not self.count:
            return []
        gap = GapReading(ts=now_ns, start_ts=self.start_ts, end_ts=self.end_ts, count=self.count)
        return [("gaps", now_ns, gap.model_dump_json().encode())]

    def clear(self) -> None:
        """Forget the span (it is on disk now)."""
        self.start_ts = self.end_ts = None
        self.count = 0


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
        self._options = {"max_readings": max_readings, "max_age_s": max_age_s, "ledger": ledger}
        self._memory_max = memory_max_readings
        self._pending: deque[Item] = deque()
        self._lost = _Lost()
        self._last_stats = QueueStats(backlog=0, dropped_total=0, oldest_ts=None)
        self._last_id = 0
        self.fault: str | None = None  # what is wrong now
        self._event: str | None = None  # the latest fault, until reported
        self._queue = self._open_or_replace()

    def take_fault(self) -> str | None:
        """The current fault, else the latest one since the last call (recovered faults are
        reported once too), else ``None``."""
        event, self._event = self._event, None
        return self.fault or event

    def _set_fault(self, text: str) -> None:
        self.fault = self._event = text

    # --- opening, moving aside, migrating -------------------------------------------------

    def _open(self) -> ReadingQueue:
        queue = ReadingQueue(self._path, **self._options)  # type: ignore[arg-type]
        queue.continue_ids_after(self._last_id)
        self._inode = os.stat(self._path).st_ino
        return queue

    def _open_or_replace(self) -> ReadingQueue:
        try:
            queue = self._open()
            self._last_stats = queue.stats()
            self._last_id = queue.max_id()
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise
            self._move_aside(exc, now_ns=time.time_ns())
            return self._open()
        return queue

    def _move_aside(self, exc: sqlite3.Error, *, now_ns: int) -> None:
        """Rename the corrupt file (and its WAL) away; remember what it held as lost."""
        aside = self._path.with_name(f"{self._path.name}.corrupt-{now_ns // 10**9}")
        span = self._readable_span(self._path)
        for suffix in ("", "-wal", "-shm"):
            source = Path(str(self._path) + suffix)
            if source.exists():
                source.rename(Path(str(aside) + suffix))
        if span is None:  # nothing readable: at least the time since the file was last written
            mtime = int(os.stat(aside).st_mtime * 1e9) if aside.exists() else now_ns
            span = (min(mtime, self._last_stats.oldest_ts or mtime), now_ns, 1)
        self._lost.add(*span)
        self._set_fault(f"queue file corrupt ({exc}); moved to {aside.name}, started a new one")
        log.error("%s", self.fault)

    @staticmethod
    def _readable_span(path: Path) -> tuple[int, int, int] | None:
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
            try:
                lo, hi, n = db.execute("SELECT MIN(ts), MAX(ts), COUNT(*) FROM readings").fetchone()
            finally:
                db.close()
        except sqlite3.Error:
            return None
        return (int(lo), int(hi), int(n)) if n else None

    def _check_file(self) -> None:
        """If our file was deleted or replaced, move what the open handle still reads."""
        try:
            if os.stat(self._path).st_ino == self._inode:
                return
        except FileNotFoundError:
            pass
        old = self._queue
        rows = old.take(after_id=0, upto_id=None, limit=2**62)
        self._last_id = max(self._last_id, old.max_id())
        old.close()
        self._queue = self._open()
        self._queue.restore(rows)
        self._set_fault(f"queue file {self._path} was deleted or replaced; {len(rows)} rows moved")
        log.error("%s", self.fault)

    def _recover(self, exc: sqlite3.Error, now_ns: int) -> None:
        """After a failed operation: replace a corrupt file; otherwise note the fault."""
        if _is_corruption(exc):
            with contextlib.suppress(sqlite3.Error):
                self._queue.close()
            self._move_aside(exc, now_ns=now_ns)
            self._queue = self._open()
        else:
            if self.fault is None:
                log.error("queue write failed (%s): holding readings in memory", exc)
            self._set_fault(f"queue write failed: {exc}")

    # --- the ReadingQueue interface ---------------------------------------------------------

    def append(self, items: list[Item], *, now_ns: int) -> int:
        """Queue ``items``; on a failing disk hold them in memory. Return readings dropped."""
        self._pending.extend(items)
        dropped = 0
        for _ in range(2):  # a corrupt file is replaced, and the new one gets a second try
            batch = self._lost.as_items(now_ns) + list(self._pending)
            try:
                self._check_file()
                dropped += self._queue.append(batch, now_ns=now_ns)
            except sqlite3.Error as exc:
                self._recover(exc, now_ns)
                if _is_corruption(exc):
                    continue
                return dropped + self._trim_memory()
            self._pending.clear()
            self._lost.clear()
            if self.fault is not None:
                log.warning("queue writes work again after: %s", self.fault)
                self.fault = None
            break
        return dropped

    def _trim_memory(self) -> int:
        dropped = 0
        while len(self._pending) > self._memory_max:
            kind, ts, _ = self._pending.popleft()
            if kind != "gaps":
                self._lost.add(ts, ts, 1)
                dropped += 1
        return dropped

    def take(self, *, after_id: int, upto_id: int | None, limit: int) -> list[QueuedReading]:
        """Oldest readings in ``(after_id, upto_id]``; none while the file cannot be read."""
        try:  # a deleted file still reads through the open handle; append() moves its rows
            return self._queue.take(after_id=after_id, upto_id=upto_id, limit=limit)
        except sqlite3.Error as exc:
            self._recover(exc, time.time_ns())
            return []

    def delete(self, ids: list[int]) -> None:
        """Remove stored readings; if that fails they stay and are sent again (a duplicate)."""
        try:
            self._queue.delete(ids)
        except sqlite3.Error as exc:
            self._recover(exc, time.time_ns())

    def max_id(self) -> int:
        """Highest id assigned so far."""
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
        s = self._last_stats
        oldest = s.oldest_ts
        if self._pending:
            first = self._pending[0][1]
            oldest = first if oldest is None else min(oldest, first)
        return QueueStats(
            backlog=s.backlog + len(self._pending), dropped_total=s.dropped_total, oldest_ts=oldest
        )

    def __len__(self) -> int:
        return len(self._queue) + len(self._pending)

    def close(self) -> None:
        """Close the file (readings still in memory are lost with the process)."""
        if self._pending:
            log.warning("%d readings held in memory are lost on exit", len(self._pending))
        with contextlib.suppress(sqlite3.Error):
            self._queue.close()
