"""Maintenance windows in the state database (SQLite file by default, PostgreSQL by URL).

A window counts (its seconds become maintenance, not downtime) only once it is approved and
while it is not cancelled. Windows are never deleted: a cancellation is recorded on the window.
Every write appends to the audit trail in the same transaction. Who may do what is decided by
``cloud.maintenance_rules``; this module stores.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cloud.audit import AuditEvent, AuditTrail
from cloud.statedb import create_tables, lock_schema, make_engine

log = logging.getLogger(__name__)

_metadata = sa.MetaData()
maintenance_table = sa.Table(
    "maintenance",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("site", sa.String(64), nullable=True),
    sa.Column("district", sa.String(64), nullable=True),
    sa.Column("camera", sa.String(64), nullable=True),
    sa.Column("start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),  # who requested it
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),  # when it was entered
    # Added by the upgrade to approvals (see _migrate): windows stored before are 'legacy'.
    sa.Column("approval", sa.String(20), nullable=True),
    sa.Column("approved_by", sa.String(100), nullable=True),
    sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("retroactive", sa.Boolean, nullable=True),
    sa.Column("retro_reason", sa.String(500), nullable=True),
    sa.Column("cancelled_by", sa.String(100), nullable=True),
    sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("cancel_reason", sa.String(500), nullable=True),
    # Added for e-government services: a window of one service (its district: one vantage).
    sa.Column("service", sa.String(64), nullable=True),
)
ADDED_COLUMNS = (
    "approval",
    "approved_by",
    "approved_at",
    "retroactive",
    "retro_reason",
    "cancelled_by",
    "cancelled_at",
    "cancel_reason",
    "service",
)
LEGACY = "legacy"  # approved_by of windows entered before approvals existed
POLICY = "policy"  # approved_by of windows entered far enough ahead (MaintenancePolicy)


class Approval(enum.StrEnum):
    """How a window came to count (or that it does not yet)."""

    PENDING = "pending"  # requested by a technician: waits for a supervisor
    SUPERVISOR = "supervisor"  # approved by a supervisor (their own window: at once)
    ADVANCE = "advance"  # entered at least the policy's hours ahead of its start
    LEGACY = "legacy"  # stored before approvals existed


class WindowKind(enum.StrEnum):
    """Which windows a listing returns: the cameras' (site, district, camera), the services'
    (``service`` set) or all. Camera availability and problems never see a service window."""

    CAMERAS = "cameras"
    SERVICES = "services"
    ALL = "all"


class WindowStatus(enum.StrEnum):
    """Where a window stands."""

    REQUESTED = "requested"
    APPROVED = "approved"
    CANCELLED = "cancelled"


class MaintenanceStoreError(Exception):
    """Root of the maintenance store's errors."""


class WindowStateError(MaintenanceStoreError):
    """The window is not in a state that allows this (already approved, cancelled)."""


