"""Two processes appending to one audit trail at once keep one chain: no fork, no lost row,
no gap (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloud.audit import AuditTrail

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.services)]
APPENDS = 60  # per process; enough that unserialized appends collide (measured: they do)

WRITER = """
import sys, time
from cloud.audit import AuditEvent, AuditTrail
url, name, count, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
trail = AuditTrail(url)
while time.time() < start_at:  # both processes start appending at the same instant
    time.sleep(0.001)
for n in range(count):
    trail.append(AuditEvent.ACK, actor=name, target=f"problem:{n}", details={"n": n})
    time.sleep(0.002)  # an API instance does other work between writes
trail.close()
"""


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh state database: a SQLite file or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.sqlite'}"
    found: str = request.getfixturevalue("state_db")
    return found


def test_two_processes_append_one_chain(url: str) -> None:
    """Two writer processes (separate engines) append 60 rows each at the same time: 120 rows
    numbered 1-120, each chaining the one before, both writers interleaved, verify passes."""
    AuditTrail(url).close()  # tables and head exist before the race
    start_at = time.time() + 2.0
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, name, str(APPENDS), str(start_at)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("api_a", "api_b")
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err[-2000:]
    trail = AuditTrail(url)
    try:
        records = trail.records()
        verdict = trail.verify()
    finally:
        trail.close()
    assert verdict.ok, verdict.problem
    assert [r.id for r in records] == list(range(1, 2 * APPENDS + 1))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    assert len({r.prev_hash for r in records}) == len(records)  # no two rows share a parent
    actors = [r.actor for r in records]
    assert actors.count("api_a") == actors.count("api_b") == APPENDS
    switches = sum(1 for a, b in itertools.pairwise(actors) if a != b)
    assert switches >= 2, "the writers did not overlap; the test proved nothing"
