"""Dead-letter store: rejected messages kept with their reason, in a bounded SQLite file."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

MAX_STORED_PAYLOAD_BYTES = 65_536  # enough to diagnose; an oversized payload is cut here


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected message."""

    received_ns: int
    topic: str
    reason: str
    detail: str
    payload: bytes


class DeadLetterStore:
    """Append-only store pruned to ``max_rows``; blocking, so call it from a worker thread."""

    def __init__(self, path: Path, *, max_rows: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._max_rows = max_rows
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY, received_ns INTEGER,"
            " topic TEXT, reason TEXT, detail TEXT, payload BLOB)"
        )

    def add_many(self, letters: list[DeadLetter]) -> None:
        """Store letters durably, then prune the oldest beyond the bound."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO dead_letters (received_ns, topic, reason, detail, payload)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        d.received_ns,
                        d.topic,
                        d.reason,
                        d.detail,
                        d.payload[:MAX_STORED_PAYLOAD_BYTES],
                    )
                    for d in letters
                ],
            )
            self._db.execute(
                "DELETE FROM dead_letters WHERE id <= (SELECT MAX(id) FROM dead_letters) - ?",
                (self._max_rows,),
            )

    def count_by_reason(self) -> dict[str, int]:
        """How many stored letters there are of each reason."""
        rows = self._db.execute("SELECT reason, COUNT(*) FROM dead_letters GROUP BY reason")
        return {reason: int(count) for reason, count in rows}

    def close(self) -> None:
        """Close the database."""
        self._db.close()
