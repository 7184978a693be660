"""The maintenance resource: windows whose seconds count as maintenance, not downtime."""

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import Response

from cloud.api.deps import TokenCheck, problem_response, state_store
from cloud.api.schemas import MaintenanceIn, MaintenanceOut
from cloud.maintenance import StateStore


def maintenance_router(require_token: TokenCheck) -> APIRouter:
    """Routes under /api/maintenance; writes go through ``require_token``."""
    maintenance = APIRouter(prefix="/api/maintenance", tags=["maintenance"])

    @maintenance.get("", response_model=list[MaintenanceOut])
    def list_maintenance(
        state: Annotated[StateStore, Depends(state_store)],
        site: Annotated[str | None, Query(max_length=64)] = None,
    ) -> list[MaintenanceOut]:
        """Maintenance windows (of one site, and those covering every site, if given)."""
        return [MaintenanceOut(**asdict(m)) for m in state.list(site=site)]

    @maintenance.post(
        "",
        response_model=MaintenanceOut,
        status_code=201,
        dependencies=[Depends(require_token)],
        responses={
            401: problem_response("missing or wrong token"),
            403: problem_response("writes disabled"),
        },
    )
    def create_maintenance(
        body: MaintenanceIn, state: Annotated[StateStore, Depends(state_store)]
    ) -> MaintenanceOut:
        """Plan maintenance: its seconds count as maintenance, not downtime."""
        created = state.add(
            site=body.site,
            district=body.district,
            camera=body.camera,
            start=body.start,
            end=body.end,
            reason=body.reason,
            created_by=body.created_by,
        )
        return MaintenanceOut(**asdict(created))

    @maintenance.delete(
        "/{window_id}",
        status_code=204,
        dependencies=[Depends(require_token)],
        responses={
            401: problem_response("missing or wrong token"),
            403: problem_response("writes disabled"),
            404: problem_response("no such window"),
        },
    )
    def delete_maintenance(
        window_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
        state: Annotated[StateStore, Depends(state_store)],
    ) -> Response:
        """Remove a window."""
        if not state.delete(window_id):
            raise HTTPException(404, f"no maintenance window {window_id}")
        return Response(status_code=204)

    return maintenance
