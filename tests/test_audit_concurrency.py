"""Two processes appending to one audit trail at once keep one chain: no fork, no lost row,
no gap (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from cloud.audit import AuditTrail
from devtools.localsvc import free_port
from tests.auth import add_user, bearer, open_problem
from tests.helpers import async_wait_for

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


@pytest.mark.services
async def test_two_api_instances_write_one_chain(state_db: str, tmp_path: Path) -> None:
    """Two `pantau api` processes on one PostgreSQL: 12 acknowledgements and 6 maintenance
    windows (requested + approved) sent to both at once leave one chain of 24 rows naming who
    did each, no fork."""
    tech = add_user(state_db, "tek_ani", "technician")
    spv = add_user(state_db, "spv_budi", "supervisor")
    problems = [open_problem(state_db, f"s{n}", "d1") for n in range(12)]
    with two_apis(state_db, tmp_path) as urls:
        async with httpx.AsyncClient(timeout=30) as http:

            async def up() -> bool:
                try:
                    answers = [await http.get(f"{url}/openapi.json") for url in urls]
                except httpx.HTTPError:
                    return False
                return all(a.status_code == 200 for a in answers)

            await async_wait_for(up, timeout_s=60, what="both API instances up")
            start = time.time() + 86400
            writes = [
                http.post(
                    f"{urls[n % 2]}/api/problems/{problem}/ack",
                    json={"comment": f"on my way {n}"},
                    headers=bearer(tech),
                )
                for n, problem in enumerate(problems)
            ] + [
                http.post(
                    f"{urls[n % 2]}/api/maintenance",
                    json={
                        "site": f"s{n}",
                        "start": iso(start + n * 3600),
                        "end": iso(start + n * 3600 + 1800),
                        "reason": "ganti PSU",
                    },
                    headers=bearer(spv),
                )
                for n in range(6)
            ]
            answers = await asyncio.gather(*writes)
    assert [a.status_code for a in answers] == [200] * 12 + [201] * 6, [a.text for a in answers]
    trail = AuditTrail(state_db)
    try:
        records = trail.records()
        verdict = trail.verify()
    finally:
        trail.close()
    assert verdict.ok, verdict.problem
    assert [r.id for r in records] == list(range(1, 25))  # 12 acks + 6 x (requested, approved)
    assert len({r.prev_hash for r in records}) == 24
    acks = {r.target: r.actor for r in records if r.event == "ack"}
    assert acks == {f"problem:{p}": "tek_ani" for p in problems}
    assert [r.actor for r in records if r.event.startswith("maintenance")] == ["spv_budi"] * 12


@contextmanager
def two_apis(state_db: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two `pantau api` processes on one state database; their URLs."""
    ports = [free_port(), free_port()]
    apis = [
        subprocess.Popen(
            [sys.executable, "-m", "pantau", "api", "--port", str(port), "--state", state_db,
             "--influx", "http://127.0.0.1:9", "--database", "unused", "--log-level", "WARNING"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / f"api{port}.log").open("w"),
        )
        for port in ports
    ]  # fmt: skip
    try:
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for api in apis:
            api.terminate()
        for api in apis:
            api.wait(timeout=20)


def iso(seconds: float) -> str:
    """An ISO 8601 UTC time."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
