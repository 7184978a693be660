"""Accepting a camera's new view: a technician says the changed view is the intended one.

The acceptance is recorded in the audit trail (who, when, the view score it accepted) and, when
the API can send commands (``pantau api --remediation``), delivered to the site's agent as a
signed ``accept_view`` command: the agent makes the camera's current view its learned view at
once and probes the stream again, so the problem resolves with the next verdict. Without
remediation the acceptance is only the record that a person looked; the agent then learns the
view by itself once it has been stable for ``view_relearn_probes`` probes (docs/agent.md).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import WRITE_RESPONSES, audit_trail, influx_client, problem_response
from cloud.api.remediation import Remediation
from cloud.api.timeconv import from_ns
from cloud.audit import AuditEvent, AuditTrail
from cloud.auth.deps import require
from cloud.auth.principal import Principal, Role
from cloud.influx import InfluxClient, series_rows
from cloud.problems.store import ProblemStore
from cloud.schema import CAMERA_TAG, DISTRICT_TAG, SITE_TAG, STREAM
from pantau.core.commands import Action
from pantau.core.contract import StreamFault
from pantau.core.mqtt import NotConnectedError
from pantau.core.wiretypes import ID_PATTERN

STREAM_LOOKBACK = "30d"  # a camera whose stream was not probed for this long is unknown here
PathIdent = Annotated[str, PathParam(pattern=ID_PATTERN, max_length=64)]


class ViewAcceptIn(BaseModel):
    """Why the new view is right (optional)."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=500, description="e.g. 're-aimed at the junction'")


class ViewAcceptOut(BaseModel):
    """A recorded acceptance."""

    model_config = ConfigDict(extra="forbid")

    site: str
    camera: str
    district: str
    view_score: float | None = Field(description="the latest probe's distance from the old view")
    accepted_by: str
    accepted_at: str
    audit_id: int = Field(description="the audit-trail row that records it")
    delivered: bool = Field(description="sent to the agent, which adopts the view at once")
    nonce: str | None = Field(description="the command's nonce (its answer carries it)")
    note: str = Field(description="what happens next")


async def _latest_stream(client: InfluxClient, site: str, camera: str) -> dict[str, object] | None:
    rows = series_rows(
        await client.query(
            f'SELECT last("fault") AS "fault", last("view_score") AS "view_score" FROM "{STREAM}" '
            f"WHERE \"{SITE_TAG}\" = '{site}' AND \"{CAMERA_TAG}\" = '{camera}' AND "
            f'time > now() - {STREAM_LOOKBACK} GROUP BY "{DISTRICT_TAG}"'
        )
    )
    return dict(rows[-1]) if rows else None


async def _deliver(request: Request, site: str, camera: str, who: str) -> tuple[str | None, str]:
    """Send ``accept_view`` to the site's agent: (its nonce, what happens next); no nonce when
    the API sends no commands or the broker did not take it."""
    state: Remediation = request.app.state.remediation
    if state.sender is None:
        return None, (
            "recorded only: this API sends no commands (pantau api --remediation); the agent "
            "learns the view by itself once it has been stable"
        )
    problems: ProblemStore = request.app.state.problems
    problem = (await asyncio.to_thread(problems.unresolved)).get(f"camera:{site}/{camera}")
    try:
        command = await state.sender.send(
            site,
            camera,
            Action.ACCEPT_VIEW,
            trigger=f"user:{who}",
            problem=problem.id if problem else None,
        )
    except (NotConnectedError, TimeoutError) as exc:
        return None, f"recorded, but the broker did not take the command ({exc}): accept again"
    return command.nonce, "sent: the agent adopts the current view and probes it again now"


def views_router() -> APIRouter:
    """POST /api/cameras/{site}/{camera}/view/accept."""
    router = APIRouter(tags=["camera views"])

    @router.post(
        "/api/cameras/{site}/{camera}/view/accept",
        response_model=ViewAcceptOut,
        responses={
            **WRITE_RESPONSES,
            404: problem_response("no such camera in your districts"),
            409: problem_response("the camera's latest probe did not say its view changed"),
        },
    )
    async def accept_view(
        request: Request,
        site: PathIdent,
        camera: PathIdent,
        body: ViewAcceptIn,
        principal: Annotated[Principal, Depends(require(Role.TECHNICIAN))],
        trail: Annotated[AuditTrail, Depends(audit_trail)],
    ) -> ViewAcceptOut:
        """Accept the changed view of a camera whose latest stream probe said view_changed:
        technician or above, the camera's district only (another district's camera: 404)."""
        latest = await _latest_stream(influx_client(request), site, camera)
        district = str(latest.get(DISTRICT_TAG, "")) if latest else ""
        if latest is None or not principal.sees(district):
            raise HTTPException(404, f"no stream-probed camera {site}/{camera}")
        if latest.get("fault") != StreamFault.VIEW_CHANGED:
            raise HTTPException(
                409,
                f"camera {site}/{camera}'s view has not changed (latest stream probe: "
                f"{latest.get('fault')}): nothing to accept",
            )
        score = latest.get("view_score")
        view_score = float(score) if isinstance(score, int | float) else None
        nonce, note = await _deliver(request, site, camera, principal.username)
        details = {
            "district": district,
            "view_score": view_score,
            "comment": body.comment,
            "nonce": nonce,
        }
        record = await asyncio.to_thread(
            trail.append,
            AuditEvent.VIEW_ACCEPTED,
            principal.username,
            f"camera:{site}/{camera}",
            details,
        )
        return ViewAcceptOut(
            site=site,
            camera=camera,
            district=district,
            view_score=view_score,
            accepted_by=principal.username,
            accepted_at=from_ns(record.at_ns).isoformat(),
            audit_id=record.id,
            delivered=nonce is not None,
            nonce=nonce,
            note=note,
        )

    return router
