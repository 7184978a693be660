"""The API app factory: dependencies come in, clients start and stop in ``lifespan``."""

import csv
import datetime as dt
import hmac
import io
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud.api.page import technician_page
from cloud.api.problems import problems_router
from cloud.api.schemas import (
    AvailabilityOut,
    CameraOut,
    MaintenanceIn,
    MaintenanceOut,
    Problem,
    SiteOut,
)
from cloud.api.timeconv import from_ns, to_ns
from cloud.availability import GroupBy, MaintenanceSpan, compute
from cloud.fleet import Status, current_cameras, current_sites
from cloud.influx import InfluxClient, InfluxError, InfluxSettings
from cloud.maintenance import StateStore
from cloud.problems.store import ProblemStore

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


def _problem_response(description: str) -> dict[str, Any]:
    """An OpenAPI response documented as RFC 7807 problem+json."""
    return {
        "model": Problem,
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


CSV_COLUMNS = list(AvailabilityOut.model_fields)
# Nanosecond timestamps (InfluxDB's) cover 1970 to 2262 as positive integers.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2262, 4, 11, tzinfo=dt.UTC)


def problem(status: int, title: str, detail: str | None = None) -> JSONResponse:
    """An RFC 7807 response."""
    body = Problem(title=title, status=status, detail=detail).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def create_app(
    *,
    influx: InfluxSettings,
    state_url: str,
    token: str | None,
    stale_after_s: float = 30.0,
    default_probe_interval_s: float = 10.0,
) -> FastAPI:
    """Build the API. ``token`` guards every write; without one, writes are refused."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.influx = InfluxClient(influx)
        app.state.store = StateStore(state_url)
        app.state.problems = ProblemStore(state_url)
        try:
            yield
        finally:
            await app.state.influx.aclose()
            app.state.store.close()
            app.state.problems.close()

    app = FastAPI(
        title="pantau API",
        description="Fleet state, availability for maintenance contracts, maintenance windows, "
        "problems. The technician page is served at /.",
        version="1",
        lifespan=lifespan,
        responses={
            400: _problem_response("bad request"),
            422: _problem_response("invalid parameters or body"),
            503: _problem_response("InfluxDB unavailable"),
        },
    )
    bearer = HTTPBearer(auto_error=False)

    def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if token is None:
            raise HTTPException(
                403, "writes are disabled: start the API with a token (--token or PANTAU_API_TOKEN)"
            )
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token")

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, _title(exc.status_code), str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_problem(_r: Request, exc: RequestValidationError) -> JSONResponse:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return problem(422, "invalid request", details)

    @app.exception_handler(Exception)
    async def internal_problem(_r: Request, exc: Exception) -> JSONResponse:
        # The details go to the log, never to the client.
        log.error("internal error: %s", type(exc).__name__, exc_info=exc)
        return problem(500, "internal error", "the server failed; its log has the details")

    @app.exception_handler(InfluxError)
    async def influx_problem(_r: Request, exc: InfluxError) -> JSONResponse:
        log.warning("InfluxDB query failed: %s", exc)
        return problem(503, "InfluxDB unavailable", "the time-series database did not answer")

    def influx_client(request: Request) -> InfluxClient:
        client: InfluxClient = request.app.state.influx
        return client

    def store(request: Request) -> StateStore:
        state: StateStore = request.app.state.store
        return state

    fleet = APIRouter(prefix="/api", tags=["fleet"])

    @fleet.get("/sites", response_model=list[SiteOut])
    async def sites(client: Annotated[InfluxClient, Depends(influx_client)]) -> list[SiteOut]:
        """Every site's latest online/offline state."""
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
        ]

    @fleet.get("/cameras", response_model=list[CameraOut])
    async def cameras(
        client: Annotated[InfluxClient, Depends(influx_client)],
        status: Annotated[Literal["up", "degraded", "down", "unknown"] | None, Query()] = None,
    ) -> list[CameraOut]:
        """Every camera's current state: up, degraded (picture fault), down, or unknown when no
        fresh probe exists."""
        found = await current_cameras(client, stale_after_s=stale_after_s)
        return [
            CameraOut(
                site=c.site,
                district=c.district,
                camera=c.camera,
                status=c.status.value,
                since=from_ns(c.since_ns) if c.since_ns else None,
                cause=c.cause,
                last_seen=from_ns(c.last_seen_ns),
            )
            for c in found
            if status is None or c.status is Status(status)
        ]

    @fleet.get(
        "/availability",
        response_model=list[AvailabilityOut],
        responses={200: {"content": {"text/csv": {}}}},
    )
    async def availability(
        client: Annotated[InfluxClient, Depends(influx_client)],
        state: Annotated[StateStore, Depends(store)],
        start: Annotated[dt.datetime, Query(alias="from", description="ISO 8601, inclusive")],
        end: Annotated[dt.datetime, Query(alias="to", description="ISO 8601, exclusive")],
        group_by: Annotated[GroupBy, Query()] = GroupBy.CAMERA,
        site: Annotated[str | None, Query(max_length=64)] = None,
        format: Annotated[Literal["json", "csv"], Query()] = "json",
    ) -> Any:
        """Up, down, unknown and maintenance seconds per camera, site or district."""
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
            for m in state.list(overlapping=(start, end))
        ]
        rows = await compute(
            client,
            start_ns=to_ns(start),
            end_ns=to_ns(end),
            maintenance=windows,
            group_by=group_by,
            site=site,
            default_interval_s=default_probe_interval_s,
        )
        data = [row.as_dict() for row in rows]
        if format == "csv":
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(data)
            return Response(out.getvalue(), media_type="text/csv")
        return data

    maintenance = APIRouter(prefix="/api/maintenance", tags=["maintenance"])

    @maintenance.get("", response_model=list[MaintenanceOut])
    def list_maintenance(
        state: Annotated[StateStore, Depends(store)],
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
            401: _problem_response("missing or wrong token"),
            403: _problem_response("writes disabled"),
        },
    )
    def create_maintenance(
        body: MaintenanceIn, state: Annotated[StateStore, Depends(store)]
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
            401: _problem_response("missing or wrong token"),
            403: _problem_response("writes disabled"),
            404: _problem_response("no such window"),
        },
    )
    def delete_maintenance(
        window_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
        state: Annotated[StateStore, Depends(store)],
    ) -> Response:
        """Remove a window."""
        if not state.delete(window_id):
            raise HTTPException(404, f"no maintenance window {window_id}")
        return Response(status_code=204)

    app.include_router(fleet)
    app.include_router(maintenance)
    app.include_router(problems_router(require_token, _problem_response))
    app.add_api_route("/", technician_page, include_in_schema=False, response_class=HTMLResponse)
    return app


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _title(status: int) -> str:
    titles = {
        400: "bad request",
        401: "unauthorized",
        403: "forbidden",
        404: "not found",
        409: "conflict",
        405: "method not allowed",
        422: "invalid request",
        500: "internal error",
    }
    return titles.get(status, "error")
