"""Production adapters of the collector's seams that need more than the library's class."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cloud.deadletter import DeadLetter, DeadLetterStore


class ThreadedDeadLetters:
    """A ``DeadLetterSink`` over the SQLite ``DeadLetterStore``, on one thread of its own
    (SQLite connections must not be used by two threads at once)."""

    def __init__(self, path: Path, *, max_rows: int) -> None:
        self._store = DeadLetterStore(path, max_rows=max_rows)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="dead-letters")

    async def add(self, letters: list[DeadLetter]) -> None:
        """Store ``letters`` durably."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._store.add_many, letters)

    def close(self) -> None:
        """Finish pending writes and close the file."""
        self._thread.shutdown(wait=True)
        self._store.close()
