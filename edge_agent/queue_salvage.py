"""Read what survives of a damaged queue file, page by page, as sqlite3's ``.recover`` does.

SQLite refuses a file whose first page is destroyed ("file is not a database") and stops at the
first bad page of a table, so a salvage cannot go through SQL. ``scan`` reads the file's pages
itself, each in its newest committed copy (from the WAL when its frames' checksums hold, else
from the main file), and yields every table-leaf cell whose record has the shape of a queued row
and passes the row's CRC; on the way it picks up what survives of the queue's counters
(``meta.readings_held``, ``meta.dropped_total``, ``sqlite_sequence``). It uses only the stable
parts of the file format (https://www.sqlite.org/fileformat2.html): the header, the WAL frames,
table-leaf pages, overflow chains and records. Delivered rows are not brought back: the queue
runs with ``secure_delete``, which zeroes them. A held row (its clock not measured yet) comes
back held, with its boot id: the CRC covers the mark, so a damaged mark is a damaged row.
"""

from __future__ import annotations

import contextlib
import sqlite3
import struct
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.queue import KINDS, PAGE_SIZE
from edge_agent.queue_rows import QueuedReading, gap_count, row_crc

HEADER_MAGIC = b"SQLite format 3\x00"
WAL_MAGICS = (0x377F0682, 0x377F0683)  # checksums little- / big-endian
TABLE_LEAF = 0x0D
MAX_OVERFLOW_PAGES = 64  # a queued row is a few hundred bytes; longer chains are damage


PageReader = Callable[[int], bytes | None]


@dataclass
class Tally:
    """What a scan found besides the rows: the file's own counters where they survive, and the
    id and stamp of every row it yielded (compact arrays: a salvage may see millions)."""

    held: int | None = None  # meta.readings_held: readings in the file at its last commit
    readings: int = 0  # readings the yielded rows stand for (a gap row counts what it covers)
    last_id: int | None = None  # sqlite_sequence: the highest id the file had handed out
    dropped_total: int | None = None
    ids: array[int] = field(default_factory=lambda: array("q"))
    stamps: array[int] = field(default_factory=lambda: array("q"))

    def lost(self, known: int | None) -> int:
        """Readings the scan could not find, of ``known`` (else of the file's own count)."""
        held = known if known is not None else self.held
        if held is not None:
            return max(0, held - self.readings)
        if self.ids:  # nothing says how many rows there were: the ids missing between them
            return max(self.last_id or 0, *self.ids) - min(self.ids) + 1 - len(self.ids)
        return 1  # an unreadable file: at least one reading, count unknown

    def lost_span(self, *, oldest_ts: int | None, now_ns: int) -> tuple[int, int]:
        """A time span that covers the readings this scan could not find: from the salvaged row
        before the first hole in the ids (or the oldest stamp known) to the row after the last
        hole (or ``now_ns`` if rows may be missing after the last one found)."""
        if not self.ids:
            return (min(oldest_ts or now_ns, now_ns), now_ns)
        order = sorted(range(len(self.ids)), key=self.ids.__getitem__)
        ids = [self.ids[i] for i in order]
        stamps = [self.stamps[i] for i in order]
        start = oldest_ts if oldest_ts is not None and oldest_ts < stamps[0] else None
        end = now_ns if (self.last_id or 0) > ids[-1] else None
        for k in range(1, len(ids)):
            if ids[k] > ids[k - 1] + 1:
                start = stamps[k - 1] if start is None else min(start, stamps[k - 1])
                end = stamps[k] if end is None else max(end, stamps[k])
        if start is None or end is None:  # no visible hole: anywhere in what the file held
            start, end = stamps[0] if start is None else start, now_ns if end is None else end
        return (min(start, end), max(start, end))


def is_corruption(exc: sqlite3.Error) -> bool:
    """Whether an SQLite error says the file is damaged (not full, not locked)."""
    text = str(exc).lower()
    return any(
        sign in text
        for sign in (
            "malformed",
            "not a database",
            "encrypted",
            "no such table",
            "no such column",
            "could not decode",  # damaged text, found by Python's sqlite3
        )
    )


