"""The state database: maintenance windows (SQLite file by default, PostgreSQL by URL)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from cloud.statedb import make_engine

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
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Maintenance:
    """A stored maintenance window."""

    id: int
    site: str | None
    district: str | None
    camera: str | None
    start: dt.datetime
    end: dt.datetime
    reason: str
    created_by: str
    created_at: dt.datetime


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands datetimes back naive; they were stored as UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class StateStore:
    """Maintenance windows in a SQL database shared by every API instance."""

    def __init__(self, url: str) -> None:
        self._engine = make_engine(url)
        _metadata.create_all(self._engine)

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
    ) -> Maintenance:
        """Store a window and return it with its id."""
        now = dt.datetime.now(dt.UTC)
        with self._engine.begin() as db:
            new_id = db.execute(
                maintenance_table.insert().values(
                    site=site,
                    district=district,
                    camera=camera,
                    start=start.astimezone(dt.UTC),
                    end=end.astimezone(dt.UTC),
                    reason=reason,
                    created_by=created_by,
                    created_at=now,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        found = self.get(int(new_id))
        assert found is not None
        return found

    def get(self, window_id: int) -> Maintenance | None:
        """One window by id."""
        with self._engine.connect() as db:
            row = db.execute(
                maintenance_table.select().where(maintenance_table.c.id == window_id)
            ).first()
        return self._from_row(row) if row else None

    def list(
        self, *, site: str | None = None, overlapping: tuple[dt.datetime, dt.datetime] | None = None
    ) -> list[Maintenance]:
        """Windows, optionally of one site and/or overlapping a period, oldest first."""
        query = maintenance_table.select().order_by(maintenance_table.c.start)
        if site is not None:
            query = query.where(
                sa.or_(maintenance_table.c.site == site, maintenance_table.c.site.is_(None))
            )
        if overlapping is not None:
            start, end = overlapping
            query = query.where(
                maintenance_table.c.start < end.astimezone(dt.UTC),
                maintenance_table.c.end > start.astimezone(dt.UTC),
            )
        with self._engine.connect() as db:
            return [self._from_row(row) for row in db.execute(query)]

    def delete(self, window_id: int) -> bool:
        """Delete a window; False if there was none."""
        with self._engine.begin() as db:
            result = db.execute(
                maintenance_table.delete().where(maintenance_table.c.id == window_id)
            )
        return bool(result.rowcount)

    @staticmethod
    def _from_row(row: sa.Row[tuple[object, ...]]) -> Maintenance:
        m = row._mapping
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
        )
