"""What a queued row is: its shape, its checksum, its timestamps (shared by the queue modules).

A row is *held* while its stamps are in the boot frame of the start that took it (``held`` is
that start's boot id, see ``edge_agent/clock.py``); it is never sent until released, when its
timestamp fields (``TIMESTAMP_FIELDS``) are shifted once and the mark cleared.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pantau.core.contract import GapReading

log = logging.getLogger(__name__)

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
    "devices": ("ts", "rebooted_ns"),
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


class UndeclaredKindError(KeyError):
    """A reading kind whose timestamp fields are not declared: its stamps cannot be shifted."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind

    def __str__(self) -> str:
        return (
            f"reading kind {self.kind!r} has no entry in TIMESTAMP_FIELDS "
            "(edge_agent/queue_rows.py): declare its timestamp fields there"
        )


def shift_item(
    item: Item, delta_ns: int, *, fields: Mapping[str, tuple[str, ...]] = TIMESTAMP_FIELDS
) -> Item:
    """A queue item with its timestamps (``fields`` of its kind) moved by ``delta_ns``.

    Raises:
        UndeclaredKindError: the item's kind is not in ``fields`` (and ``delta_ns`` is not 0).
    """
    kind, ts, body = item
    if delta_ns == 0:
        return item
    if kind not in fields:
        raise UndeclaredKindError(kind)
    reading = json.loads(body)
    for name in fields[kind]:
        if reading.get(name) is not None:
            reading[name] += delta_ns
    return kind, ts + delta_ns, json.dumps(reading, separators=(",", ":")).encode()


def shift_held(
    items: Sequence[Item],
    delta_ns: int,
    *,
    fields: Mapping[str, tuple[str, ...]] = TIMESTAMP_FIELDS,
) -> list[Item | None]:
    """``items`` shifted by ``delta_ns`` for their release; ``None`` for an item whose kind has
    no declared timestamp fields. Those stay held (never sent with a stamp half moved), so the
    rest is released and the queue goes on; each such kind is logged as an error."""
    shifted: list[Item | None] = []
    undeclared: Counter[str] = Counter()
    for item in items:
        try:
            shifted.append(shift_item(item, delta_ns, fields=fields))
        except UndeclaredKindError as exc:
            undeclared[exc.kind] += 1
            shifted.append(None)
    for kind, count in sorted(undeclared.items()):
        log.error(
            "%s; %d held readings of that kind stay held (not sent) until an agent that "
            "declares it starts (an earlier start's rows are released at the box's own time)",
            UndeclaredKindError(kind),
            count,
        )
    return shifted


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
