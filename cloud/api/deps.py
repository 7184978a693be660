"""What the API's routers share: problem+json responses, the token check, and the clients and
settings the factory puts on ``app.state``."""

import hmac
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cloud.api.schemas import Problem
from cloud.influx import InfluxClient
from cloud.maintenance import StateStore

PROBLEM_JSON = "application/problem+json"
TokenCheck = Callable[..., None]


def problem_response(description: str) -> dict[str, Any]:
    """An OpenAPI response documented as RFC 7807 problem+json."""
    return {
        "model": Problem,
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem_response("missing or wrong token"),
    403: problem_response("writes disabled"),
}


def problem(status: int, title: str, detail: str | None = None) -> JSONResponse:
    """An RFC 7807 response."""
    body = Problem(title=title, status=status, detail=detail).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def token_check(token: str | None) -> TokenCheck:
    """A dependency that lets a request through only with ``Authorization: Bearer <token>``."""
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

    return require_token


def influx_client(request: Request) -> InfluxClient:
    """The app's InfluxDB client."""
    client: InfluxClient = request.app.state.influx
    return client


def state_store(request: Request) -> StateStore:
    """The app's maintenance-window store."""
    state: StateStore = request.app.state.store
    return state
