"""Production adapters of the collector's seams that need more than the library's class."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cloud.deadletter import DeadLetter, DeadLetterStore
from cloud.influx import InfluxClient, series_rows
from cloud.ingest.births import Birth
from cloud.schema import SITE, SITE_TAG


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


class InfluxBirths:
    """A ``BirthLookup`` over InfluxDB: the newest numbered birth point of a site."""

    def __init__(self, client: InfluxClient, *, within_days: int) -> None:
        self._client = client
        self._within_days = within_days

    async def latest_birth(self, site: str) -> Birth | None:
        """``site`` is a validated id (the contract's ``Ident``): safe inside the query."""
        rows = series_rows(
            await self._client.query(
                f'SELECT "seq" FROM "{SITE}" WHERE "{SITE_TAG}" = \'{site}\' AND "online" = 1 '
                f'AND "seq" >= 0 AND time > now() - {self._within_days}d '
                "ORDER BY time DESC LIMIT 1"
            )
        )
        if not rows or rows[0].get("seq") is None:
            return None
        return Birth(int(rows[0]["seq"]), int(rows[0]["time"]))
