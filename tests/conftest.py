"""Fixtures: real mosquitto and influxd processes on free loopback ports; the ``services`` mark
on every test that needs them; a run that fails if a test left a process alive."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.localsvc import (
    InfluxProcess,
    MosquittoProcess,
    PostgresProcess,
    make_influx,
    make_mosquitto,
    make_postgres,
)
from devtools.proctree import ProcessId, alive, descendants, with_environ
from tests.helpers import create_database

_db_counter = itertools.count(1)

# Fixtures that start a real service (or hand out a piece of one): a test using any of them,
# directly or through another fixture, is marked ``services`` and left out of `make unit`.
# Tests that start services without one of these carry ``pytest.mark.services`` themselves.
SERVICE_FIXTURES = frozenset(
    {
        *("influxd", "postgres", "state_db", "database", "broker"),  # this file
        "secure",  # test_security.py: a broker with TLS and dynamic security
        "secured",  # test_influx_auth.py: an influxd with authentication
        "servers",  # test_stream_real_server.py: GStreamer's RTSP server
        "ups",  # test_cabinet_drivers.py: snmpd behind the simulated UPS
    }
)
# Set in the environment of this run, so every process a test starts carries it, even one in
# its own session whose parent is long gone.
RUN_MARKER = "PANTAU_TEST_RUN"
LEFTOVER_TIMEOUT_S = 15.0  # processes stopped by the last teardown may still be on their way out


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``services`` mark (``--strict-markers``)."""
    config.addinivalue_line(
        "markers",
        "services: needs real services (mosquitto, influxd, PostgreSQL, snmpd, an RTSP server, "
        "a browser) or starts processes; marked by fixture automatically, `make unit` skips it",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a service fixture, directly or transitively."""
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


def _started_by_tests(run_id: str, before: set[ProcessId]) -> set[ProcessId]:
    """Live processes this run started: below pytest, or carrying the run's marker."""
    below = set(descendants(os.getpid())) - before
    return below | set(with_environ(RUN_MARKER, run_id))


@pytest.fixture(scope="session", autouse=True)
def _no_process_left_behind() -> Iterator[None]:
    """Fail the run if a process started by a test is still alive once every test and fixture
    has finished (the leftovers are then killed, so the next run starts clean)."""
    run_id = f"{os.getpid()}-{secrets.token_hex(6)}"
    before = set(descendants(os.getpid()))
    os.environ[RUN_MARKER] = run_id
    yield
    deadline = time.monotonic() + LEFTOVER_TIMEOUT_S
    while (left := _started_by_tests(run_id, before)) and time.monotonic() < deadline:
        time.sleep(0.1)
    described = sorted(p.describe() for p in left)
    for proc in left:
        with contextlib.suppress(ProcessLookupError):
            if alive(proc):  # the very process, not a new one under its pid
                os.kill(proc.pid, signal.SIGKILL)
    del os.environ[RUN_MARKER]
    assert not described, f"processes started by tests outlived the run: {described}"


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxProcess]:
    """One influxd for the session; tests isolate themselves by database."""
    process = make_influx(tmp_path_factory.mktemp("influx"))
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresProcess]:
    """One PostgreSQL for the session (the shared state database of several API and problems
    instances); tests isolate themselves by database. Its directory is enterable by the
    ``postgres`` user the server runs as."""
    base = Path(tempfile.mkdtemp(prefix="pantau-pg-"))
    base.chmod(0o755)
    process = make_postgres(base)
    process.start()
    yield process
    process.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def state_db(postgres: PostgresProcess) -> str:
    """A fresh PostgreSQL database's URL for this test."""
    return postgres.create_database(f"state{next(_db_counter)}")


@pytest.fixture
def database(influxd: InfluxProcess) -> str:
    """A fresh database name for this test."""
    name = f"t{next(_db_counter)}"
    create_database(influxd.url, name)
    return name


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """A mosquitto of this test's own (so persistent sessions never leak between tests)."""
    process = make_mosquitto(tmp_path)
    process.start()
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def _no_logged_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail any test whose code logged an unexpected exception."""
    yield
    errors = [
        r
        for r in caplog.get_records("call")
        if r.levelno >= logging.ERROR and r.exc_info and not getattr(r, "expected", False)
    ]
    assert not errors, f"exceptions were logged: {[r.getMessage() for r in errors]}"
