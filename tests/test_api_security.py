"""The API's write protection and error hygiene: every write route needs identity, and an
internal failure answers with a problem document, never a stack trace."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cloud.api.app import create_app
from cloud.influx import InfluxSettings
from devtools.localsvc import InfluxProcess
from tests.auth import add_user
from tests.helpers import serving

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
SIGN_IN = {("POST", "/auth/login"), ("POST", "/auth/logout")}  # need no identity, by design


@pytest.fixture
def token(tmp_path: Path) -> str:
    """A real admin's personal token (the wrong ones below differ from it)."""
    return add_user(f"sqlite:///{tmp_path / 'state.sqlite'}", "root", "admin")


@pytest.fixture
async def api(
    influxd: InfluxProcess, database: str, tmp_path: Path, token: str
) -> AsyncIterator[str]:
    app = create_app(
        influx=InfluxSettings(url=influxd.url, database=database),
        state_url=f"sqlite:///{tmp_path / 'state.sqlite'}",
    )
    async with serving(app) as url:
        yield url


async def test_every_write_route_needs_identity(api: str, token: str) -> None:
    """No token, a wrong one, or one differing in its last character: 401 on every write."""
    async with httpx.AsyncClient(base_url=api) as http:
        spec = (await http.get("/openapi.json")).json()
    writes = [
        (method.upper(), path.replace("{window_id}", "1").replace("{problem_id}", "1"))
        for path, operations in spec["paths"].items()
        for method in operations
        if method.upper() in WRITES and (method.upper(), path) not in SIGN_IN
    ]
    assert len(writes) >= 3  # maintenance create/delete, problem ack
    async with httpx.AsyncClient(base_url=api) as http:
        for method, path in writes:
            for headers in (
                {},
                {"Authorization": "Bearer nope"},
                {"Authorization": f"Bearer {token[:-1]}{'X' if token[-1] != 'X' else 'Y'}"},
            ):
                response = await http.request(method, path, headers=headers, json={})
                assert response.status_code == 401, (method, path, headers)
                assert response.headers["content-type"] == "application/problem+json"


async def test_internal_errors_answer_without_a_stack_trace(
    api: str, token: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With the state database broken underneath it, the API answers 500 problem+json that
    names no exception, file or SQL; the details are in the server log."""
    db = sqlite3.connect(tmp_path / "state.sqlite")
    db.execute("DROP TABLE maintenance")
    db.commit()
    db.close()
    async with httpx.AsyncClient(base_url=api) as http:
        response = await http.get("/api/maintenance", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "internal error",
        "status": 500,
        "detail": "the server failed; its log has the details",
    }
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert logged, "the failure must be logged on the server"
    for record in logged:
        record.expected = True  # this test caused them on purpose
