"""The problems resource: list, acknowledge."""

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam

from cloud.api.deps import WRITE_RESPONSES
from cloud.api.schemas import AckIn, FoldedCamera, ProblemOut
from cloud.api.timeconv import from_ns
from cloud.auth.deps import read_principal, require
from cloud.auth.principal import Principal, Role
from cloud.problems.model import Problem, ProblemState
from cloud.problems.store import ProblemNotFoundError, ProblemResolvedError, ProblemStore


def problem_out(p: Problem) -> ProblemOut:
    """The API's view of a stored problem."""
    value = p.details.get("value")
    return ProblemOut(
        id=p.id,
        key=p.key,
        rule=p.rule,
        title=p.title,
        severity=p.severity.value,
        state=p.state.value,
        site=p.site,
        district=p.district,
        camera=p.camera,
        subject=p.subject,
        since=from_ns(p.since_ns),
        opened_at=from_ns(p.opened_ns),
        resolved_at=from_ns(p.resolved_ns) if p.resolved_ns else None,
        cause=p.cause,
        cameras=[FoldedCamera(**c) for c in p.details.get("cameras", [])],
        value=float(value) if isinstance(value, int | float) else None,
        acknowledged_by=p.acknowledged_by,
        acknowledged_at=from_ns(p.acknowledged_ns) if p.acknowledged_ns else None,
        ack_comment=p.ack_comment,
        in_maintenance=p.in_maintenance,
        reopen_count=p.reopen_count,
    )


def problems_router(problem_response: Callable[[str], dict[str, Any]]) -> APIRouter:
    """Routes under /api/problems, scoped to the caller's districts."""
    router = APIRouter(prefix="/api/problems", tags=["problems"])

    def store(request: Request) -> ProblemStore:
        problems: ProblemStore = request.app.state.problems
        return problems

    @router.get("", response_model=list[ProblemOut])
    def list_problems(
        problems: Annotated[ProblemStore, Depends(store)],
        principal: Annotated[Principal, Depends(read_principal)],
        state: Annotated[
            Literal["open", "acknowledged", "resolved", "unresolved"] | None,
            Query(description="one state, 'unresolved' (open + acknowledged), or all"),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> list[ProblemOut]:
        """Problems of the caller's districts, most urgent first: unresolved before resolved,
        by severity, then oldest."""
        scope = principal.districts
        if state == "unresolved":
            found = [
                p
                for p in problems.find(limit=limit, districts=scope)
                if p.state is not ProblemState.RESOLVED
            ]
        else:
            found = problems.find(
                state=ProblemState(state) if state else None, limit=limit, districts=scope
            )
        return [problem_out(p) for p in found]

    @router.post(
        "/{problem_id}/ack",
        response_model=ProblemOut,
        responses={
            **WRITE_RESPONSES,
            404: problem_response("no such problem"),
            409: problem_response("already resolved"),
        },
    )
    def acknowledge(
        problem_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
        body: AckIn,
        problems: Annotated[ProblemStore, Depends(store)],
        principal: Annotated[Principal, Depends(require(Role.TECHNICIAN))],
    ) -> ProblemOut:
        """Acknowledge: someone is on it, so no further messages go out for this problem (a
        technician or above, in their own districts)."""
        known = problems.get(problem_id)
        if known is None or not principal.sees(known.district):
            raise HTTPException(404, f"no problem {problem_id}")
        try:
            return problem_out(
                problems.acknowledge(problem_id, by=principal.username, comment=body.comment)
            )
        except ProblemNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        except ProblemResolvedError as exc:
            raise HTTPException(409, str(exc)) from None

    return router
