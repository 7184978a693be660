"""The hash chain: a row's canonical encoding, its hash, and checking a chain (pure logic).

``hash = SHA-256(canonical JSON of [prev_hash, at_ns, event, actor, target, details])`` where
``details`` is the stored JSON text, so changing any byte of a row, or of the row before it,
changes the hash. Rows are numbered from 1 without gaps: a missing number is a deleted row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64  # the "previous hash" of row 1


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One row of the trail."""

    id: int
    at_ns: int
    event: str
    actor: str
    target: str
    details: str  # canonical JSON text
    prev_hash: str
    hash: str

    def details_dict(self) -> dict[str, Any]:
        """The details as a dict (``{}`` if the stored text is not a JSON object)."""
        try:
            found = json.loads(self.details)
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}


@dataclass(frozen=True, slots=True)
class Head:
    """The chain's last row as the head table records it."""

    last_id: int
    last_hash: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of checking a chain; ``row`` is the first bad row's id (None when good)."""

    ok: bool
    rows: int
    row: int | None = None
    problem: str = ""
    head: Head | None = None


def canonical_details(details: Mapping[str, Any] | None) -> str:
    """``details`` as canonical JSON (sorted keys, no spaces, UTF-8 kept)."""
    return json.dumps(
        dict(details or {}), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def row_hash(
    *, prev_hash: str, at_ns: int, event: str, actor: str, target: str, details: str
) -> str:
    """The SHA-256 (hex) of a row's canonical encoding."""
    encoded = json.dumps(
        [prev_hash, at_ns, event, actor, target, details],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    return hashlib.sha256(encoded).hexdigest()


def own_hash(record: AuditRecord) -> str:
    """What ``record``'s hash must be, given its content and its stored previous hash."""
    return row_hash(
        prev_hash=record.prev_hash,
        at_ns=record.at_ns,
        event=record.event,
        actor=record.actor,
        target=record.target,
        details=record.details,
    )


def verify(records: Iterable[AuditRecord], head: Head | None) -> Verdict:
    """Check rows (in id order) against each other and the head; name the first bad row.

    Finds an edited row (its content no longer gives its hash), a deleted one (a missing
    number, or the table ending before the head), an inserted one (a row that does not chain
    to the row before it but the next row skips over it, or a row after the head). A rewrite
    of every hash from some row to the end, head included, can only be found against a head
    published earlier (``anchors`` in :func:`check_anchor`): the monthly report prints it.
    """
    count = 0
    expected_id = 1
    prev_hash = GENESIS
    before_prev = GENESIS  # the hash of the row before the previous one
    head_id = head.last_id if head is not None else 0
    for record in records:
        count += 1
        if record.id > expected_id:
            missing = (
                f"row {expected_id}"
                if record.id == expected_id + 1
                else f"rows {expected_id}-{record.id - 1}"
            )
            return _bad(expected_id, f"{missing} deleted (numbers missing)", count, head)
        if record.id > head_id:
            return _bad(record.id, f"row {record.id} inserted after the chain head", count, head)
        if own_hash(record) != record.hash:
            return _bad(
                record.id,
                f"row {record.id} edited (its content does not match its hash)",
                count,
                head,
            )
        if record.prev_hash != prev_hash:
            if record.id > 1 and record.prev_hash == before_prev:
                return _bad(
                    record.id - 1,
                    f"row {record.id - 1} inserted (row {record.id} chains past it)",
                    count,
                    head,
                )
            return _bad(
                record.id,
                f"row {record.id} does not chain to row {record.id - 1}: a row before it was "
                f"deleted or rewritten, or row {record.id} was inserted",
                count,
                head,
            )
        before_prev, prev_hash = prev_hash, record.hash
        expected_id = record.id + 1
    last_id = expected_id - 1
    if head is not None and last_id < head.last_id:
        gone = (
            f"row {head.last_id}"
            if head.last_id == last_id + 1
            else (f"rows {last_id + 1}-{head.last_id}")
        )
        return _bad(
            last_id + 1, f"{gone} deleted (the head records {head.last_id} rows)", count, head
        )
    if head is not None and head.last_id and head.last_hash != prev_hash:
        return _bad(
            head.last_id,
            f"row {head.last_id} rewritten (its hash differs from the head's)",
            count,
            head,
        )
    if head is None and count:
        return _bad(1, "the chain head is missing", count, head)
    return Verdict(ok=True, rows=count, head=head)


def check_anchor(records: Iterable[AuditRecord], anchor_id: int, anchor_hash: str) -> str | None:
    """None if row ``anchor_id`` still has the hash published earlier, else the problem."""
    for record in records:
        if record.id == anchor_id:
            if record.hash == anchor_hash:
                return None
            return f"row {anchor_id} no longer has the published hash {anchor_hash[:12]}..."
    return f"row {anchor_id} (published with hash {anchor_hash[:12]}...) is gone"


def _bad(row: int, problem: str, count: int, head: Head | None) -> Verdict:
    return Verdict(ok=False, rows=count, row=row, problem=problem, head=head)