def move_aside(path: Path, now_ns: int) -> Path:
    """Rename a damaged queue file (and its ``-wal``, ``-shm``) to ``<name>.corrupt-<time>``."""
    aside = path.with_name(f"{path.name}.corrupt-{now_ns // 10**9}")
    for n in range(1, 1000):  # several in one second: keep each
        if not aside.exists():
            break
        aside = path.with_name(f"{path.name}.corrupt-{now_ns // 10**9}-{n}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(Path(f"{aside}{suffix}"))
    return aside


def scan(path: Path, tally: Tally, *, unchecked_rows: bool = False) -> Iterator[QueuedReading]:
    """Yield every queued row that survives in the file at ``path`` (and its ``-wal``), each
    once; fill ``tally``. ``unchecked_rows`` also accepts rows without a CRC (files from before
    row checksums; never when the file has a ledger, whose rows have that shape)."""
    wal_path = Path(f"{path}-wal")
    with path.open("rb") as db:
        header = db.read(100)
        page_size = _page_size(header) or _wal_page_size(wal_path) or PAGE_SIZE
        reserved = header[20] if header.startswith(HEADER_MAGIC) and header[20] < 64 else 0
        usable = page_size - reserved
        wal = _wal_frames(wal_path, page_size)
        wal_file = wal_path.open("rb") if wal else None
        with wal_file or contextlib.nullcontext():

            def page(number: int) -> bytes | None:
                if number in wal and wal_file is not None:
                    wal_file.seek(wal[number])
                    return wal_file.read(page_size)
                db.seek((number - 1) * page_size)
                data = db.read(page_size)
                return data if len(data) == page_size else None

            db.seek(0, 2)
            pages = max(db.tell() // page_size, max(wal, default=0))
            seen: set[int] = set()
            for number in range(1, pages + 1):
                data = page(number)
                if data is None:
                    continue
                for rowid, payload in _leaf_cells(data, 100 if number == 1 else 0, usable, page):
                    row = _queued_row(rowid, payload, tally, unchecked_rows=unchecked_rows)
                    if row is not None and row.id not in seen:
                        seen.add(row.id)
                        tally.ids.append(row.id)
                        tally.stamps.append(row.ts)
                        tally.readings += gap_count(row.body) if row.kind == "gaps" else 1
                        yield row


def _page_size(header: bytes) -> int | None:
    if not header.startswith(HEADER_MAGIC):
        return None
    size = int.from_bytes(header[16:18], "big")
    size = 65536 if size == 1 else size
    return size if size >= 512 and size & (size - 1) == 0 else None


def _wal_page_size(wal_path: Path) -> int | None:
    try:
        with wal_path.open("rb") as wal:
            head = wal.read(32)
    except OSError:
        return None
    if len(head) < 32 or int.from_bytes(head[:4], "big") not in WAL_MAGICS:
        return None
    size = int.from_bytes(head[8:12], "big")
    return size if size >= 512 and size & (size - 1) == 0 else None


def _checksum(data: bytes, s0: int, s1: int, *, big: bool) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def _wal_frames(wal_path: Path, page_size: int) -> dict[int, int]:
    """Page number -> offset of its newest committed copy in the WAL (SQLite's own rules: frames
    count while their salts match the header and their checksums chain)."""
    try:
        wal = wal_path.open("rb")
    except OSError:
        return {}
    with wal:
        head = wal.read(32)
        if len(head) < 32:
            return {}
        magic, _, size, _, salt1, salt2, c1, c2 = struct.unpack(">8I", head)
        big = magic == WAL_MAGICS[1]
        if magic not in WAL_MAGICS or size != page_size:
            return {}
        sums = _checksum(head[:24], 0, 0, big=big)
        if sums != (c1, c2):
            return {}
        committed: dict[int, int] = {}
        pending: dict[int, int] = {}
        offset = 32
        while True:
            frame = wal.read(24 + page_size)
            if len(frame) < 24 + page_size:
                break
            number, commit, s1, s2, f1, f2 = struct.unpack(">6I", frame[:24])
            if (s1, s2) != (salt1, salt2):
                break
            sums = _checksum(frame[:8], *sums, big=big)
            sums = _checksum(frame[24:], *sums, big=big)
            if sums != (f1, f2):
                break
            pending[number] = offset + 24
            if commit:
                committed.update(pending)
                pending.clear()
            offset += 24 + page_size
        return committed


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        byte = data[at + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    return (value << 8) | data[at + 8], at + 9


def _local_size(payload: int, usable: int) -> int:
    most = usable - 35
    if payload <= most:
        return payload
    least = (usable - 12) * 32 // 255 - 23
    local = least + (payload - least) % (usable - 4)
    return local if local <= most else least


def _leaf_cells(data: bytes, at: int, usable: int, page: PageReader) -> Iterator[tuple[int, bytes]]:
    """(rowid, payload) of each cell of a table-leaf page; damaged cells are skipped."""
    if data[at] != TABLE_LEAF:
        return
    cells = int.from_bytes(data[at + 3 : at + 5], "big")
    for i in range(min(cells, usable // 4)):
        try:
            pointer = int.from_bytes(data[at + 8 + 2 * i : at + 10 + 2 * i], "big")
            size, p = _varint(data, pointer)
            rowid, p = _varint(data, p)
            local = _local_size(size, usable)
            payload = bytearray(data[p : p + local])
            if local < size:
                payload += _overflow(data, p + local, size - local, usable, page)
        except (IndexError, ValueError):
            continue
        if len(payload) == size and rowid < 2**63:
            yield rowid, bytes(payload)


def _overflow(data: bytes, at: int, size: int, usable: int, page: PageReader) -> bytes:
    """The rest of a payload from its overflow chain (raises ``ValueError`` if broken)."""
    chunks = bytearray()
    number = int.from_bytes(data[at : at + 4], "big")
    for _ in range(MAX_OVERFLOW_PAGES):
        if len(chunks) >= size or not number:
            break
        next_page = page(number)
        if next_page is None:
            raise ValueError("overflow page missing")
        chunks += next_page[4:usable]
        number = int.from_bytes(next_page[:4], "big")
    if len(chunks) < size:
        raise ValueError("overflow chain broken")
    return bytes(chunks[:size])


def _record(payload: bytes) -> list[object]:
    """The values of one record (raises ``IndexError``/``ValueError`` on damage)."""
    end, p = _varint(payload, 0)
    types = []
    while p < end:
        kind, p = _varint(payload, p)
        types.append(kind)
    values: list[object] = []
    at = end
    for kind in types:
        if kind in (0, 8, 9):
            values.append(None if kind == 0 else kind - 8)
            continue
        if 1 <= kind <= 6:
            size = (1, 2, 3, 4, 6, 8)[kind - 1]
            value: object = int.from_bytes(payload[at : at + size], "big", signed=True)
        elif kind == 7:
            size = 8
            value = struct.unpack(">d", payload[at : at + 8])[0]
        elif kind >= 12:
            size = (kind - 12) // 2
            raw = payload[at : at + size]
            value = raw.decode() if kind % 2 else bytes(raw)
        else:
            raise ValueError(f"reserved serial type {kind}")
        if at + size > len(payload):
            raise ValueError("record runs past its cell")
        values.append(value)
        at += size
    return values


def _queued_row(
    rowid: int, payload: bytes, tally: Tally, *, unchecked_rows: bool
) -> QueuedReading | None:
    try:
        values = _record(payload)
    except (IndexError, ValueError, struct.error):  # UnicodeDecodeError is a ValueError
        return None
    if len(values) == 2 and isinstance(values[0], str) and isinstance(values[1], int):
        key, number = values[0], values[1]
        if key == "readings":  # sqlite_sequence
            tally.last_id = max(tally.last_id or 0, number)
        elif key == "readings_held":
            tally.held = number
        elif key == "dropped_total":
            tally.dropped_total = number
        return None
    if len(values) not in (4, 5, 6) or values[0] is not None:
        return None
    kind, ts, body = values[1:4]
    crc = values[4] if len(values) >= 5 else None
    held = values[5] if len(values) == 6 else None
    if not (isinstance(kind, str) and kind in KINDS):
        return None
    if not (isinstance(ts, int) and isinstance(body, bytes) and isinstance(held, int | None)):
        return None
    checked = isinstance(crc, int) and crc == row_crc(kind, ts, body, held)
    if not checked and not (unchecked_rows and crc is None and held is None):
        return None
    return QueuedReading(rowid, kind, ts, body, held)
