"""Every remediation action, manual or automatic, in the state database: who or what asked,
which problem it answered, and what became of it (the agent's answer, read back from InfluxDB).
Each action is appended to the audit trail in the same transaction as its row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cloud.audit import AuditEvent, AuditTrail
from cloud.statedb import create_tables, make_engine
from pantau.core.commands import Command

metadata = sa.MetaData()
actions_table = sa.Table(
    "remediation_actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("nonce", sa.String(32), nullable=False, unique=True),
    sa.Column("problem_id", sa.Integer, nullable=True, index=True),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("district", sa.String(64), nullable=False),
    sa.Column("camera", sa.String(64), nullable=False, index=True),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("trigger", sa.String(80), nullable=False),
    sa.Column("issued_ns", sa.BigInteger, nullable=False, index=True),
    sa.Column("result", sa.String(20), nullable=True),  # done/failed/refused; NULL: no answer yet
    sa.Column("up_after", sa.Boolean, nullable=True),
    sa.Column("recovery_s", sa.Float, nullable=True),
    sa.Column("answered_ns", sa.BigInteger, nullable=True),
    sa.Column("detail", sa.String(200), nullable=True),
)


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One action sent, and its outcome once the agent answered."""

    id: int
    nonce: str
    problem_id: int | None
    site: str
    district: str
    camera: str
    action: str
    trigger: str
    issued_ns: int
    result: str | None
    up_after: bool | None
    recovery_s: float | None
    answered_ns: int | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """An agent's answer to one command (a ``remediation`` point)."""

    nonce: str
    result: str
    up_after: bool | None
    recovery_s: float | None
    answered_ns: int
    detail: str | None = None


class ActionLog:
    """The ``remediation_actions`` table (SQLite file or PostgreSQL by URL)."""

    def __init__(self, url: str) -> None:
        self._engine = make_engine(url)
        create_tables(self._engine, metadata)
        self.audit = AuditTrail(self._engine)

    def close(self) -> None:
        """Release connections."""
        self._engine.dispose()

    def record(self, command: Command, *, district: str) -> ActionRecord:
        """Store a sent command and append it to the audit trail, in one transaction."""
        values = {
            "nonce": command.nonce,
            "problem_id": command.problem,
            "site": command.site,
            "district": district,
            "camera": command.device,
            "action": command.action.value,
            "trigger": command.trigger,
            "issued_ns": command.issued_ns,
        }
        with self._engine.begin() as db:
            inserted = db.execute(actions_table.insert().values(**values))
            new_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
            actor = command.trigger.removeprefix("user:")
            target = f"camera:{command.site}/{command.device}"
            self.audit.append_in(db, AuditEvent.REMEDIATION, actor, target, values)
            row = db.execute(actions_table.select().where(actions_table.c.id == new_id)).one()
        return _record(row)

    def settle(self, outcome: Outcome) -> bool:
        """Store an answer against its command; False if unknown or already answered."""
        table = actions_table
        with self._engine.begin() as db:
            done = db.execute(
                table.update()
                .where(table.c.nonce == outcome.nonce, table.c.result.is_(None))
                .values(
                    result=outcome.result,
                    up_after=outcome.up_after,
                    recovery_s=outcome.recovery_s,
                    answered_ns=outcome.answered_ns,
                    detail=outcome.detail,
                )
            )
        return bool(done.rowcount)

    def since(self, since_ns: int, *, site: str | None = None) -> list[ActionRecord]:
        """Actions issued at or after ``since_ns`` (of one site, or all), oldest first."""
        query = actions_table.select().where(actions_table.c.issued_ns >= since_ns)
        if site is not None:
            query = query.where(actions_table.c.site == site)
        with self._engine.connect() as db:
            return [_record(r) for r in db.execute(query.order_by(actions_table.c.issued_ns))]

    def of_problem(self, problem_id: int) -> list[ActionRecord]:
        """A problem's actions, oldest first (its history beside the acknowledgement)."""
        query = (
            actions_table.select()
            .where(actions_table.c.problem_id == problem_id)
            .order_by(actions_table.c.issued_ns)
        )
        with self._engine.connect() as db:
            return [_record(r) for r in db.execute(query)]

    def unanswered(self) -> list[ActionRecord]:
        """Actions still waiting for the agent's answer."""
        query = actions_table.select().where(actions_table.c.result.is_(None))
        with self._engine.connect() as db:
            return [_record(r) for r in db.execute(query)]


def _record(row: sa.Row[Any]) -> ActionRecord:
    m = row._mapping
    return ActionRecord(
        id=int(m["id"]),
        nonce=str(m["nonce"]),
        problem_id=m["problem_id"],
        site=str(m["site"]),
        district=str(m["district"]),
        camera=str(m["camera"]),
        action=str(m["action"]),
        trigger=str(m["trigger"]),
        issued_ns=int(m["issued_ns"]),
        result=m["result"],
        up_after=m["up_after"],
        recovery_s=m["recovery_s"],
        answered_ns=m["answered_ns"],
        detail=m["detail"],
    )
