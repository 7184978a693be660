"""Who is asking: an authenticated person (or token) with a role and a district scope.

Every API route and the technician page receive a ``Principal``; every write records its
``username``. Scope is enforced by the data layer with ``sees``: another district's site,
camera, problem or window does not exist for this principal (404, never 403).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    """What a person may do; each role may do everything the ones before it may."""

    VIEWER = "viewer"  # read
    TECHNICIAN = "technician"  # + acknowledge, request maintenance
    SUPERVISOR = "supervisor"  # + approve maintenance, retroactive windows (with a reason)
    ADMIN = "admin"  # + accounts and tokens

    @property
    def rank(self) -> int:
        """Order of privilege (viewer 0 ... admin 3)."""
        return list(Role).index(self)


@dataclass(frozen=True, kw_only=True)
class Principal:
    """An authenticated user. ``districts`` ``None`` means every district."""

    username: str
    role: Role
    districts: frozenset[str] | None
    lang: str = "id"  # Bahasa Indonesia by default for this deployment
    via: str = "session"  # session | token | oidc | public

    def at_least(self, role: Role) -> bool:
        """True if this principal's role is ``role`` or above."""
        return self.role.rank >= role.rank

    def sees(self, district: str | None) -> bool:
        """True if ``district`` is in scope (a record without a district: only all-district
        principals see it)."""
        if self.districts is None:
            return True
        return district is not None and district in self.districts
