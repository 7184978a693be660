"""The availability resource: up, down, unknown and maintenance seconds, as JSON or CSV."""

import csv
import datetime as dt
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from cloud.api.deps import influx_client, state_store
from cloud.api.maintenance import window_out
from cloud.api.schemas import AvailabilityOut, MaintenanceOut
from cloud.api.timeconv import to_ns
from cloud.auth.deps import read_principal
from cloud.auth.principal import Principal
from cloud.auth.scope import sees_window, site_districts, visible
from cloud.availability import GroupBy, MaintenanceSpan, compute
from cloud.influx import InfluxClient
from cloud.maintenance import StateStore

CSV_COLUMNS = list(AvailabilityOut.model_fields)
# Nanosecond timestamps (InfluxDB's) cover 1970 to 2262 as positive integers.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2262, 4, 11, tzinfo=dt.UTC)


def availability_router() -> APIRouter:
    """The route /api/availability."""
    fleet = APIRouter(prefix="/api", tags=["availability"])

    @fleet.get(
        "/availability",
        response_model=list[AvailabilityOut],
        responses={200: {"content": {"text/csv": {}}}},
    )
    async def availability(
        request: Request,
        client: Annotated[InfluxClient, Depends(influx_client)],
        state: Annotated[StateStore, Depends(state_store)],
        principal: Annotated[Principal, Depends(read_principal)],
        start: Annotated[dt.datetime, Query(alias="from", description="ISO 8601, inclusive")],
        end: Annotated[dt.datetime, Query(alias="to", description="ISO 8601, exclusive")],
        group_by: Annotated[GroupBy, Query()] = GroupBy.CAMERA,
        site: Annotated[str | None, Query(max_length=64)] = None,
        format: Annotated[Literal["json", "csv"], Query()] = "json",
    ) -> Any:
        """Up, down, unknown and maintenance seconds per camera, site or district (only the
        caller's districts: another district's site answers like an unknown one)."""
        start, end = _aware(start), _aware(end)
        if end <= start:
            raise HTTPException(400, "'to' must be after 'from'")
        if start < EARLIEST or end > LATEST:
            raise HTTPException(
                400, f"the window must lie between {EARLIEST.isoformat()} and {LATEST.isoformat()}"
            )
        windows = [
            MaintenanceSpan(
                to_ns(m.start), to_ns(m.end), site=m.site, camera=m.camera, district=m.district
            )
            for m in state.list(overlapping=(start, end), counting_only=True)
        ]
        rows = await compute(
            client,
            start_ns=to_ns(start),
            end_ns=to_ns(end),
            maintenance=windows,
            group_by=group_by,
            site=site,
            default_interval_s=request.app.state.default_probe_interval_s,
        )
        data = [row.as_dict() for row in visible(principal, rows)]
        if format == "csv":
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(data)
            return Response(out.getvalue(), media_type="text/csv")
        return data

    @fleet.get("/availability/maintenance", response_model=list[MaintenanceOut])
    async def availability_windows(
        state: Annotated[StateStore, Depends(state_store)],
        client: Annotated[InfluxClient, Depends(influx_client)],
        principal: Annotated[Principal, Depends(read_principal)],
        start: Annotated[dt.datetime, Query(alias="from", description="ISO 8601, inclusive")],
        end: Annotated[dt.datetime, Query(alias="to", description="ISO 8601, exclusive")],
    ) -> list[MaintenanceOut]:
        """Every maintenance window overlapping the period, as /api/availability weighs them:
        ``counts`` (approved, not cancelled) or not, who requested and approved it, when it was
        entered, ``retroactive`` when it was entered after it began."""
        start, end = _aware(start), _aware(end)
        if end <= start:
            raise HTTPException(400, "'to' must be after 'from'")
        sites = await site_districts(client, principal)
        return [
            window_out(m)
            for m in state.list(overlapping=(start, end))
            if sees_window(principal, m, sites)
        ]

    return fleet


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
