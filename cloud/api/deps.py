"""What the API's routers share: problem+json responses and the clients and settings the
factory puts on ``app.state``. Who is asking comes from ``cloud.auth.deps``."""

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from cloud.api.schemas import Problem
from cloud.audit import AuditTrail
from cloud.influx import InfluxClient
from cloud.maintenance import StateStore

PROBLEM_JSON = "application/problem+json"


def problem_response(description: str) -> dict[str, Any]:
    """An OpenAPI response documented as RFC 7807 problem+json."""
    return {
        "model": Problem,
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem_response("no identity: sign in or send a personal token"),
    403: problem_response("role too low, or a session write without X-CSRF-Token"),
}


def problem(status: int, title: str, detail: str | None = None) -> JSONResponse:
    """An RFC 7807 response."""
    body = Problem(title=title, status=status, detail=detail).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def influx_client(request: Request) -> InfluxClient:
    """The app's InfluxDB client."""
    client: InfluxClient = request.app.state.influx
    return client


def state_store(request: Request) -> StateStore:
    """The app's maintenance-window store."""
    state: StateStore = request.app.state.store
    return state


def audit_trail(request: Request) -> AuditTrail:
    """The app's audit trail (on the state database)."""
    trail: AuditTrail = request.app.state.audit
    return trail
