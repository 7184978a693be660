"""Edge dead letters: readings the cloud refused for good (its receipt said why), kept aside
in a bounded SQLite file beside the queue and counted, instead of being sent forever."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

log = logging.getLogger(__name__)

MAX_ROWS = 10_000  # the newest refused readings kept for diagnosis; the count goes on


class EdgeRejects:
    """Refused readings with their reason; ``total`` counts every one ever set aside.

    Blocking: call it from the queue's worker thread."""

    def __init__(self, path: Path, *, max_rows: int = MAX_ROWS) -> None:
        self._max_rows = max_rows
        self.total = 0
        self._db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            db.execute(
                "CREATE TABLE IF NOT EXISTS rejected (id INTEGER PRIMARY KEY, at_ns INTEGER,"
                " msg INTEGER, reason TEXT, detail TEXT, kind TEXT, body BLOB)"
            )
            db.execute("CREATE TABLE IF NOT EXISTS total (n INTEGER)")
            row = db.execute("SELECT n FROM total").fetchone()
            self.total = int(row[0]) if row else 0
            self._db = db
        except sqlite3.Error as exc:  # counted in memory only; the agent goes on
            log.warning("edge dead letters %s unavailable: %s", path, exc)

    def add(self, msg: int, reason: str, detail: str, rows: list[tuple[str, bytes]]) -> None:
        """Set ``rows`` (kind, body) of message ``msg`` aside."""
        self.total += len(rows)
        log.warning(
            "the cloud refused %d readings of message %d (%s: %s); kept aside",
            len(rows),
            msg,
            reason,
            detail,
        )
        if self._db is None:
            return
        now = time.time_ns()
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO rejected (at_ns, msg, reason, detail, kind, body)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(now, msg, reason, detail, kind, body) for kind, body in rows],
                )
                self._db.execute("DELETE FROM total")
                self._db.execute("INSERT INTO total (n) VALUES (?)", (self.total,))
                self._db.execute(
                    "DELETE FROM rejected WHERE id <= (SELECT MAX(id) FROM rejected) - ?",
                    (self._max_rows,),
                )
        except sqlite3.Error as exc:
            log.warning("could not keep refused readings aside (counted only): %s", exc)

    def close(self) -> None:
        """Close the file."""
        if self._db is not None:
            self._db.close()
