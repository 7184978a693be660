"""What a queued row is: its shape, its checksum, its timestamps (shared by the queue modules).

A row is *held* while its stamps are in the boot frame of the start that took it (``held`` is
that start's boot id, see ``edge_agent/clock.py``); it is never sent until released, when its
timestamp fields (``TIMESTAMP_FIELDS``) are shifted once and the mark cleared.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from dataclasses import dataclass
from typing import Protocol

from pantau.core.contract import GapReading

Item = tuple[str, int, bytes]

# Timestamp fields of each reading kind (``ReadingBatch`` list name), shifted on release.
# tests/test_clock_correction.py checks that every TimestampNs field of the contract is here.
TIMESTAMP_FIELDS: dict[str, tuple[str, ...]] = {
    "cameras": ("ts", "since"),
    "sensors": ("ts",),
    "agent": ("ts",),
    "streams": ("ts",),
    "gaps": ("ts", "start_ts", "end_ts"),
    # Recorders' and cameras' own times (``DeviceTimeNs``: gaps, oldest recording) stay as the
    # device said; only the agent's stamp moves.
    "recordings": ("ts",),
    "disks": ("ts",),
    "devices": ("ts",),
    "commands": ("ts",),
    "ports": ("ts",),
    "services": ("ts",),
}


def row_crc(kind: str, ts: int, body: bytes, held: int | None = None) -> int:
    """Checksum of one queued row (kind, stamp, body and, on a held row, its boot id)."""
    crc = zlib.crc32(body, zlib.crc32(f"{kind}:{ts}".encode()))
    return crc if held is None else zlib.crc32(f"held:{held}".encode(), crc)


def gap_count(body: bytes) -> int:
    """How many readings a queued gap row stands for (1 if its body cannot be read)."""
    try:
        return GapReading.model_validate_json(body).count
    except ValueError:
        return 1


def shift_item(item: Item, delta_ns: int) -> Item:
    """A queue item with its timestamps moved by ``delta_ns``."""
    kind, ts, body = item
    if delta_ns == 0:
        return item
    reading = json.loads(body)
    for name in TIMESTAMP_FIELDS[kind]:
        if reading.get(name) is not None:
            reading[name] += delta_ns
    return kind, ts + delta_ns, json.dumps(reading, separators=(",", ":")).encode()


class CorruptRowError(sqlite3.DatabaseError):
    """A row that fails its checksum or has no known kind: the file is damaged."""


@dataclass(frozen=True, slots=True)
class QueuedReading:
    """One queued reading: its row id, kind (a ``ReadingBatch`` list name) and JSON body;
    ``held``: the boot id of the start whose unmeasured clock stamped it (``None``: sendable)."""

    id: int
    kind: str
    ts: int
    body: bytes
    held: int | None = None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Backlog figures."""

    backlog: int
    dropped_total: int
    oldest_ts: int | None


class ForwardQueue(Protocol):
    """What the publisher and the stream scheduler need of a queue (``ReadingQueue`` or the
    ``GuardedQueue`` around it)."""

    def append(self, items: list[Item], *, now_ns: int) -> int: ...

    def take(self, *, after_id: int, upto_id: int | None, limit: int) -> list[QueuedReading]: ...

    def delete(self, ids: list[int]) -> None: ...

    def max_id(self) -> int: ...

    def __len__(self) -> int: ...


class HoldingStore(ForwardQueue, Protocol):
    """A queue that can hold rows until their clock is known (``edge_agent/clock.py``)."""

    def append(self, items: list[Item], *, now_ns: int, hold: int | None = None) -> int: ...

    def release(self, boot: int, shift_ns: int, *, now_ns: int) -> int: ...

    def held_boots(self) -> dict[int, int]: ...


class StampClock(Protocol):
    """The agent's time as producers use it (``clock.EdgeClock``): strictly increasing stamps
    per device."""

    def boot_ns(self) -> int: ...

    def now_ns(self) -> int: ...

    def stamp(self, device: tuple[str, ...], ts_ns: int) -> int: ...


class ItemSink(Protocol):
    """Where producers put stamped readings (``clock.HoldingQueue``)."""

    def append(self, items: list[tuple[str, int, bytes]], *, now_ns: int) -> int: ...
