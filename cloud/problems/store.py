"""Problems and their notification outbox in the state database.

Two evaluators may run at once (failover, or by mistake): the unique ``open_key`` column holds the
key of every unresolved problem, so only one of them can open or reopen it, and a notification
is queued in the same transaction as the state change it announces, exactly once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from cloud.audit import AuditEvent, AuditTrail
from cloud.problems.config import Severity
from cloud.problems.model import Event, Observation, Problem, ProblemState
from cloud.problems.tables import metadata, outbox_table, problems_table
from cloud.statedb import create_tables, make_engine

_UNRESOLVED = (ProblemState.OPEN.value, ProblemState.ACKNOWLEDGED.value)


class ProblemStoreError(Exception):
    """Root of the problem store's errors."""


class ProblemNotFoundError(ProblemStoreError):
    """No problem has that id."""


class ProblemResolvedError(ProblemStoreError):
    """The problem is already resolved; there is nothing to acknowledge."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A queued notification claimed by one notifier."""

    id: int
    problem_id: int
    target: str
    event: Event
    payload: dict[str, Any]
    created_ns: int
    attempts: int


def _now_ns() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1e9)


class ProblemStore:
    """Problems and outbox in a SQL database (SQLite file by default, PostgreSQL by URL)."""

    def __init__(self, url: str) -> None:
        self._engine = make_engine(url)
        create_tables(self._engine, metadata)
        self.audit = AuditTrail(self._engine)

    def close(self) -> None:
        """Release connections."""
        self._engine.dispose()

    # --- problems -----------------------------------------------------------------------------

    def get(self, problem_id: int) -> Problem | None:
        """One problem by id."""
        with self._engine.connect() as db:
            row = db.execute(
                problems_table.select().where(problems_table.c.id == problem_id)
            ).first()
        return _problem(row) if row else None

    def find(
        self,
        *,
        state: ProblemState | None = None,
        limit: int = 500,
        districts: Iterable[str] | None = None,
    ) -> list[Problem]:
        """Problems (of ``districts``, or all), most urgent first (severity, then oldest)."""
        query = problems_table.select()
        if state is not None:
            query = query.where(problems_table.c.state == state.value)
        if districts is not None:
            query = query.where(problems_table.c.district.in_(sorted(districts)))
        query = query.order_by(problems_table.c.id.desc()).limit(limit)
        with self._engine.connect() as db:
            found = [_problem(row) for row in db.execute(query)]
        return sorted(
            found, key=lambda p: (p.state is ProblemState.RESOLVED, p.severity.rank, p.since_ns)
        )

    def unresolved(self) -> dict[str, Problem]:
        """Open and acknowledged problems by key."""
        query = problems_table.select().where(problems_table.c.state.in_(_UNRESOLVED))
        with self._engine.connect() as db:
            return {p.key: p for p in (_problem(row) for row in db.execute(query))}

    def resolved_since(self, keys: Iterable[str], since_ns: int) -> dict[str, Problem]:
        """The latest problem of each key resolved at or after ``since_ns``."""
        wanted = list(keys)
        if not wanted:
            return {}
        query = (
            problems_table.select()
            .where(
                problems_table.c.key.in_(wanted),
                problems_table.c.state == ProblemState.RESOLVED.value,
                problems_table.c.resolved_ns >= since_ns,
            )
            .order_by(problems_table.c.resolved_ns)
        )
        with self._engine.connect() as db:
            return {p.key: p for p in (_problem(row) for row in db.execute(query))}

    def open(self, obs: Observation, *, now_ns: int, in_maintenance: bool) -> Problem | None:
        """Open a problem; None if another evaluator already holds this key unresolved."""
        values = {
            "key": obs.key,
            "open_key": obs.key,
            "state": ProblemState.OPEN.value,
            "opened_ns": now_ns,
            "resolved_ns": None,
            "acknowledged_by": None,
            "acknowledged_ns": None,
            "ack_comment": None,
            "notified_open": False,
            "reopen_count": 0,
            **_observed(obs, now_ns, in_maintenance),
        }
        try:
            with self._engine.begin() as db:
                new_id = db.execute(problems_table.insert().values(**values)).inserted_primary_key[
                    0
                ]  # type: ignore[index]
        except sa.exc.IntegrityError:
            return None
        return self.get(int(new_id))

    def reopen(
        self, problem_id: int, obs: Observation, *, now_ns: int, in_maintenance: bool
    ) -> Problem | None:
        """Reopen a resolved problem; None if another evaluator got there first."""
        table = problems_table
        try:
            with self._engine.begin() as db:
                result = db.execute(
                    table.update()
                    .where(table.c.id == problem_id, table.c.state == ProblemState.RESOLVED.value)
                    .values(
                        open_key=obs.key,
                        state=ProblemState.OPEN.value,
                        resolved_ns=None,
                        acknowledged_by=None,
                        acknowledged_ns=None,
                        ack_comment=None,
                        notified_open=False,
                        reopen_count=table.c.reopen_count + 1,
                        **_observed(obs, now_ns, in_maintenance, keep_since=True),
                    )
                )
        except sa.exc.IntegrityError:
            return None
        return self.get(problem_id) if result.rowcount else None

    def refresh(
        self, problem: Problem, obs: Observation | None, *, now_ns: int, in_maintenance: bool
    ) -> None:
        """Record the latest reading of an unresolved problem's condition."""
        values: dict[str, Any] = {"in_maintenance": in_maintenance}
        if obs is not None:
            values.update(_observed(obs, now_ns, in_maintenance, keep_since=True))
            if obs.rule == "site" and not obs.details.get("cameras"):
                # Cameras of a long-lost site age out of the lookback: keep the last list.
                values.pop("details")
        with self._engine.begin() as db:
            db.execute(
                problems_table.update()
                .where(problems_table.c.id == problem.id, problems_table.c.state.in_(_UNRESOLVED))
                .values(**values)
            )

    def resolve(self, problem_id: int, *, now_ns: int, targets: Iterable[str]) -> bool:
        """Resolve; queue a 'resolve' message if its opening was announced, it was not
        acknowledged and it is not in maintenance. False if it was not unresolved."""
        table = problems_table
        with self._engine.begin() as db:
            result = db.execute(
                table.update()
                .where(table.c.id == problem_id, table.c.state.in_(_UNRESOLVED))
                .values(state=ProblemState.RESOLVED.value, open_key=None, resolved_ns=now_ns)
            )
            if not result.rowcount:
                return False
            row = db.execute(table.select().where(table.c.id == problem_id)).one()
            problem = _problem(row)
            if (
                problem.notified_open
                and problem.acknowledged_by is None
                and not problem.in_maintenance
            ):
                _enqueue(db, problem, Event.RESOLVE, targets, now_ns)
        return True

    def announce_open(self, problem_id: int, *, now_ns: int, targets: Iterable[str]) -> bool:
        """Queue the 'open' message once: only for an open (unacknowledged) problem outside
        maintenance that was not announced yet."""
        table = problems_table
        with self._engine.begin() as db:
            result = db.execute(
                table.update()
                .where(
                    table.c.id == problem_id,
                    table.c.state == ProblemState.OPEN.value,
                    table.c.in_maintenance.is_(False),
                    table.c.notified_open.is_(False),
                )
                .values(notified_open=True)
            )
            if not result.rowcount:
                return False
            row = db.execute(table.select().where(table.c.id == problem_id)).one()
            _enqueue(db, _problem(row), Event.OPEN, targets, now_ns)
        return True

    def acknowledge(self, problem_id: int, *, by: str, comment: str | None) -> Problem:
        """Mark acknowledged by a person (in the audit trail, same transaction); no further
        messages are sent for it."""
        table = problems_table
        with self._engine.begin() as db:
            row = db.execute(table.select().where(table.c.id == problem_id)).first()
            if row is None:
                raise ProblemNotFoundError(f"no problem {problem_id}")
            if row._mapping["state"] == ProblemState.RESOLVED.value:
                raise ProblemResolvedError(f"problem {problem_id} is already resolved")
            ack = {"acknowledged_by": by, "acknowledged_ns": _now_ns(), "ack_comment": comment}
            db.execute(
                table.update()
                .where(table.c.id == problem_id)
                .values(state=ProblemState.ACKNOWLEDGED.value, **ack)
            )
            about = {k: row._mapping[k] for k in ("key", "district", "title")}
            self.audit.append_in(db, AuditEvent.ACK, by, f"problem:{problem_id}", about | ack)
        return self.get(problem_id) or _problem(row)

    # --- outbox -------------------------------------------------------------------------------

    def claim(
        self, targets: Iterable[str], *, now_ns: int, lease_ns: int, limit: int = 50
    ) -> list[OutboxItem]:
        """Take due messages for these targets; a claim lapses after ``lease_ns`` (crash)."""
        table = outbox_table
        due = (
            table.select()
            .where(
                table.c.target.in_(list(targets)),
                table.c.sent_ns.is_(None),
                table.c.gave_up.is_(False),
                table.c.next_attempt_ns <= now_ns,
                sa.or_(table.c.claimed_until_ns.is_(None), table.c.claimed_until_ns < now_ns),
            )
            .order_by(table.c.id)
            .limit(limit)
        )
        claimed = []
        with self._engine.begin() as db:
            for row in db.execute(due).all():
                m = row._mapping
                taken = db.execute(
                    table.update()
                    .where(
                        table.c.id == m["id"],
                        sa.or_(
                            table.c.claimed_until_ns.is_(None), table.c.claimed_until_ns < now_ns
                        ),
                    )
                    .values(claimed_until_ns=now_ns + lease_ns)
                )
                if taken.rowcount:
                    claimed.append(
                        OutboxItem(
                            id=m["id"],
                            problem_id=m["problem_id"],
                            target=m["target"],
                            event=Event(m["event"]),
                            payload=orjson.loads(m["payload"]),
                            created_ns=m["created_ns"],
                            attempts=m["attempts"],
                        )
                    )
        return claimed

    def delivered(self, item_id: int, *, now_ns: int) -> None:
        """The target accepted the message."""
        self._update_outbox(item_id, sent_ns=now_ns, attempts=outbox_table.c.attempts + 1)

    def retry_later(self, item_id: int, *, next_attempt_ns: int, error: str) -> None:
        """Delivery failed; try again at ``next_attempt_ns``."""
        self._update_outbox(
            item_id,
            next_attempt_ns=next_attempt_ns,
            claimed_until_ns=None,
            attempts=outbox_table.c.attempts + 1,
            last_error=error[:500],
        )

    def give_up(self, item_id: int, *, error: str) -> None:
        """Delivery failed for good (permanent error, or too old)."""
        self._update_outbox(
            item_id, gave_up=True, attempts=outbox_table.c.attempts + 1, last_error=error[:500]
        )

    def outbox(self) -> list[dict[str, Any]]:
        """Every queued message with its delivery state, oldest first (for tests and tools)."""
        with self._engine.connect() as db:
            rows = db.execute(outbox_table.select().order_by(outbox_table.c.id)).all()
        return [dict(row._mapping) for row in rows]

    def _update_outbox(self, item_id: int, **values: Any) -> None:
        with self._engine.begin() as db:
            db.execute(outbox_table.update().where(outbox_table.c.id == item_id).values(**values))


