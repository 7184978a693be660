"""Manual remediation: power-cycle or reboot one camera (technician or above, own districts),
and the actions recorded against a problem or a camera, with the agents' answers (read from
InfluxDB when asked, so the page shows an outcome without the problems service)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import WRITE_RESPONSES, influx_client, problem_response
from cloud.api.timeconv import from_ns
from cloud.auth.deps import read_principal, require
from cloud.auth.principal import Principal, Role
from cloud.influx import InfluxClient, InfluxError, series_rows
from cloud.problems.store import ProblemStore
from cloud.remediation.config import RemediationConfig
from cloud.remediation.history import ActionLog, ActionRecord
from cloud.remediation.observe import outcomes
from cloud.remediation.sender import CommandSender, read_key
from cloud.remediation.service import command_link
from cloud.schema import CAMERA, CAMERA_TAG, DISTRICT_TAG, SITE_TAG
from pantau.core.commands import Action
from pantau.core.wiretypes import ID_PATTERN

log = logging.getLogger(__name__)

CAMERA_LOOKBACK = "30d"
CAMERA_ACTIONS_S = 86_400  # a camera's actions listed: those of the last day
PathIdent = Annotated[str, PathParam(pattern=ID_PATTERN, max_length=64)]


@dataclass(frozen=True)
class Remediation:
    """What the routes need: the sender (None: not configured) and the action log."""

    sender: CommandSender | None
    actions: ActionLog


@contextlib.asynccontextmanager
async def remediation_state(
    config: RemediationConfig | None, state_url: str
) -> AsyncIterator[Remediation]:
    """The sender (broker link started) and action log while the app runs; no sender without
    a config (actions then answer 409)."""
    if config is None:
        actions = ActionLog(state_url)
        try:
            yield Remediation(None, actions)
        finally:
            actions.close()
        return
    path = config.key_path()
    if path is None:
        raise RuntimeError(
            "remediation needs the command key: remediation.key_file or PANTAU_COMMAND_KEY_FILE"
        )
    key = read_key(path)
    link = command_link(config)
    actions = ActionLog(state_url)
    await link.start()
    try:
        yield Remediation(CommandSender(link, key, ttl_s=config.command_ttl_s), actions)
    finally:
        await link.close()
        actions.close()


class ActionOut(BaseModel):
    """One power-cycle or reboot and what became of it."""

    model_config = ConfigDict(extra="forbid")

    id: int
    site: str
    camera: str
    action: str
    trigger: str = Field(description="'policy' or 'user:<name>'")
    problem_id: int | None
    issued_at: str
    result: str | None = Field(description="done / failed / refused; null: no answer yet")
    up_after: bool | None
    recovery_s: float | None
    answered_at: str | None
    detail: str | None


def action_out(a: ActionRecord) -> ActionOut:
    """The API's view of a recorded action."""
    return ActionOut(
        id=a.id,
        site=a.site,
        camera=a.camera,
        action=a.action,
        trigger=a.trigger,
        problem_id=a.problem_id,
        issued_at=from_ns(a.issued_ns).isoformat(),
        result=a.result,
        up_after=a.up_after,
        recovery_s=a.recovery_s,
        answered_at=from_ns(a.answered_ns).isoformat() if a.answered_ns else None,
        detail=a.detail,
    )


def _remediation(request: Request) -> Remediation:
    state: Remediation = request.app.state.remediation
    return state


async def _settle(request: Request, state: Remediation) -> None:
    """Store the agents' answers of the last day against their actions (idempotent); an
    InfluxDB that does not answer leaves the actions as they were (logged)."""
    if not await asyncio.to_thread(state.actions.unanswered):
        return
    client = influx_client(request)

    async def query(q: str) -> list[dict[str, Any]]:
        return series_rows(await client.query(q))

    try:
        found = await outcomes(query, time.time_ns())
    except InfluxError as exc:
        log.warning("actions: the agents' answers could not be read (%s)", exc)
        return
    for outcome in found:
        await asyncio.to_thread(state.actions.settle, outcome)


