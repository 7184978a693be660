"""The fleet resource: sites and cameras as they are now."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from cloud.api.deps import influx_client
from cloud.api.schemas import CameraOut, SiteOut
from cloud.api.timeconv import from_ns
from cloud.auth.deps import read_principal
from cloud.auth.principal import Principal
from cloud.fleet import Status, current_cameras, current_sites
from cloud.influx import InfluxClient


def fleet_router() -> APIRouter:
    """Routes under /api: /sites, /cameras."""
    fleet = APIRouter(prefix="/api", tags=["fleet"])

    @fleet.get("/sites", response_model=list[SiteOut])
    async def sites(
        client: Annotated[InfluxClient, Depends(influx_client)],
        principal: Annotated[Principal, Depends(read_principal)],
    ) -> list[SiteOut]:
        """Every site's latest online/offline state (reads the last day; older only for the
        sites silent since); only the caller's districts."""
        return [
            SiteOut(
                site=s.site,
                district=s.district,
                online=s.online,
                since=from_ns(s.since_ns),
                lat=s.lat,
                lon=s.lon,
            )
            for s in await current_sites(client)
            if principal.sees(s.district)
        ]

    @fleet.get("/cameras", response_model=list[CameraOut])
    async def cameras(
        request: Request,
        client: Annotated[InfluxClient, Depends(influx_client)],
        principal: Annotated[Principal, Depends(read_principal)],
        status: Annotated[Literal["up", "degraded", "down", "unknown"] | None, Query()] = None,
    ) -> list[CameraOut]:
        """Every camera's current state: up, degraded (picture fault), down, or unknown when it
        was not probed within the freshness window (reads that window only, and the series
        index for the cameras to list)."""
        found = await current_cameras(client, stale_after_s=request.app.state.stale_after_s)
        return [
            CameraOut(
                site=c.site,
                district=c.district,
                camera=c.camera,
                status=c.status.value,
                since=from_ns(c.since_ns) if c.since_ns else None,
                cause=c.cause,
                last_seen=from_ns(c.last_seen_ns) if c.last_seen_ns is not None else None,
            )
            for c in found
            if (status is None or c.status is Status(status)) and principal.sees(c.district)
        ]

    return fleet
