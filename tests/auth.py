"""Accounts and personal tokens for tests that need someone to be signed in."""

from __future__ import annotations

import time

import httpx

from cloud.auth.identity import Identity
from cloud.auth.principal import Role

HOUR_NS = 3600 * 10**9


def add_user(
    state_url: str,
    username: str,
    role: Role | str,
    districts: list[str] | None = None,
    *,
    password: str | None = None,
) -> str:
    """Create an account (every district when ``districts`` is None); its bearer token."""
    ids = Identity(state_url)
    try:
        user = ids.accounts.add(
            username,
            role=Role(role),
            districts=districts,
            password_hash=ids.passwords.hash(password) if password else None,
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
