"""Several processes opening a fresh state database at the same instant (an API and a
problems service started together by systemd after a reboot) all come up: creating the tables
takes turns instead of failing on PostgreSQL's catalogue."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from cloud.maintenance import ADDED_COLUMNS
from tests.test_maintenance_approval import old_maintenance_table

OPENER = """
import sys, time
from cloud.audit import AuditTrail
from cloud.auth.identity import Identity
from cloud.maintenance import StateStore
from cloud.problems.store import ProblemStore
from cloud.remediation.history import ActionLog
url, start_at = sys.argv[1], float(sys.argv[2])
while time.time() < start_at:
    time.sleep(0.001)
for store in (ProblemStore, StateStore, AuditTrail, ActionLog):
    store(url).close()
Identity(url)
"""
OPENERS = 4


def open_at_once(state_db: str) -> None:
    """Four processes open every store of ``state_db`` at the same instant; all exit 0."""
    start_at = time.time() + 3.0  # every interpreter has imported before the instant
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, state_db, str(start_at)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(OPENERS)
    ]
    errors = [opener.communicate(timeout=120)[1] for opener in openers]
    assert [o.returncode for o in openers] == [0] * OPENERS, [e[-1500:] for e in errors]


@pytest.mark.services
def test_processes_opening_a_fresh_database_at_once_all_start(state_db: str) -> None:
    """Four processes create every state table at the same instant: all exit 0, tables exist."""
    open_at_once(state_db)
    engine = sa.create_engine(state_db.replace("postgresql://", "postgresql+psycopg://"))
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"problems", "audit_log", "remediation_actions", "maintenance"} <= tables, tables


@pytest.mark.services
def test_processes_upgrading_an_old_table_at_once_all_start(state_db: str) -> None:
    """A maintenance table of the shape before approvals and services: four processes add the
    missing columns at the same instant, all start, and the old window becomes 'legacy'."""
    engine = sa.create_engine(state_db.replace("postgresql://", "postgresql+psycopg://"))
    table = old_maintenance_table()
    now = dt.datetime.now(dt.UTC)
    try:
        table.metadata.create_all(engine)
        with engine.begin() as db:
            db.execute(
                table.insert().values(
                    site="s1", start=now, end=now + dt.timedelta(hours=1), reason="old",
                    created_by="ops", created_at=now - dt.timedelta(days=40),
                )
            )  # fmt: skip
        open_at_once(state_db)
        with engine.connect() as db:
            columns = {c["name"] for c in sa.inspect(db).get_columns("maintenance")}
            approvals = db.execute(sa.text("SELECT approved_by FROM maintenance")).scalars().all()
    finally:
        engine.dispose()
    assert set(ADDED_COLUMNS) <= columns, columns
    assert approvals == ["legacy"]
