"""The problems resource: list, acknowledge."""

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam

from cloud.api.schemas import AckIn, FoldedCamera, ProblemOut
from cloud.api.timeconv import from_ns
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


def problems_router(
    require_token: Callable[..., None], problem_response: Callable[[str], dict[str, Any]]
) -> APIRouter:
    """Routes under /api/problems; writes go through ``require_token``."""
    router = APIRouter(prefix="/api/problems", tags=["problems"])

    def store(request: Request) -> ProblemStore:
        problems: ProblemStore = request.app.state.problems
        return problems

    @router.get("", response_model=list[ProblemOut])
    def list_problems(
        problems: Annotated[ProblemStore, Depends(store)],
        state: Annotated[
            Literal["open", "acknowledged", "resolved", "unresolved"] | None,
            Query(description="one state, 'unresolved' (open + acknowledged), or all"),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> list[ProblemOut]:
        """Problems, most urgent first: unresolved before resolved, by severity, then oldest."""
        if state == "unresolved":
            found = [p for p in problems.find(limit=limit) if p.state is not ProblemState.RESOLVED]
        else:
            found = problems.find(state=ProblemState(state) if state else None, limit=limit)
        return [problem_out(p) for p in found]

    @router.post(
        "/{problem_id}/ack",
        response_model=ProblemOut,
        dependencies=[Depends(require_token)],
        responses={
            401: problem_response("missing or wrong token"),
            403: problem_response("writes disabled"),
            404: problem_response("no such problem"),
            409: problem_response("already resolved"),
        },
    )
    def acknowledge(
        problem_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
        body: AckIn,
        problems: Annotated[ProblemStore, Depends(store)],
    ) -> ProblemOut:
        """Acknowledge: someone is on it, so no further messages go out for this problem."""
        try:
            return problem_out(problems.acknowledge(problem_id, by=body.by, comment=body.comment))
        except ProblemNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        except ProblemResolvedError as exc:
            raise HTTPException(409, str(exc)) from None

    return router