async def _camera_district(client: InfluxClient, site: str, camera: str) -> str | None:
    rows = series_rows(
        await client.query(
            f'SELECT last("up") FROM "{CAMERA}" WHERE "{SITE_TAG}" = \'{site}\' AND '
            f"\"{CAMERA_TAG}\" = '{camera}' AND time > now() - {CAMERA_LOOKBACK} "
            f'GROUP BY "{DISTRICT_TAG}"'
        )
    )
    return str(rows[-1].get(DISTRICT_TAG, "")) if rows else None


def remediation_router() -> APIRouter:
    """POST /api/cameras/{site}/{camera}/power-cycle and /reboot; GET a problem's actions."""
    router = APIRouter(tags=["camera actions"])

    async def act(
        request: Request, site: str, camera: str, action: Action, principal: Principal
    ) -> ActionOut:
        state = _remediation(request)
        district = await _camera_district(influx_client(request), site, camera)
        if district is None or not principal.sees(district):
            raise HTTPException(404, f"no camera {site}/{camera}")
        if state.sender is None:
            raise HTTPException(
                409, "remediation is not configured: start the API with a remediation config"
            )
        problems: ProblemStore = request.app.state.problems
        unresolved = await asyncio.to_thread(problems.unresolved)
        problem = unresolved.get(f"camera:{site}/{camera}")
        command = await state.sender.send(
            site,
            camera,
            action,
            trigger=f"user:{principal.username}",
            problem=problem.id if problem else None,
        )
        record = await asyncio.to_thread(state.actions.record, command, district=district)
        return action_out(record)

    responses: dict[int | str, dict[str, Any]] = {
        **WRITE_RESPONSES,
        404: problem_response("no such camera in your districts"),
        409: problem_response("remediation not configured on this API"),
    }

    @router.post(
        "/api/cameras/{site}/{camera}/power-cycle",
        response_model=ActionOut,
        status_code=202,
        responses=responses,
    )
    async def power_cycle(
        request: Request,
        site: PathIdent,
        camera: PathIdent,
        principal: Annotated[Principal, Depends(require(Role.TECHNICIAN))],
    ) -> ActionOut:
        """Turn the camera's PoE off and on (signed command to its site's agent)."""
        return await act(request, site, camera, Action.POWER_CYCLE, principal)

    @router.post(
        "/api/cameras/{site}/{camera}/reboot",
        response_model=ActionOut,
        status_code=202,
        responses=responses,
    )
    async def reboot(
        request: Request,
        site: PathIdent,
        camera: PathIdent,
        principal: Annotated[Principal, Depends(require(Role.TECHNICIAN))],
    ) -> ActionOut:
        """Reboot the camera over ONVIF (signed command to its site's agent)."""
        return await act(request, site, camera, Action.REBOOT, principal)

    @router.get(
        "/api/problems/{problem_id}/actions",
        response_model=list[ActionOut],
        responses={404: problem_response("no such problem in your districts")},
    )
    async def problem_actions(
        request: Request,
        problem_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
        principal: Annotated[Principal, Depends(read_principal)],
    ) -> list[ActionOut]:
        """The power-cycles and reboots sent for a problem, oldest first, with their outcome."""
        problems: ProblemStore = request.app.state.problems
        known = await asyncio.to_thread(problems.get, problem_id)
        if known is None or not principal.sees(known.district):
            raise HTTPException(404, f"no problem {problem_id}")
        state = _remediation(request)
        await _settle(request, state)
        return [
            action_out(a) for a in await asyncio.to_thread(state.actions.of_problem, problem_id)
        ]

    @router.get(
        "/api/cameras/{site}/{camera}/actions",
        response_model=list[ActionOut],
        responses={404: problem_response("no such camera in your districts")},
    )
    async def camera_actions(
        request: Request,
        site: PathIdent,
        camera: PathIdent,
        principal: Annotated[Principal, Depends(read_principal)],
    ) -> list[ActionOut]:
        """The camera's power-cycles and reboots of the last day, oldest first, with their
        outcome (null result: no answer yet)."""
        district = await _camera_district(influx_client(request), site, camera)
        if district is None or not principal.sees(district):
            raise HTTPException(404, f"no camera {site}/{camera}")
        state = _remediation(request)
        await _settle(request, state)
        since = time.time_ns() - CAMERA_ACTIONS_S * 10**9
        found = await asyncio.to_thread(state.actions.since, since, site=site)
        return [action_out(a) for a in found if a.camera == camera]

    return router
