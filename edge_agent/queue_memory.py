"""What the guarded queue keeps in memory while its file cannot be written.

``HeldRows`` are readings that got their ids without the disk: the publisher takes, sends and
deletes them like rows of the file, and they are written to the file when it takes writes again.
Held rows among them (stamped before the clock was measured) are never taken; ``release`` shifts
them once and gives them new ids, in memory, as the file's ``release`` does on disk.
``LostSpan`` is what could not be kept (the memory bound, a destroyed part of a corrupt file),
recorded as one gap reading.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable

from edge_agent.queue_rows import Item, QueuedReading, shift_held
from pantau.core.contract import GapReading


class HeldRows:
    """Readings held in memory, by id (ascending)."""

    def __init__(self) -> None:
        self._ids: list[int] = []  # may keep ids already removed; compacted when mostly stale
        self._rows: dict[int, QueuedReading] = {}
        self._gaps = 0  # gap rows among them (the memory bound counts readings)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, row_id: int) -> bool:
        return row_id in self._rows

    def add(self, row: QueuedReading) -> None:
        """Hold ``row`` (new rows come with the highest ids; salvaged ones may not)."""
        if row.id in self._rows:
            return
        if not self._ids or row.id > self._ids[-1]:
            self._ids.append(row.id)
        else:
            bisect.insort(self._ids, row.id)
        self._rows[row.id] = row
        self._gaps += row.kind == "gaps"

    def take(self, *, after_id: int, upto_id: int | None, limit: int) -> list[QueuedReading]:
        """Rows with ``after_id < id <= upto_id`` (not held), lowest ids first, at most
        ``limit``."""
        out: list[QueuedReading] = []
        i = bisect.bisect_right(self._ids, after_id)
        while i < len(self._ids) and len(out) < limit:
            row_id = self._ids[i]
            if upto_id is not None and row_id > upto_id:
                break
            row = self._rows.get(row_id)
            if row is not None and row.held is None:
                out.append(row)
            i += 1
        return out

    def rows(self) -> list[QueuedReading]:
        """Every held row, lowest id first."""
        return [self._rows[i] for i in self._ids if i in self._rows]

    def boots(self) -> Counter[int]:
        """Boot id -> rows held for it."""
        return Counter(row.held for row in self._rows.values() if row.held is not None)

    def release(self, boot: int, shift_ns: int, *, first_id: int) -> int:
        """Rows held for ``boot``: shifted by ``shift_ns``, unheld, new ids from ``first_id``
        on; return how many."""
        rows = [row for row in self.rows() if row.held == boot]
        shifted = shift_held([(row.kind, row.ts, row.body) for row in rows], shift_ns)
        released = [(row, item) for row, item in zip(rows, shifted, strict=True) if item]
        self.discard(row.id for row, _ in released)
        for n, (_, (kind, ts, body)) in enumerate(released):
            self.add(QueuedReading(first_id + n, kind, ts, body))
        return len(released)

    def oldest_ts(self) -> int | None:
        """The smallest stamp held."""
        return min((row.ts for row in self._rows.values()), default=None)

    def discard(self, ids: Iterable[int]) -> list[int]:
        """Forget these rows; return the ids that were not held."""
        missing = []
        for row_id in ids:
            row = self._rows.pop(row_id, None)
            if row is None:
                missing.append(row_id)
            else:
                self._gaps -= row.kind == "gaps"
        if len(self._ids) > 2 * len(self._rows) + 64:
            self._ids = [i for i in self._ids if i in self._rows]
        return missing

    def trim(self, max_rows: int) -> list[QueuedReading]:
        """Remove the oldest readings (never gaps, never held rows: their hold is bounded)
        beyond ``max_rows``; return them."""
        removed: list[QueuedReading] = []
        excess = len(self._rows) - self._gaps - max_rows
        for row_id in self._ids:
            if len(removed) >= excess:
                break
            row = self._rows.get(row_id)
            if row is not None and row.kind != "gaps" and row.held is None:
                removed.append(row)
        self.discard(row.id for row in removed)
        return removed


class LostSpan:
    """A span of readings that could not be kept, to be recorded as one gap."""

    def __init__(self) -> None:
        self.start_ts: int | None = None
        self.end_ts: int | None = None
        self.count = 0

    def add(self, start_ts: int, end_ts: int, count: int) -> None:
        """Widen the span by ``count`` readings stamped between ``start_ts`` and ``end_ts``."""
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
        """Forget the span (it is recorded now)."""
        self.start_ts = self.end_ts = None
        self.count = 0
