"""The audit trail's tables (SQLAlchemy Core) in the state database.

``audit_log`` holds the rows, numbered 1, 2, 3 ... without gaps, each carrying the hash of the
row before it; ``audit_head`` is one row (id 1) naming the last row and its hash. Every append
locks the head first, so appends from any number of processes form one chain.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
audit_table = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at_ns", sa.BigInteger, nullable=False),  # UTC, nanoseconds since the epoch
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("details", sa.Text, nullable=False),  # canonical JSON, hashed as stored
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
head_table = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)
