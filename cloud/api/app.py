"""The API app factory: dependencies come in, clients start and stop in ``lifespan``, and each
resource is a router of its own (fleet, availability, maintenance, problems)."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud.api.availability import availability_router
from cloud.api.deps import problem, problem_response, token_check
from cloud.api.fleet import fleet_router
from cloud.api.maintenance import maintenance_router
from cloud.api.page import technician_page
from cloud.api.problems import problems_router
from cloud.api.report import report_router
from cloud.influx import InfluxClient, InfluxError, InfluxSettings, InfluxTimeoutError
from cloud.maintenance import StateStore
from cloud.problems.store import ProblemStore
from cloud.schema import DEFAULT_PROBE_INTERVAL_S, FRESH_S

log = logging.getLogger(__name__)


def create_app(
    *,
    influx: InfluxSettings,
    state_url: str,
    token: str | None,
    stale_after_s: float = FRESH_S,
    default_probe_interval_s: float = DEFAULT_PROBE_INTERVAL_S,
) -> FastAPI:
    """Build the API. ``token`` guards every write; without one, writes are refused. A camera
    whose latest probe is older than ``stale_after_s`` is unknown (the schema's freshness rule).
    """

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
            400: problem_response("bad request"),
            422: problem_response("invalid parameters or body"),
            503: problem_response("InfluxDB unavailable"),
            504: problem_response("InfluxDB did not answer in time"),
        },
    )
    app.state.stale_after_s = stale_after_s
    app.state.default_probe_interval_s = default_probe_interval_s
    _add_problem_handlers(app)
    require_token = token_check(token)
    app.include_router(fleet_router())
    app.include_router(availability_router())
    app.include_router(report_router())
    app.include_router(maintenance_router(require_token))
    app.include_router(problems_router(require_token, problem_response))
    app.add_api_route("/", technician_page, include_in_schema=False, response_class=HTMLResponse)
    return app


def _add_problem_handlers(app: FastAPI) -> None:
    """Every error answers RFC 7807 problem+json; internal details stay in the log."""

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
        if isinstance(exc, InfluxTimeoutError):
            return problem(
                504,
                "InfluxDB timeout",
                f"a query took longer than {app.state.influx.settings.timeout_s:g} s "
                "(pantau api --influx-timeout); InfluxDB answered nothing in time: "
                f"{str(exc)[:300]}",
            )
        return problem(503, "InfluxDB unavailable", "the time-series database did not answer")


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
        504: "timeout",
    }
    return titles.get(status, "error")
