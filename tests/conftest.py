"""Fixtures: real mosquitto and influxd processes on free loopback ports."""

from __future__ import annotations

import itertools
import logging
import shutil
import tempfile
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
from tests.helpers import create_database

_db_counter = itertools.count(1)


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
