"""Browser sessions: a random cookie (stored as its SHA-256) and a CSRF token per session.

The cookie is HttpOnly and SameSite=Strict; a write through a session must also carry the
session's CSRF token in the ``X-CSRF-Token`` header, which only the page's own script can read
(from ``GET /auth/session``), so a stolen or ambient cookie alone cannot write.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa

from cloud.auth.tables import sessions_table
from cloud.auth.tokens import sha256

COOKIE = "pantau_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL_S = 12 * 3600  # one working shift; then sign in again


@dataclass(frozen=True, slots=True)
class Session:
    """A live session."""

    id: int
    user_id: int
    csrf: str
    via: str
    expires_ns: int

    def csrf_ok(self, given: str | None) -> bool:
        """True if ``given`` is this session's CSRF token (constant-time)."""
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


class SessionStore:
    """Sessions in the state database (every API instance sees every session)."""

    def __init__(self, engine: sa.Engine, *, ttl_s: float = SESSION_TTL_S) -> None:
        self._engine = engine
        self._ttl_ns = int(ttl_s * 1e9)

    def start(self, user_id: int, *, via: str) -> tuple[str, Session]:
        """A new session: (the cookie value, the session)."""
        secret = secrets.token_urlsafe(32)
        now = time.time_ns()
        values = {
            "secret_sha256": sha256(secret),
            "user_id": user_id,
            "csrf": secrets.token_urlsafe(24),
            "via": via,
            "created_ns": now,
            "expires_ns": now + self._ttl_ns,
        }
        with self._engine.begin() as db:
            # Expired sessions go when new ones come: the table stays the size of the staff.
            db.execute(sessions_table.delete().where(sessions_table.c.expires_ns < now))
            new_id = db.execute(sessions_table.insert().values(**values)).inserted_primary_key[0]  # type: ignore[index]
        return secret, Session(
            id=int(new_id),
            user_id=user_id,
            csrf=str(values["csrf"]),
            via=via,
            expires_ns=int(str(values["expires_ns"])),
        )

    def find(self, cookie: str) -> Session | None:
        """The live session of ``cookie``, or None."""
        with self._engine.connect() as db:
            row = db.execute(
                sessions_table.select().where(sessions_table.c.secret_sha256 == sha256(cookie))
            ).first()
        if row is None or row._mapping["expires_ns"] <= time.time_ns():
            return None
        m = row._mapping
        return Session(
            id=int(m["id"]),
            user_id=int(m["user_id"]),
            csrf=m["csrf"],
            via=m["via"],
            expires_ns=int(m["expires_ns"]),
        )

    def end(self, cookie: str) -> None:
        """Sign out: the cookie stops working."""
        with self._engine.begin() as db:
            db.execute(
                sessions_table.delete().where(sessions_table.c.secret_sha256 == sha256(cookie))
            )

    def end_all(self, user_id: int) -> int:
        """End every session of a user (disabled, password changed); how many ended."""
        with self._engine.begin() as db:
            result = db.execute(sessions_table.delete().where(sessions_table.c.user_id == user_id))
        return int(result.rowcount)
