"""The audit trail: rows chain by SHA-256; editing, deleting or inserting a row in the database
makes `pantau audit verify` fail naming the row (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from cloud.audit import AuditEvent, AuditTrail
from cloud.audit.chain import GENESIS, row_hash
from cloud.audit.tables import audit_table, head_table
from cloud.statedb import make_engine

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.services)]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh state database: a SQLite file or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.sqlite'}"
    found: str = request.getfixturevalue("state_db")
    return found


def fill(url: str, rows: int = 8) -> AuditTrail:
    """A trail with ``rows`` rows (of several events, with non-ASCII details)."""
    trail = AuditTrail(url)
    events = [AuditEvent.LOGIN, AuditEvent.ACK, AuditEvent.MAINTENANCE_REQUESTED]
    for n in range(rows):
        trail.append(
            events[n % len(events)],
            actor=f"teknisi{n}",
            target=f"problem:{n}",
            details={"comment": "sedang menuju lokasi ✓", "n": n},
        )
    return trail


def pantau_verify(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run `pantau audit verify` as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "pantau", "audit", "verify", "--state", url, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def tamper(url: str, *statements: sa.Executable) -> None:
    """Change the audit table behind the trail's back, as someone with database access."""
    engine = make_engine(url)
    try:
        with engine.begin() as db:
            for statement in statements:
                db.execute(statement)
    finally:
        engine.dispose()


