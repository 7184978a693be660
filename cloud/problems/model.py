"""What the rules see (observations) and what the state database keeps (problems)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from cloud.problems.config import Severity


class Verdict(enum.StrEnum):
    """A rule's reading of one subject at one instant.

    ``bad``: the condition has held long enough to be a problem. ``good``: it has been clear long
    enough to resolve one. ``pending``: neither (too short, inside the hysteresis band, or we
    cannot tell because the data is stale), so nothing changes.
    """

    BAD = "bad"
    GOOD = "good"
    PENDING = "pending"


class ProblemState(enum.StrEnum):
    """Where a problem is in its life."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Event(enum.StrEnum):
    """What a notification announces."""

    OPEN = "open"
    RESOLVE = "resolve"


@dataclass(frozen=True, slots=True)
class SiteContact:
    """Whether we are in contact with a site's agent, and since when."""

    district: str
    offline: bool
    since_ns: int  # start of the current online/offline state


@dataclass(frozen=True, slots=True)
class Observation:
    """One rule applied to one subject (camera, site, sensor) at one instant."""

    key: str
    rule: str
    title: str
    severity: Severity
    verdict: Verdict
    site: str
    district: str
    camera: str | None
    subject: str
    since_ns: int | None
    cause: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Problem:
    """A stored problem."""

    id: int
    key: str
    rule: str
    title: str
    severity: Severity
    state: ProblemState
    site: str
    district: str
    camera: str | None
    subject: str
    since_ns: int
    opened_ns: int
    last_bad_ns: int
    resolved_ns: int | None
    cause: str
    details: dict[str, Any]
    acknowledged_by: str | None
    acknowledged_ns: int | None
    ack_comment: str | None
    in_maintenance: bool
    notified_open: bool
    reopen_count: int

    def as_message(self) -> dict[str, Any]:
        """The problem as JSON-able data (notifications and the outbox)."""
        return {
            "id": self.id,
            "key": self.key,
            "rule": self.rule,
            "title": self.title,
            "severity": self.severity.value,
            "state": self.state.value,
            "site": self.site,
            "district": self.district,
            "camera": self.camera,
            "subject": self.subject,
            "since_ns": self.since_ns,
            "opened_ns": self.opened_ns,
            "resolved_ns": self.resolved_ns,
            "cause": self.cause,
            "details": self.details,
            "reopen_count": self.reopen_count,
        }
