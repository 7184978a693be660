"""Nonces of commands taken, kept on disk beside the queue until the command expires, so a
command captured and sent again is refused even after an agent restart."""

from __future__ import annotations

import sqlite3
from pathlib import Path


class NonceBook:
    """A SQLite file of ``(nonce, expires_ns)``; expired nonces are forgotten (a command past
    its expiry is refused for that reason anyway)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a power cut must not forget a nonce
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires_ns INTEGER)"
        )

    def take(self, nonce: str, *, expires_ns: int, now_ns: int) -> bool:
        """Remember ``nonce``; False if it was already taken (a replay)."""
        with self._db:
            self._db.execute("DELETE FROM nonces WHERE expires_ns < ?", (now_ns,))
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO nonces (nonce, expires_ns) VALUES (?, ?)",
                (nonce, expires_ns),
            )
        return inserted.rowcount == 1

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM nonces").fetchone()[0])

    def close(self) -> None:
        """Close the file."""
        self._db.close()
