"""The maintenance resource: windows whose seconds count as maintenance, not downtime, once a
supervisor approved them. Windows are never deleted; DELETE cancels (cloud/maintenance_rules.py)."""

import asyncio
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from cloud.api.deps import WRITE_RESPONSES, influx_client, problem_response, state_store
from cloud.api.schemas import CancelIn, MaintenanceIn, MaintenanceOut
from cloud.auth.deps import read_principal, require
from cloud.auth.principal import Principal, Role
from cloud.auth.scope import sees_window, site_districts
from cloud.influx import InfluxClient
from cloud.maintenance import Maintenance, StateStore, WindowKind, WindowStateError
from cloud.maintenance_rules import (
    MaintenancePolicy,
    NotAllowedError,
    ReasonRequiredError,
    WindowRequest,
    approve_window,
    cancel_window,
    request_window,
)
from cloud.services.catalogue import load_catalogue
from pantau.core.configfile import ConfigError

WindowId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
STATE_RESPONSES = {
    **WRITE_RESPONSES,
    404: problem_response("no such window"),
    409: problem_response("already approved or cancelled"),
}


def window_out(window: Maintenance) -> MaintenanceOut:
    """The API's view of a stored window and its record."""
    return MaintenanceOut(
        **{k: v for k, v in asdict(window).items() if k != "approval"},
        approval=window.approval.value,
        status=window.status.value,
        counts=window.counts,
    )


def maintenance_policy(request: Request) -> MaintenancePolicy:
    """The deployment's maintenance policy (``pantau api`` flags)."""
    policy: MaintenancePolicy = getattr(request.app.state, "maintenance_policy", None) or (
        MaintenancePolicy()
    )
    return policy


async def visible_window(
    window_id: int, state: StateStore, client: InfluxClient, principal: Principal
) -> Maintenance:
    """The window if it exists for ``principal`` (another district's: 404 like a missing one)."""
    window = await asyncio.to_thread(state.get, window_id)
    sites = await site_districts(client, principal)
    if window is None or not sees_window(principal, window, sites):
        raise HTTPException(404, f"no maintenance window {window_id}")
    return window


async def cancel(
    window_id: int,
    reason: str | None,
    state: StateStore,
    client: InfluxClient,
    principal: Principal,
) -> Maintenance:
    """Cancel a window in scope; refusals as problem+json."""
    window = await visible_window(window_id, state, client, principal)
    try:
        return await asyncio.to_thread(cancel_window, state, principal, window, reason=reason)
    except NotAllowedError as exc:
        raise HTTPException(403, str(exc)) from None
    except WindowStateError as exc:
        raise HTTPException(409, str(exc)) from None


async def pinned_district(
    body: MaintenanceIn, client: InfluxClient, principal: Principal
) -> str | None:
    """The window's district; a scoped principal's window is pinned to its site's district
    (so it stays in scope), another district's site or district does not exist (404)."""
    district = body.district
    if body.service is not None and district is None and principal.districts is not None:
        raise HTTPException(
            403,
            f"a window of the whole service {body.service} needs a user of every district; "
            "give your district to plan maintenance of its path to the service",
        )
    if principal.districts is not None:
        sites = await site_districts(client, principal)
        if body.site is not None:
            found = sites.get(body.site)
            if found is None or not principal.sees(found):
                raise HTTPException(404, f"no site {body.site}")
            if district is not None and district != found:
                raise HTTPException(422, f"site {body.site} is in district {found}")
            district = found
        elif not principal.sees(district):
            raise HTTPException(404, f"no district {district}")
    return district


def known_service(request: Request, name: str) -> None:
    """404 unless ``name`` is in the API's service catalogue (``--services``; without one,
    any name is taken: the problems service may judge a catalogue the API does not read)."""
    path = getattr(request.app.state, "services_catalogue", None)
    if path is None:
        return
    try:
        names = {s.name for s in load_catalogue(path).services}
    except ConfigError as exc:
        raise HTTPException(503, f"the service catalogue is invalid: {exc}") from None
    if name not in names:
        raise HTTPException(404, f"no service {name} in the catalogue")


