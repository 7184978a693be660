"""The API app factory: dependencies come in, clients start and stop in ``lifespan``, and each
resource is a router of its own (fleet, availability, maintenance, problems, identity)."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud.api.audit import audit_router
from cloud.api.availability import availability_router
from cloud.api.deps import problem, problem_response
from cloud.api.fleet import fleet_router
from cloud.api.i18n import i18n_router
from cloud.api.inventory import inventory_router
from cloud.api.maintenance import maintenance_router
from cloud.api.page import add_security_headers, page_router
from cloud.api.problems import problems_router
from cloud.api.remediation import remediation_router, remediation_state
from cloud.api.report import report_router
from cloud.api.services import services_router, status_router
from cloud.api.views import views_router
from cloud.auth.identity import Identity
from cloud.auth.oidc import OidcClient, oidc_router
from cloud.auth.routes import auth_router
from cloud.auth.settings import AuthSettings
from cloud.i18n import DEFAULT_LANG
from cloud.influx import InfluxClient, InfluxError, InfluxSettings, InfluxTimeoutError
from cloud.maintenance import StateStore
from cloud.maintenance_rules import MaintenancePolicy
from cloud.problems.store import ProblemStore
from cloud.remediation.config import RemediationConfig
from cloud.schema import DEFAULT_PROBE_INTERVAL_S, FRESH_S

log = logging.getLogger(__name__)


def create_app(
    *,
    influx: InfluxSettings,
    state_url: str,
    auth: AuthSettings | None = None,
    stale_after_s: float = FRESH_S,
    default_probe_interval_s: float = DEFAULT_PROBE_INTERVAL_S,
    maintenance_policy: MaintenancePolicy | None = None,
    lang: str = DEFAULT_LANG,
    remediation: RemediationConfig | None = None,
    services_catalogue: Path | None = None,
) -> FastAPI:
    """Build the API. Every read and write needs a session or a personal token (``auth``:
    reads may be public, OpenID Connect may sign people in). A camera whose latest probe is
    older than ``stale_after_s`` is unknown (the schema's freshness rule).
    """
    auth = auth or AuthSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.influx = InfluxClient(influx)
        app.state.store = StateStore(state_url)
        app.state.audit = app.state.store.audit  # the audit trail, on the state database
        app.state.problems = ProblemStore(state_url)
        app.state.identity = Identity(state_url, session_ttl_s=auth.session_ttl_s)
        app.state.oidc = OidcClient(auth.oidc, app.state.identity.engine) if auth.oidc else None
        try:
            async with remediation_state(remediation, state_url) as app.state.remediation:
                yield
        finally:
            await app.state.influx.aclose()
            if app.state.oidc is not None:
                await app.state.oidc.aclose()
            app.state.identity.close()
            app.state.store.close()
            app.state.problems.close()

    app = FastAPI(
        title="pantau API",
        description="Fleet state, availability for maintenance contracts, maintenance windows, "
        "problems. Every route needs a session (POST /auth/login) or a personal token "
        "(Authorization: Bearer); writes through a session need X-CSRF-Token. The technician "
        "page is served at /.",
        version="1",
        lifespan=lifespan,
        responses={
            400: problem_response("bad request"),
            401: problem_response("no identity: sign in or send a personal token"),
            422: problem_response("invalid parameters or body"),
            503: problem_response("InfluxDB unavailable"),
            504: problem_response("InfluxDB did not answer in time"),
        },
    )
    app.state.stale_after_s = stale_after_s
    app.state.default_probe_interval_s = default_probe_interval_s
    app.state.auth = auth
    app.state.maintenance_policy = maintenance_policy or MaintenancePolicy()
    app.state.lang = lang  # the deployment's language before anyone signs in
    app.state.services_catalogue = services_catalogue  # services.yaml (docs/services.md)
    _add_problem_handlers(app)
    add_security_headers(app)
    app.include_router(auth_router(problem_response))
    if auth.oidc is not None:
        app.include_router(oidc_router())
    app.include_router(fleet_router())
    app.include_router(availability_router())
    app.include_router(report_router())
    app.include_router(inventory_router())
    app.include_router(maintenance_router())
    app.include_router(problems_router(problem_response))
    app.include_router(views_router())
    app.include_router(page_router())
    app.include_router(i18n_router())
    app.include_router(audit_router())
    app.include_router(remediation_router())
    app.include_router(services_router())
    app.include_router(status_router())
    return app


def _add_problem_handlers(app: FastAPI) -> None:
    """Every error answers RFC 7807 problem+json; internal details stay in the log."""

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = problem(exc.status_code, _title(exc.status_code), str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

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
        429: "too many requests",
        500: "internal error",
        504: "timeout",
    }
    return titles.get(status, "error")
