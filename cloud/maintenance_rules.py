"""Who may enter, approve and cancel maintenance windows, and when a window counts.

- A technician may *request* a window; it counts once a supervisor approves it, or at once when
  the policy allows it and it was entered at least ``advance_approval_h`` hours before it starts.
- A supervisor's own window is approved as it is entered.
- A window starting more than ``retro_grace_s`` before it is entered is *retroactive*: only a
  supervisor may enter it, with a reason of its own; it is flagged wherever it is listed.
- Windows are never deleted. A supervisor may cancel any window in scope; a technician may
  withdraw their own request while it waits for approval.

District scope (another district's window does not exist) is the API's: ``cloud.auth.scope``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cloud.auth.principal import Principal, Role
from cloud.maintenance import Approval, Maintenance, StateStore, WindowStatus

RETRO_GRACE_S = 300.0  # "a few minutes": time to type in a window that has just begun


@dataclass(frozen=True, kw_only=True)
class MaintenancePolicy:
    """The deployment's maintenance rules (``pantau api`` flags; docs/availability.md)."""

    retro_grace_s: float = RETRO_GRACE_S
    # None: every technician's window waits for a supervisor. A number: a technician's window
    # entered at least this many hours before it starts counts without one (planned work
    # announced ahead cannot be an outage covered up after the fact).
    advance_approval_h: float | None = None


@dataclass(frozen=True, kw_only=True)
class WindowRequest:
    """What someone asks to enter."""

    site: str | None
    district: str | None
    camera: str | None
    start: dt.datetime
    end: dt.datetime
    reason: str
    retroactive_reason: str | None = None
    service: str | None = None  # a service's window (with ``district``: only its vantage)


class MaintenanceRuleError(Exception):
    """Root of the rule refusals."""


class NotAllowedError(MaintenanceRuleError):
    """This role may not do this (HTTP 403)."""


class ReasonRequiredError(MaintenanceRuleError):
    """A retroactive window needs a reason of its own (HTTP 422)."""


def is_retroactive(start: dt.datetime, entered: dt.datetime, policy: MaintenancePolicy) -> bool:
    """True if a window starting at ``start`` entered at ``entered`` began too long before."""
    return (entered - start).total_seconds() > policy.retro_grace_s


def request_window(
    store: StateStore,
    principal: Principal,
    request: WindowRequest,
    policy: MaintenancePolicy,
    *,
    now: dt.datetime | None = None,
) -> Maintenance:
    """Enter a window as ``principal``: refused, pending, or approved at once (see module)."""
    now = now or dt.datetime.now(dt.UTC)
    if not principal.at_least(Role.TECHNICIAN):
        raise NotAllowedError(f"a {principal.role.value} may not plan maintenance")
    supervisor = principal.at_least(Role.SUPERVISOR)
    retroactive = is_retroactive(request.start, now, policy)
    retro_reason = (request.retroactive_reason or "").strip() or None
    if retroactive and not supervisor:
        raise NotAllowedError(
            f"this window starts {_ago(request.start, now)} before now: only a supervisor may "
            "enter maintenance that has already begun (ask one to enter it, with the reason "
            "it comes late)"
        )
    if retroactive and retro_reason is None:
        raise ReasonRequiredError(
            f"this window starts {_ago(request.start, now)} before now: give "
            "retroactive_reason (why it is entered after it began)"
        )
    if supervisor:
        approval = Approval.SUPERVISOR
    elif (
        policy.advance_approval_h is not None
        and (request.start - now).total_seconds() >= policy.advance_approval_h * 3600
    ):
        approval = Approval.ADVANCE
    else:
        approval = Approval.PENDING
    return store.add(
        site=request.site,
        district=request.district,
        camera=request.camera,
        start=request.start,
        end=request.end,
        reason=request.reason,
        created_by=principal.username,
        approval=approval,
        retroactive=retroactive,
        retro_reason=retro_reason if retroactive else None,
        service=request.service,
        now=now,
    )


def approve_window(
    store: StateStore, principal: Principal, window_id: int, *, now: dt.datetime | None = None
) -> Maintenance:
    """A supervisor approves a requested window (scope is checked by the caller)."""
    if not principal.at_least(Role.SUPERVISOR):
        raise NotAllowedError("only a supervisor may approve maintenance")
    return store.approve(window_id, by=principal.username, now=now)


def cancel_window(
    store: StateStore,
    principal: Principal,
    window: Maintenance,
    *,
    reason: str | None,
    now: dt.datetime | None = None,
) -> Maintenance:
    """Cancel ``window``: a supervisor any, a technician only their own pending request."""
    if not principal.at_least(Role.SUPERVISOR):
        own_request = (
            window.created_by == principal.username and window.status is WindowStatus.REQUESTED
        )
        if not (principal.at_least(Role.TECHNICIAN) and own_request):
            raise NotAllowedError(
                "only a supervisor may cancel this window (a technician may withdraw only "
                "their own request while it waits for approval)"
            )
    return store.cancel(window.id, by=principal.username, reason=reason, now=now)


def _ago(start: dt.datetime, now: dt.datetime) -> str:
    seconds = int((now - start).total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"
