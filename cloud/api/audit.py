"""The audit trail resource: the newest rows and whether the chain verifies (admins only)."""

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from cloud.api.deps import WRITE_RESPONSES, audit_trail
from cloud.audit import AuditTrail
from cloud.auth.deps import require
from cloud.auth.principal import Principal, Role


def audit_router() -> APIRouter:
    """Routes under /api/audit."""
    router = APIRouter(prefix="/api/audit", tags=["audit"])

    @router.get("", responses=WRITE_RESPONSES)
    def audit(
        trail: Annotated[AuditTrail, Depends(audit_trail)],
        _admin: Annotated[Principal, Depends(require(Role.ADMIN))],
        limit: Annotated[int, Query(ge=1, le=5000)] = 200,
    ) -> dict[str, Any]:
        """The newest ``limit`` rows (oldest first), the chain head and the verdict of a full
        check (as `pantau audit verify`). Every district's: only an admin reads it."""
        head = trail.head()
        rows = trail.records(after_id=max(0, (head.last_id if head else 0) - limit))
        verdict = trail.verify()
        return {
            "verified": verdict.ok,
            "broken_at": verdict.row,
            "problem": verdict.problem or None,
            "head": {"id": head.last_id, "hash": head.last_hash} if head else None,
            "rows": [
                {
                    "id": r.id,
                    "at": dt.datetime.fromtimestamp(r.at_ns / 1e9, dt.UTC).isoformat(),
                    "event": r.event,
                    "actor": r.actor,
                    "target": r.target,
                    "details": r.details_dict(),
                    "hash": r.hash,
                }
                for r in rows
            ],
        }

    return router
