"""The maintenance resource: windows whose seconds count as maintenance, not downtime."""

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import Response

from cloud.api.deps import WRITE_RESPONSES, influx_client, problem_response, state_store
from cloud.api.schemas import MaintenanceIn, MaintenanceOut
from cloud.auth.deps import read_principal, require
from cloud.auth.principal import Principal, Role
from cloud.auth.scope import sees_window, site_districts
from cloud.influx import InfluxClient
from cloud.maintenance import StateStore


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
        """Maintenance windows (of one site, and those covering every site, if given) of the
        caller's districts."""
        sites = await site_districts(client, principal)
        return [
            MaintenanceOut(**asdict(m))
            for m in state.list(site=site)
            if sees_window(principal, m, sites)
        ]

    @maintenance.post(
        "",
        response_model=MaintenanceOut,
        status_code=201,
        responses={**WRITE_RESPONSES, 404: problem_response("no such site or district")},
    )
    async def create_maintenance(
        body: MaintenanceIn,
        state: Annotated[StateStore, Depends(state_store)],
        client: Annotated[InfluxClient, Depends(influx_client)],
        principal: Annotated[Principal, Depends(require(Role.TECHNICIAN))],
    ) -> MaintenanceOut:
        """Plan maintenance: its seconds count as maintenance, not downtime (a technician or
        above, in their own districts)."""
        district = body.district
        if principal.districts is not None:
            # A scoped window is pinned to its site's district, so it stays in scope.
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
        created = state.add(
            site=body.site,
            district=district,
            camera=body.camera,
            start=body.start,
            end=body.end,
            reason=body.reason,
            created_by=principal.username,
        )
        return MaintenanceOut(**asdict(created))

    @maintenance.delete(
        "/{window_id}",
        status_code=204,
        responses={**WRITE_RESPONSES, 404: problem_response("no such window")},
    )
    async def delete_maintenance(
        window_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
        state: Annotated[StateStore, Depends(state_store)],
        client: Annotated[InfluxClient, Depends(influx_client)],
        principal: Annotated[Principal, Depends(require(Role.SUPERVISOR))],
    ) -> Response:
        """Remove a window (a supervisor or above, in their own districts)."""
        window = state.get(window_id)
        sites = await site_districts(client, principal)
        if window is None or not sees_window(principal, window, sites):
            raise HTTPException(404, f"no maintenance window {window_id}")
        if not state.delete(window_id):
            raise HTTPException(404, f"no maintenance window {window_id}")
        return Response(status_code=204)

    return maintenance
