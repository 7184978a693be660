"""The state database's identity tables (SQLAlchemy Core): users, API tokens, sessions, login
throttling and pending OpenID Connect logins. Times are nanoseconds since the epoch (UTC)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
users_table = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    # argon2id PHC string; NULL: no password (signs in through OpenID Connect only).
    sa.Column("password_hash", sa.String(200), nullable=True),
    sa.Column("role", sa.String(20), nullable=False),
    # JSON list of district ids; NULL: every district.
    sa.Column("districts", sa.Text, nullable=True),
    sa.Column("lang", sa.String(8), nullable=False),
    sa.Column("source", sa.String(10), nullable=False),  # local | oidc
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_ns", sa.BigInteger, nullable=False),
)
tokens_table = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, nullable=False, index=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("created_ns", sa.BigInteger, nullable=False),
    sa.Column("expires_ns", sa.BigInteger, nullable=False),
    sa.Column("revoked_ns", sa.BigInteger, nullable=True),
    sa.Column("last_used_ns", sa.BigInteger, nullable=True),
)
sessions_table = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, nullable=False, index=True),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("via", sa.String(10), nullable=False),  # session | oidc
    sa.Column("created_ns", sa.BigInteger, nullable=False),
    sa.Column("expires_ns", sa.BigInteger, nullable=False),
)
throttle_table = sa.Table(
    "login_throttle",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),  # user:NAME or addr:IP
    sa.Column("window_start_ns", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("locked_until_ns", sa.BigInteger, nullable=False),
)
oidc_logins_table = sa.Table(
    "oidc_logins",
    metadata,
    sa.Column("state_sha256", sa.String(64), primary_key=True),
    sa.Column("nonce", sa.String(100), nullable=False),
    sa.Column("verifier", sa.String(200), nullable=False),
    sa.Column("created_ns", sa.BigInteger, nullable=False),
)