def maintenance_router() -> APIRouter:
    """Routes under /api/maintenance, scoped to the caller's districts."""
    maintenance = APIRouter(prefix="/api/maintenance", tags=["maintenance"])

    @maintenance.get("", response_model=list[MaintenanceOut])
    async def list_maintenance(
        state: Annotated[StateStore, Depends(state_store)],
        client: Annotated[InfluxClient, Depends(influx_client)],
        principal: Annotated[Principal, Depends(read_principal)],
        site: Annotated[str | None, Query(max_length=64)] = None,
    ) -> list[MaintenanceOut]:
        """Every maintenance window (of one site, and those covering every site, if given) of
        the caller's districts, the services' too: requested, approved and cancelled, with who
        and when."""
        sites = await site_districts(client, principal)
        windows = await asyncio.to_thread(state.list, site=site, kind=WindowKind.ALL)
        return [window_out(m) for m in windows if sees_window(principal, m, sites)]

    @maintenance.post(
        "",
        response_model=MaintenanceOut,
        status_code=201,
        responses={
            **WRITE_RESPONSES,
            403: problem_response("role too low, or a technician's window that already began"),
            404: problem_response("no such site, district or service"),
        },
    )
    async def create_maintenance(
        http: Request,
        body: MaintenanceIn,
        state: Annotated[StateStore, Depends(state_store)],
        client: Annotated[InfluxClient, Depends(influx_client)],
        principal: Annotated[Principal, Depends(require(Role.TECHNICIAN))],
        policy: Annotated[MaintenancePolicy, Depends(maintenance_policy)],
    ) -> MaintenanceOut:
        """Enter a window (a technician or above, in their own districts). A technician's
        window counts once a supervisor approves it; a supervisor's at once. A window that
        began more than 5 minutes ago needs a supervisor and ``retroactive_reason``."""
        district = await pinned_district(body, client, principal)
        if body.service is not None:
            known_service(http, body.service)
        request = WindowRequest(
            site=body.site,
            district=district,
            camera=body.camera,
            start=body.start,
            end=body.end,
            reason=body.reason,
            retroactive_reason=body.retroactive_reason,
            service=body.service,
        )
        try:
            created = await asyncio.to_thread(request_window, state, principal, request, policy)
        except NotAllowedError as exc:
            raise HTTPException(403, str(exc)) from None
        except ReasonRequiredError as exc:
            raise HTTPException(422, str(exc)) from None
        return window_out(created)

    @maintenance.post(
        "/{window_id}/approve", response_model=MaintenanceOut, responses=STATE_RESPONSES
    )
    async def approve_maintenance(
        window_id: WindowId,
        state: Annotated[StateStore, Depends(state_store)],
        client: Annotated[InfluxClient, Depends(influx_client)],
        principal: Annotated[Principal, Depends(require(Role.SUPERVISOR))],
    ) -> MaintenanceOut:
        """Approve a requested window: from now on its seconds count as maintenance (a
        supervisor or above, in their own districts)."""
        await visible_window(window_id, state, client, principal)
        try:
            approved = await asyncio.to_thread(approve_window, state, principal, window_id)
        except WindowStateError as exc:
            raise HTTPException(409, str(exc)) from None
        return window_out(approved)

    @maintenance.post(
        "/{window_id}/cancel", response_model=MaintenanceOut, responses=STATE_RESPONSES
    )
    async def cancel_maintenance(
        window_id: WindowId,
        body: CancelIn,
        state: Annotated[StateStore, Depends(state_store)],
        client: Annotated[InfluxClient, Depends(influx_client)],
        principal: Annotated[Principal, Depends(require(Role.TECHNICIAN))],
    ) -> MaintenanceOut:
        """Cancel a window: it stays listed, marked cancelled, and stops counting (a supervisor,
        or a technician withdrawing their own request before it is approved)."""
        return window_out(await cancel(window_id, body.reason, state, client, principal))

    @maintenance.delete("/{window_id}", status_code=204, responses=STATE_RESPONSES)
    async def delete_maintenance(
        window_id: WindowId,
        state: Annotated[StateStore, Depends(state_store)],
        client: Annotated[InfluxClient, Depends(influx_client)],
        principal: Annotated[Principal, Depends(require(Role.TECHNICIAN))],
        reason: Annotated[str | None, Query(max_length=500)] = None,
    ) -> Response:
        """Cancel a window, as POST .../cancel does: nothing is ever deleted."""
        await cancel(window_id, reason, state, client, principal)
        return Response(status_code=204)

    return maintenance
