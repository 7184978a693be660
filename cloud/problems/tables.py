"""The state database's problem and notification-outbox tables (SQLAlchemy Core)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
problems_table = sa.Table(
    "problems",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False, index=True),
    # The key while unresolved, NULL once resolved: at most one unresolved problem per key.
    sa.Column("open_key", sa.String(200), nullable=True, unique=True),
    sa.Column("rule", sa.String(40), nullable=False),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("district", sa.String(64), nullable=False),
    sa.Column("camera", sa.String(64), nullable=True),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("since_ns", sa.BigInteger, nullable=False),
    sa.Column("opened_ns", sa.BigInteger, nullable=False),
    sa.Column("last_bad_ns", sa.BigInteger, nullable=False),
    sa.Column("resolved_ns", sa.BigInteger, nullable=True),
    sa.Column("cause", sa.String(300), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("acknowledged_by", sa.String(100), nullable=True),
    sa.Column("acknowledged_ns", sa.BigInteger, nullable=True),
    sa.Column("ack_comment", sa.String(500), nullable=True),
    sa.Column("in_maintenance", sa.Boolean, nullable=False),
    sa.Column("notified_open", sa.Boolean, nullable=False),
    sa.Column("reopen_count", sa.Integer, nullable=False),
)
outbox_table = sa.Table(
    "notification_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("problem_id", sa.Integer, nullable=False, index=True),
    sa.Column("target", sa.String(40), nullable=False),
    sa.Column("event", sa.String(20), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_ns", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_ns", sa.BigInteger, nullable=False),
    sa.Column("claimed_until_ns", sa.BigInteger, nullable=True),
    sa.Column("sent_ns", sa.BigInteger, nullable=True, index=True),
    sa.Column("gave_up", sa.Boolean, nullable=False),
    sa.Column("last_error", sa.String(500), nullable=True),
)