def _observed(
    obs: Observation, now_ns: int, in_maintenance: bool, *, keep_since: bool = False
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "rule": obs.rule,
        "title": obs.title,
        "severity": obs.severity.value,
        "site": obs.site,
        "district": obs.district,
        "camera": obs.camera,
        "subject": obs.subject,
        "last_bad_ns": now_ns,
        "cause": obs.cause[:300],
        "details": orjson.dumps(obs.details).decode(),
        "in_maintenance": in_maintenance,
    }
    if not keep_since:
        values["since_ns"] = obs.since_ns if obs.since_ns is not None else now_ns
    return values


def _enqueue(
    db: sa.Connection, problem: Problem, event: Event, targets: Iterable[str], now_ns: int
) -> None:
    payload = orjson.dumps({"event": event.value, "problem": problem.as_message()}).decode()
    for target in targets:
        db.execute(
            outbox_table.insert().values(
                problem_id=problem.id,
                target=target,
                event=event.value,
                payload=payload,
                created_ns=now_ns,
                attempts=0,
                next_attempt_ns=now_ns,
                claimed_until_ns=None,
                sent_ns=None,
                gave_up=False,
                last_error=None,
            )
        )


def _problem(row: sa.Row[Any]) -> Problem:
    m = row._mapping
    return Problem(
        id=int(m["id"]),
        key=m["key"],
        rule=m["rule"],
        title=m["title"],
        severity=Severity(m["severity"]),
        state=ProblemState(m["state"]),
        site=m["site"],
        district=m["district"],
        camera=m["camera"],
        subject=m["subject"],
        since_ns=int(m["since_ns"]),
        opened_ns=int(m["opened_ns"]),
        last_bad_ns=int(m["last_bad_ns"]),
        resolved_ns=m["resolved_ns"],
        cause=m["cause"],
        details=orjson.loads(m["details"]),
        acknowledged_by=m["acknowledged_by"],
        acknowledged_ns=m["acknowledged_ns"],
        ack_comment=m["ack_comment"],
        in_maintenance=bool(m["in_maintenance"]),
        notified_open=bool(m["notified_open"]),
        reopen_count=int(m["reopen_count"]),
    )
