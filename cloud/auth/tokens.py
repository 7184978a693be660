"""Personal API tokens: named, expiring, revocable, stored as a SHA-256 of their secret.

A token reads ``pantau_<id>_<secret>``: the id finds the row, the secret (256 random bits, so a
fast hash is enough) is compared in constant time. The secret is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa

from cloud.auth.tables import tokens_table

PREFIX = "pantau_"
_TOKEN = re.compile(r"^pantau_([0-9]{1,18})_([A-Za-z0-9_-]{20,100})$")
MAX_TOKEN_DAYS = 3650  # a wall display's token may be long-lived, but never eternal
LAST_USED_EVERY_NS = 60 * 10**9  # write last_used at most once a minute per token


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A stored token (never its secret)."""

    id: int
    user_id: int
    name: str
    created_ns: int
    expires_ns: int
    revoked_ns: int | None
    last_used_ns: int | None

    def valid_at(self, now_ns: int) -> bool:
        """Neither revoked nor expired at ``now_ns``."""
        return self.revoked_ns is None and now_ns < self.expires_ns


def sha256(secret: str) -> str:
    """Hex SHA-256 of a high-entropy secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """API tokens in the state database."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def create(self, user_id: int, *, name: str, expires_ns: int) -> tuple[str, TokenInfo]:
        """A new token for ``user_id``: (the bearer string, shown once; its stored record)."""
        if not 1 <= len(name) <= 64:
            raise ValueError("a token name has 1-64 characters")
        secret = secrets.token_urlsafe(32)
        with self._engine.begin() as db:
            new_id = db.execute(
                tokens_table.insert().values(
                    user_id=user_id,
                    name=name,
                    secret_sha256=sha256(secret),
                    created_ns=time.time_ns(),
                    expires_ns=expires_ns,
                    revoked_ns=None,
                    last_used_ns=None,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        info = self.get(int(new_id))
        assert info is not None
        return f"{PREFIX}{info.id}_{secret}", info

    def get(self, token_id: int) -> TokenInfo | None:
        """One token's record by id."""
        with self._engine.connect() as db:
            row = db.execute(tokens_table.select().where(tokens_table.c.id == token_id)).first()
        return _info(row) if row else None

    def of_user(self, user_id: int) -> list[TokenInfo]:
        """A user's tokens, newest first."""
        query = (
            tokens_table.select()
            .where(tokens_table.c.user_id == user_id)
            .order_by(tokens_table.c.id.desc())
        )
        with self._engine.connect() as db:
            return [_info(row) for row in db.execute(query)]

    def revoke(self, token_id: int) -> bool:
        """Revoke a token (kept for the record); False if there is no such live token."""
        with self._engine.begin() as db:
            result = db.execute(
                tokens_table.update()
                .where(tokens_table.c.id == token_id, tokens_table.c.revoked_ns.is_(None))
                .values(revoked_ns=time.time_ns())
            )
        return bool(result.rowcount)

    def check(self, bearer: str, *, now_ns: int | None = None) -> TokenInfo | None:
        """The live token ``bearer`` names, or None (malformed, unknown, wrong secret,
        revoked or expired: the caller cannot tell which)."""
        found = _TOKEN.match(bearer)
        if not found:
            return None
        now = time.time_ns() if now_ns is None else now_ns
        with self._engine.connect() as db:
            row = db.execute(
                tokens_table.select().where(tokens_table.c.id == int(found.group(1)))
            ).first()
        if row is None:
            return None
        if not hmac.compare_digest(row._mapping["secret_sha256"], sha256(found.group(2))):
            return None
        info = _info(row)
        if not info.valid_at(now):
            return None
        if info.last_used_ns is None or now - info.last_used_ns > LAST_USED_EVERY_NS:
            with self._engine.begin() as db:
                db.execute(
                    tokens_table.update()
                    .where(tokens_table.c.id == info.id)
                    .values(last_used_ns=now)
                )
        return info


def _info(row: sa.Row[tuple[object, ...]]) -> TokenInfo:
    m = row._mapping
    return TokenInfo(
        id=int(m["id"]),
        user_id=int(m["user_id"]),
        name=m["name"],
        created_ns=int(m["created_ns"]),
        expires_ns=int(m["expires_ns"]),
        revoked_ns=m["revoked_ns"],
        last_used_ns=m["last_used_ns"],
    )
