"""What the audit trail records: one event per kind of write."""

from __future__ import annotations

import enum


class AuditEvent(enum.StrEnum):
    """A write worth recording (details never hold a secret)."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    ACK = "ack"
    VIEW_ACCEPTED = "view_accepted"  # a camera's changed view accepted as the intended one
    MAINTENANCE_REQUESTED = "maintenance_requested"
    MAINTENANCE_APPROVED = "maintenance_approved"
    MAINTENANCE_CANCELLED = "maintenance_cancelled"
    USER_ADDED = "user_added"
    USER_DISABLED = "user_disabled"
    USER_ENABLED = "user_enabled"
    USER_PASSWORD = "user_password"  # noqa: S105 - an event name
    USER_CHANGED = "user_changed"
    TOKEN_CREATED = "token_created"  # noqa: S105 - an event name
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 - an event name
    REMEDIATION = "remediation_sent"  # a power-cycle or reboot sent to a camera
