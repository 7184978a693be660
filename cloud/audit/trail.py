"""Appending to and reading the audit trail in the state database (SQLite or PostgreSQL).

Every append locks the head row first, in the same transaction as the insert: PostgreSQL with
``SELECT ... FOR UPDATE``, SQLite by taking the database's write lock (``BEGIN IMMEDIATE`` for a
transaction of our own, an update of the head inside someone else's). So two API instances,
or any number of processes, appending at once keep one chain without forks.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cloud.audit.chain import (
    GENESIS,
    AuditRecord,
    Head,
    Verdict,
    canonical_details,
    check_anchor,
    own_hash,
    verify,
)
from cloud.audit.events import AuditEvent
from cloud.audit.tables import audit_table, head_table, metadata
from cloud.statedb import create_tables, make_engine

MAX_FIELD = {"actor": 100, "target": 200}


class AuditError(Exception):
    """Root of the audit trail's errors."""


@dataclass(frozen=True, slots=True)
class Summary:
    """What the trail holds for a period: counts per event, first and last row, the head."""

    counts: dict[str, int] = field(default_factory=dict)
    first_id: int | None = None
    last_id: int | None = None
    head: Head | None = None
    verdict: Verdict | None = None


class AuditTrail:
    """The tamper-evident audit trail; ``target`` is a state database URL (the trail then owns
    its engine: ``close()`` disposes it) or an engine the caller owns."""

    def __init__(self, target: str | sa.Engine) -> None:
        self._owned = isinstance(target, str)
        self._engine = make_engine(target) if isinstance(target, str) else target
        create_tables(self._engine, metadata)
        insert = (
            sqlite_insert(head_table)
            if self._engine.dialect.name == "sqlite"
            else postgresql_insert(head_table)
        )
        with self._engine.begin() as db:  # another process may be creating it too
            db.execute(insert.values(id=1, last_id=0, last_hash=GENESIS).on_conflict_do_nothing())

    def close(self) -> None:
        """Release connections (only those of an engine this trail made)."""
        if self._owned:
            self._engine.dispose()

    def append(
        self,
        event: AuditEvent,
        actor: str,
        target: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Append one row in a transaction of its own."""
        with self._writing() as db:
            return self.append_in(db, event, actor, target, details)

    def append_in(
        self,
        db: sa.Connection,
        event: AuditEvent,
        actor: str,
        target: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Append one row inside the caller's transaction (committed or rolled back with it)."""
        head = _lock_head(db)
        record = AuditRecord(
            id=head.last_id + 1,
            at_ns=time.time_ns(),
            event=AuditEvent(event).value,
            actor=actor[: MAX_FIELD["actor"]],
            target=target[: MAX_FIELD["target"]],
            details=canonical_details(details),
            prev_hash=head.last_hash,
            hash="",
        )
        record = dataclasses.replace(record, hash=own_hash(record))
        db.execute(audit_table.insert().values(**dataclasses.asdict(record)))
        db.execute(
            head_table.update()
            .where(head_table.c.id == 1)
            .values(last_id=record.id, last_hash=record.hash)
        )
        return record

    def head(self) -> Head | None:
        """The chain's last row as the head records it."""
        with self._engine.connect() as db:
            return _read_head(db)

    def records(
        self,
        *,
        since_ns: int | None = None,
        until_ns: int | None = None,
        after_id: int = 0,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Rows in id order after ``after_id``, optionally of ``[since_ns, until_ns)``, at most
        ``limit``."""
        query = audit_table.select().where(audit_table.c.id > after_id).order_by(audit_table.c.id)
        if since_ns is not None:
            query = query.where(audit_table.c.at_ns >= since_ns)
        if until_ns is not None:
            query = query.where(audit_table.c.at_ns < until_ns)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as db:
            return [_record(row) for row in db.execute(query)]

    def verify(self, anchor: tuple[int, str] | None = None) -> Verdict:
        """Check the whole chain in one consistent snapshot; with ``anchor`` (id, hash), also
        that the row published with that hash is unchanged."""
        with self._snapshot() as db:
            head = _read_head(db)
            verdict = verify(_stream(db), head)
            if verdict.ok and anchor is not None:
                problem = check_anchor(_stream(db), *anchor)
                if problem is not None:
                    return Verdict(
                        ok=False, rows=verdict.rows, row=anchor[0], problem=problem, head=head
                    )
        return verdict

    def summary(self, since_ns: int, until_ns: int) -> Summary:
        """Counts per event of ``[since_ns, until_ns)``, its first and last row, the head and
        whether the whole chain verifies."""
        rows = self.records(since_ns=since_ns, until_ns=until_ns)
        return Summary(
            counts=dict(sorted(Counter(r.event for r in rows).items())),
            first_id=rows[0].id if rows else None,
            last_id=rows[-1].id if rows else None,
            head=self.head(),
            verdict=self.verify(),
        )

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as db:
            if db.dialect.name == "sqlite":
                # Take the write lock now: a deferred transaction that read first could not
                # upgrade while another process writes (SQLITE_BUSY without waiting).
                db.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.rollback()
                raise
            db.commit()

    @contextmanager
    def _snapshot(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as db:
            if db.dialect.name == "sqlite":
                db.exec_driver_sql("BEGIN")  # reads of one transaction share one state
            else:
                db.execution_options(isolation_level="REPEATABLE READ")
            try:
                yield db
            finally:
                db.rollback()


def _lock_head(db: sa.Connection) -> Head:
    if db.dialect.name == "sqlite":
        # Inside a caller's transaction: writing the head takes the write lock (and waits for
        # it) before the head is read.
        db.execute(head_table.update().where(head_table.c.id == 1).values(id=1))
        row = db.execute(sa.select(head_table).where(head_table.c.id == 1)).first()
    else:
        row = db.execute(
            sa.select(head_table).where(head_table.c.id == 1).with_for_update()
        ).first()
    if row is None:
        raise AuditError("the audit head row is missing: run `pantau audit verify`")
    return Head(last_id=int(row.last_id), last_hash=str(row.last_hash))


def _read_head(db: sa.Connection) -> Head | None:
    row = db.execute(sa.select(head_table).where(head_table.c.id == 1)).first()
    return Head(last_id=int(row.last_id), last_hash=str(row.last_hash)) if row else None


def _stream(db: sa.Connection) -> Iterator[AuditRecord]:
    for row in db.execute(audit_table.select().order_by(audit_table.c.id)):
        yield _record(row)


def _record(row: sa.Row[Any]) -> AuditRecord:
    m = row._mapping
    return AuditRecord(
        id=int(m["id"]),
        at_ns=int(m["at_ns"]),
        event=str(m["event"]),
        actor=str(m["actor"]),
        target=str(m["target"]),
        details=str(m["details"]),
        prev_hash=str(m["prev_hash"]),
        hash=str(m["hash"]),
    )
