"""Fixtures: real mosquitto and influxd processes on free loopback ports."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.localsvc import InfluxProcess, MosquittoProcess, make_influx, make_mosquitto
from tests.helpers import create_database

_db_counter = itertools.count(1)


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxProcess]:
    """One influxd for the session; tests isolate themselves by database."""
    process = make_influx(tmp_path_factory.mktemp("influx"))
    process.start()
    yield process
    process.stop()


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