@dataclass(frozen=True)
class Maintenance:
    """A stored maintenance window and its record."""

    id: int
    site: str | None
    district: str | None
    camera: str | None
    start: dt.datetime
    end: dt.datetime
    reason: str
    created_by: str
    created_at: dt.datetime
    approval: Approval = Approval.LEGACY
    approved_by: str | None = None
    approved_at: dt.datetime | None = None
    retroactive: bool = False
    retro_reason: str | None = None
    cancelled_by: str | None = None
    cancelled_at: dt.datetime | None = None
    cancel_reason: str | None = None
    service: str | None = None  # a service's window (``district``: only that vantage point)

    @property
    def status(self) -> WindowStatus:
        """Requested, approved or cancelled."""
        if self.cancelled_at is not None:
            return WindowStatus.CANCELLED
        if self.approved_at is not None:
            return WindowStatus.APPROVED
        return WindowStatus.REQUESTED

    @property
    def counts(self) -> bool:
        """True if its seconds count as maintenance (approved and not cancelled)."""
        return self.status is WindowStatus.APPROVED


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands datetimes back naive; they were stored as UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class StateStore:
    """Maintenance windows in a SQL database shared by every API instance."""

    def __init__(self, url: str) -> None:
        self._engine = make_engine(url)
        create_tables(self._engine, _metadata)
        _migrate(self._engine)
        self.audit = AuditTrail(self._engine)

    @property
    def engine(self) -> sa.Engine:
        """The state database (other records, e.g. remediation, read it for the report)."""
        return self._engine

    def close(self) -> None:
        """Release connections."""
        self._engine.dispose()

    def add(
        self,
        *,
        site: str | None,
        district: str | None,
        camera: str | None,
        start: dt.datetime,
        end: dt.datetime,
        reason: str,
        created_by: str,
        approval: Approval = Approval.SUPERVISOR,
        retroactive: bool = False,
        retro_reason: str | None = None,
        service: str | None = None,
        now: dt.datetime | None = None,
    ) -> Maintenance:
        """Store a window, approved by its creator unless ``approval`` says otherwise, and
        record it in the audit trail. Rules on who may enter what: ``maintenance_rules``."""
        now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        approved_by = {Approval.SUPERVISOR: created_by, Approval.ADVANCE: POLICY}.get(approval)
        values: dict[str, Any] = {
            "site": site,
            "district": district,
            "camera": camera,
            "start": start.astimezone(dt.UTC),
            "end": end.astimezone(dt.UTC),
            "reason": reason,
            "created_by": created_by,
            "created_at": now,
            "approval": approval.value,
            "approved_by": approved_by,
            "approved_at": None if approval is Approval.PENDING else now,
            "retroactive": retroactive,
            "retro_reason": retro_reason,
            "service": service,
        }
        with self._engine.begin() as db:
            new_id = int(
                db.execute(maintenance_table.insert().values(**values)).inserted_primary_key[0]  # type: ignore[index]
            )
            details = _window_details(values) | {"approval": approval.value}
            self.audit.append_in(
                db, AuditEvent.MAINTENANCE_REQUESTED, created_by, f"maintenance:{new_id}", details
            )
            if approved_by is not None:
                self.audit.append_in(
                    db,
                    AuditEvent.MAINTENANCE_APPROVED,
                    approved_by,
                    f"maintenance:{new_id}",
                    {"approval": approval.value},
                )
        return self._must(new_id)

    def approve(self, window_id: int, *, by: str, now: dt.datetime | None = None) -> Maintenance:
        """A supervisor approves a requested window: from now on it counts."""
        now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        table = maintenance_table
        with self._engine.begin() as db:
            done = db.execute(
                table.update()
                .where(
                    table.c.id == window_id,
                    table.c.approved_at.is_(None),
                    table.c.cancelled_at.is_(None),
                )
                .values(approval=Approval.SUPERVISOR.value, approved_by=by, approved_at=now)
            )
            if not done.rowcount:
                raise WindowStateError(self._why_not(db, window_id, "approve"))
            self.audit.append_in(
                db,
                AuditEvent.MAINTENANCE_APPROVED,
                by,
                f"maintenance:{window_id}",
                {"approval": Approval.SUPERVISOR.value},
            )
        return self._must(window_id)

    def cancel(
        self, window_id: int, *, by: str, reason: str | None, now: dt.datetime | None = None
    ) -> Maintenance:
        """Cancel a window: it stays in the record, marked cancelled, and no longer counts."""
        now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        table = maintenance_table
        with self._engine.begin() as db:
            done = db.execute(
                table.update()
                .where(table.c.id == window_id, table.c.cancelled_at.is_(None))
                .values(cancelled_by=by, cancelled_at=now, cancel_reason=reason)
            )
            if not done.rowcount:
                raise WindowStateError(self._why_not(db, window_id, "cancel"))
            self.audit.append_in(
                db,
                AuditEvent.MAINTENANCE_CANCELLED,
                by,
                f"maintenance:{window_id}",
                {"reason": reason},
            )
        return self._must(window_id)

    def get(self, window_id: int) -> Maintenance | None:
        """One window by id."""
        with self._engine.connect() as db:
            row = db.execute(
                maintenance_table.select().where(maintenance_table.c.id == window_id)
            ).first()
        return _from_row(row) if row else None

    def list(
        self,
        *,
        site: str | None = None,
        overlapping: tuple[dt.datetime, dt.datetime] | None = None,
        counting_only: bool = False,
        kind: WindowKind = WindowKind.CAMERAS,
    ) -> list[Maintenance]:
        """Windows of ``kind`` (cameras' by default), optionally of one site and/or overlapping
        a period (only those that count with ``counting_only``), oldest first."""
        table = maintenance_table
        query = table.select().order_by(table.c.start, table.c.id)
        if site is not None:
            query = query.where(sa.or_(table.c.site == site, table.c.site.is_(None)))
        if overlapping is not None:
            start, end = overlapping
            query = query.where(
                table.c.start < end.astimezone(dt.UTC), table.c.end > start.astimezone(dt.UTC)
            )
        if kind is WindowKind.CAMERAS:
            query = query.where(table.c.service.is_(None))
        elif kind is WindowKind.SERVICES:
            query = query.where(table.c.service.is_not(None))
        if counting_only:
            query = query.where(table.c.approved_at.is_not(None), table.c.cancelled_at.is_(None))
        with self._engine.connect() as db:
            return [_from_row(row) for row in db.execute(query)]

    def _must(self, window_id: int) -> Maintenance:
        found = self.get(window_id)
        if found is None:
            raise MaintenanceStoreError(f"no maintenance window {window_id}")
        return found

    @staticmethod
    def _why_not(db: sa.Connection, window_id: int, action: str) -> str:
        row = db.execute(
            maintenance_table.select().where(maintenance_table.c.id == window_id)
        ).first()
        if row is None:
            return f"no maintenance window {window_id}"
        status = _from_row(row).status
        return f"cannot {action} maintenance window {window_id}: it is already {status.value}"


