"""Accounts and personal tokens for tests that need someone to be signed in."""

from __future__ import annotations

import time

import httpx

from cloud.auth.identity import Identity
from cloud.auth.principal import Role
from cloud.problems.config import Severity
from cloud.problems.model import Observation, Verdict
from cloud.problems.store import ProblemStore

HOUR_NS = 3600 * 10**9


def add_user(
    state_url: str,
    username: str,
    role: Role | str,
    districts: list[str] | None = None,
    *,
    password: str | None = None,
    lang: str = "id",
) -> str:
    """Create an account (every district when ``districts`` is None; Indonesian unless
    ``lang``); its bearer token."""
    ids = Identity(state_url)
    try:
        user = ids.accounts.add(
            username,
            role=Role(role),
            districts=districts,
            password_hash=ids.passwords.hash(password) if password else None,
            lang=lang,
        )
        bearer, _ = ids.tokens.create(user.id, name="test", expires_ns=time.time_ns() + HOUR_NS)
    finally:
        ids.close()
    return bearer


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a personal token."""
    return {"Authorization": f"Bearer {token}"}


async def sign_in(http: httpx.AsyncClient, username: str, password: str) -> str:
    """Sign ``http`` in with a password (it keeps the cookie); the session's CSRF token."""
    response = await http.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    csrf: str = response.json()["csrf_token"]
    return csrf


def open_problem(state_url: str, site: str, district: str, camera: str = "c1") -> int:
    """Open a 'camera down' problem straight in the state database; its id."""
    store = ProblemStore(state_url)
    try:
        opened = store.open(
            Observation(
                key=f"camera:{site}/{camera}",
                rule="camera",
                title="camera down",
                severity=Severity.MAJOR,
                verdict=Verdict.BAD,
                site=site,
                district=district,
                camera=camera,
                subject=f"{site}/{camera}",
                since_ns=time.time_ns() - 300 * 10**9,
                cause="refused at tcp",
            ),
            now_ns=time.time_ns(),
            in_maintenance=False,
        )
    finally:
        store.close()
    assert opened is not None
    return opened.id
