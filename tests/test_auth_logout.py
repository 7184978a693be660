"""Signing out is recorded: the audit trail gets a ``logout`` row naming the user, and the
session cookie stops working (replayed after the logout it reads nothing and writes nothing)."""

from __future__ import annotations

from pathlib import Path

import httpx

from cloud.api.app import create_app
from cloud.audit import AuditTrail
from cloud.auth.principal import Role
from cloud.auth.sessions import COOKIE
from cloud.influx import InfluxSettings
from tests.auth import add_user, open_problem, sign_in
from tests.helpers import serving

PASSWORD = "siti-logout-pw"


async def test_a_logout_leaves_an_audit_row_and_the_cookie_dead(tmp_path: Path) -> None:
    """login, logout -> rows login, logout (actor siti, chain verifies); the old cookie gets 401
    on a read and a write; a logout without a live session records nothing."""
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    problem = open_problem(state_url, "s1", "d1")
    add_user(state_url, "siti", Role.TECHNICIAN, ["d1"], password=PASSWORD)
    app = create_app(
        influx=InfluxSettings(url="http://127.0.0.1:9", database="unused"), state_url=state_url
    )
    async with serving(app) as url:
        async with httpx.AsyncClient(base_url=url) as page:
            csrf = await sign_in(page, "siti", PASSWORD)
            cookie = page.cookies[COOKIE]
            assert (await page.get("/api/problems")).status_code == 200
            assert (await page.post("/auth/logout")).status_code == 204
        async with httpx.AsyncClient(base_url=url, cookies={COOKIE: cookie}) as replay:
            assert (await replay.get("/api/problems")).status_code == 401
            ack = await replay.post(
                f"/api/problems/{problem}/ack", json={}, headers={"X-CSRF-Token": csrf}
            )
            assert ack.status_code == 401
            assert (await replay.get("/auth/session")).status_code == 401
            assert (await replay.post("/auth/logout")).status_code == 204  # nothing to end
        async with httpx.AsyncClient(base_url=url) as stranger:
            assert (await stranger.post("/auth/logout")).status_code == 204
    trail = AuditTrail(state_url)
    try:
        rows = [(r.event, r.actor, r.target) for r in trail.records()]
        assert trail.verify().ok
    finally:
        trail.close()
    assert rows == [("login", "siti", "user:siti"), ("logout", "siti", "user:siti")]