def _window_details(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "site": values["site"],
        "district": values["district"],
        "camera": values["camera"],
        "start": values["start"].isoformat(),
        "end": values["end"].isoformat(),
        "reason": values["reason"],
        "retroactive": values["retroactive"],
        "retro_reason": values["retro_reason"],
        **({"service": values["service"]} if values["service"] is not None else {}),
    }


def _migrate(engine: sa.Engine) -> None:
    """Add the approval columns to a table made before them; its windows become approved by
    'legacy' at their entry time (they counted then, so they keep counting)."""
    ddl = sa.schema.CreateColumn
    with engine.begin() as db:
        lock_schema(db)  # another process may be adding the same columns right now
        present = {c["name"] for c in sa.inspect(db).get_columns("maintenance")}
        missing = [name for name in ADDED_COLUMNS if name not in present]
        if not missing:
            return
        for name in missing:
            column = maintenance_table.c[name]
            spec = ddl(column).compile(dialect=engine.dialect)
            db.exec_driver_sql(f"ALTER TABLE maintenance ADD COLUMN {spec}")
        if "approval" in missing:
            db.execute(
                maintenance_table.update()
                .where(maintenance_table.c.approval.is_(None))
                .values(
                    approval=Approval.LEGACY.value,
                    approved_by=LEGACY,
                    approved_at=maintenance_table.c.created_at,
                    retroactive=False,
                )
            )
    log.info("maintenance table upgraded: added %s; old windows approved by 'legacy'", missing)


def _from_row(row: sa.Row[Any]) -> Maintenance:
    m = row._mapping

    def when(name: str) -> dt.datetime | None:
        return _utc(m[name]) if m[name] is not None else None

    return Maintenance(
        id=int(m["id"]),
        site=m["site"],
        district=m["district"],
        camera=m["camera"],
        start=_utc(m["start"]),
        end=_utc(m["end"]),
        reason=m["reason"],
        created_by=m["created_by"],
        created_at=_utc(m["created_at"]),
        approval=Approval(m["approval"] or Approval.LEGACY.value),
        approved_by=m["approved_by"],
        approved_at=when("approved_at"),
        retroactive=bool(m["retroactive"]),
        retro_reason=m["retro_reason"],
        cancelled_by=m["cancelled_by"],
        cancelled_at=when("cancelled_at"),
        cancel_reason=m["cancel_reason"],
        service=m["service"],
    )