def test_untouched_chain_verifies(url: str) -> None:
    """Eight appended rows chain from the genesis hash; verify exits 0 and prints the head."""
    trail = fill(url)
    records = trail.records()
    trail.close()
    assert [r.id for r in records] == list(range(1, 9))
    assert records[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    result = pantau_verify(url)
    assert result.returncode == 0, result.stderr
    assert f"8 rows chain without a break; head 8:{records[-1].hash}" in result.stdout


def test_edited_row_is_named(url: str) -> None:
    """Changing who acknowledged (row 5) is found at row 5."""
    fill(url).close()
    tamper(url, audit_table.update().where(audit_table.c.id == 5).values(actor="someone_else"))
    result = pantau_verify(url)
    assert result.returncode == 1
    assert "BROKEN at row 5: row 5 edited" in result.stderr


def test_edited_and_rehashed_row_is_named(url: str) -> None:
    """An editor who also recomputes row 3's own hash still breaks row 4's link to it."""
    trail = fill(url)
    row3 = trail.records()[2]
    trail.close()
    forged = row_hash(
        prev_hash=row3.prev_hash,
        at_ns=row3.at_ns,
        event=row3.event,
        actor="not_me",
        target=row3.target,
        details=row3.details,
    )
    tamper(
        url, audit_table.update().where(audit_table.c.id == 3).values(actor="not_me", hash=forged)
    )
    result = pantau_verify(url)
    assert result.returncode == 1
    assert "BROKEN at row 4: row 4 does not chain to row 3" in result.stderr


def test_deleted_row_is_named(url: str) -> None:
    """Deleting row 4 (a window request) is found as row 4 deleted."""
    fill(url).close()
    tamper(url, audit_table.delete().where(audit_table.c.id == 4))
    result = pantau_verify(url)
    assert result.returncode == 1
    assert "BROKEN at row 4: row 4 deleted" in result.stderr


def test_deleted_last_rows_are_named(url: str) -> None:
    """Deleting the newest two rows is found against the head: rows 7-8 deleted."""
    fill(url).close()
    tamper(url, audit_table.delete().where(audit_table.c.id >= 7))
    result = pantau_verify(url)
    assert result.returncode == 1
    assert "BROKEN at row 7: rows 7-8 deleted" in result.stderr


def test_deleted_and_renumbered_row_is_found(url: str) -> None:
    """Deleting row 3 and closing the gap (4 -> 3 ...) breaks the chain at the new row 3."""
    fill(url).close()
    tamper(
        url,
        audit_table.delete().where(audit_table.c.id == 3),
        audit_table.update().where(audit_table.c.id > 3).values(id=audit_table.c.id + 100),
        audit_table.update().where(audit_table.c.id > 100).values(id=audit_table.c.id - 101),
        head_table.update().values(last_id=7),
    )
    result = pantau_verify(url)
    assert result.returncode == 1
    assert "BROKEN at row 3: row 3 does not chain to row 2" in result.stderr


def test_row_inserted_after_head_is_named(url: str) -> None:
    """A row added at the end with a correctly computed hash is still not in the head."""
    trail = fill(url)
    last = trail.records()[-1]
    trail.close()
    values = {"at_ns": last.at_ns + 1, "event": "ack", "actor": "x", "target": "problem:1"}
    digest = row_hash(prev_hash=last.hash, details="{}", **values)  # type: ignore[arg-type]
    tamper(
        url,
        audit_table.insert().values(id=9, details="{}", prev_hash=last.hash, hash=digest, **values),
    )
    result = pantau_verify(url)
    assert result.returncode == 1
    assert "BROKEN at row 9: row 9 inserted after the chain head" in result.stderr


def test_row_inserted_in_the_middle_is_named(url: str) -> None:
    """Making room at 5 and inserting a well-hashed row there: row 6 chains past it."""
    trail = fill(url)
    row4 = trail.records()[3]
    trail.close()
    values = {"at_ns": row4.at_ns + 1, "event": "ack", "actor": "x", "target": "problem:1"}
    digest = row_hash(prev_hash=row4.hash, details="{}", **values)  # type: ignore[arg-type]
    tamper(
        url,
        audit_table.update().where(audit_table.c.id >= 5).values(id=audit_table.c.id + 100),
        audit_table.update().where(audit_table.c.id > 100).values(id=audit_table.c.id - 99),
        audit_table.insert().values(id=5, details="{}", prev_hash=row4.hash, hash=digest, **values),
        head_table.update().values(last_id=9),
    )
    result = pantau_verify(url)
    assert result.returncode == 1
    assert "BROKEN at row 5: row 5 inserted (row 6 chains past it)" in result.stderr


def test_rewritten_tail_is_found_against_a_published_head(url: str) -> None:
    """Rewriting rows 6-8 and the head with fresh hashes passes the chain check but not the
    head the monthly report published (--anchor)."""
    trail = fill(url)
    published = trail.records()[5]  # the head as a report printed it, at row 6
    prev = trail.records()[4].hash
    rewritten = []
    for r in trail.records()[5:]:
        digest = row_hash(
            prev_hash=prev,
            at_ns=r.at_ns,
            event=r.event,
            actor="x",
            target=r.target,
            details=r.details,
        )
        rewritten.append(
            audit_table.update()
            .where(audit_table.c.id == r.id)
            .values(actor="x", prev_hash=prev, hash=digest)
        )
        prev = digest
    trail.close()
    tamper(url, *rewritten, head_table.update().values(last_hash=prev))
    assert pantau_verify(url).returncode == 0  # a full rewrite needs the published head
    result = pantau_verify(url, "--anchor", f"6:{published.hash}")
    assert result.returncode == 1
    assert "BROKEN at row 6: row 6 no longer has the published hash" in result.stderr


def test_append_in_rolls_back_with_its_transaction(url: str) -> None:
    """A row appended inside a transaction that fails is gone with it; the chain stays whole."""
    trail = fill(url, rows=2)
    engine = make_engine(url)

    def failing_write() -> None:
        with engine.begin() as db:
            trail.append_in(db, AuditEvent.ACK, "teknisi", "problem:1")
            raise RuntimeError("the write it records failed")

    try:
        with pytest.raises(RuntimeError):
            failing_write()
    finally:
        engine.dispose()
    assert trail.append(AuditEvent.ACK, "teknisi", "problem:1").id == 3
    assert trail.verify().ok
    trail.close()
