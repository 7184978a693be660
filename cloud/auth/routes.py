"""Sign in, sign out, and who am I: ``/auth/login``, ``/auth/logout``, ``/auth/session``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from cloud.audit import AuditEvent, AuditTrail
from cloud.auth.accounts import User
from cloud.auth.deps import PUBLIC, auth_settings, authenticate, identity
from cloud.auth.identity import Identity, LoginFailedError, LoginThrottledError
from cloud.auth.principal import Principal
from cloud.auth.sessions import COOKIE
from cloud.auth.settings import AuthSettings


class LoginIn(BaseModel):
    """A username and password."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    """Who is signed in; ``csrf_token`` goes in the X-CSRF-Token header of every write."""

    username: str
    role: str
    districts: list[str] | None = Field(description="null: every district")
    lang: str
    via: str = Field(description="session, oidc, token or public")
    csrf_token: str | None = Field(description="for writes through this session; keep in memory")
    oidc: bool = Field(description="an OpenID Connect login is offered")


def session_out(principal: Principal, *, csrf: str | None, settings: AuthSettings) -> SessionOut:
    """The session document for ``principal``."""
    return SessionOut(
        username=principal.username,
        role=principal.role.value,
        districts=None if principal.districts is None else sorted(principal.districts),
        lang=principal.lang,
        via=principal.via,
        csrf_token=csrf,
        oidc=settings.oidc is not None,
    )


def start_session(request: Request, response: Response, user: User, *, via: str) -> SessionOut:
    """Open a session for ``user``: set the cookie, return the session document."""
    ids = identity(request)
    settings = auth_settings(request)
    cookie, session = ids.sessions.start(user.id, via=via)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(settings.session_ttl_s),
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure
        if settings.cookie_secure is not None
        else request.url.scheme == "https",
    )
    return session_out(user.principal(via), csrf=session.csrf, settings=settings)


def auth_router(problem_response: Callable[[str], dict[str, Any]]) -> APIRouter:
    """Routes under /auth."""
    router = APIRouter(prefix="/auth", tags=["identity"])

    @router.post(
        "/login",
        response_model=SessionOut,
        responses={
            401: problem_response("wrong username or password"),
            429: problem_response("too many failed logins for the account or address"),
        },
    )
    def login(
        body: LoginIn,
        request: Request,
        response: Response,
        ids: Annotated[Identity, Depends(identity)],
    ) -> SessionOut:
        """Sign in with a local account; sets an HttpOnly, SameSite=Strict session cookie."""
        address = request.client.host if request.client else "unknown"
        trail: AuditTrail = request.app.state.audit
        try:
            user = ids.login(body.username, body.password, address=address)
        except LoginThrottledError as exc:
            # Not audited: refused before any check, counted by the throttle (a flood of these
            # must not become a flood of serialized audit writes).
            raise HTTPException(
                429, str(exc), headers={"Retry-After": str(math.ceil(exc.retry_after_s))}
            ) from None
        except LoginFailedError as exc:
            details = {"address": address}
            trail.append(AuditEvent.LOGIN_FAILED, "-", f"user:{body.username}", details)
            raise HTTPException(401, str(exc)) from None
        details = {"address": address, "via": "session"}
        trail.append(AuditEvent.LOGIN, user.username, f"user:{user.username}", details)
        return start_session(request, response, user, via="session")

    @router.post("/logout", status_code=204)
    def logout(request: Request, ids: Annotated[Identity, Depends(identity)]) -> Response:
        """Sign out: the session cookie stops working on every instance (recorded in the
        audit trail when it was a live session)."""
        if cookie := request.cookies.get(COOKIE):
            found = ids.by_session(cookie)
            ids.sessions.end(cookie)
            if found is not None:
                who = found.principal.username
                trail: AuditTrail = request.app.state.audit
                trail.append(AuditEvent.LOGOUT, who, f"user:{who}", {"via": found.principal.via})
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @router.get(
        "/session",
        response_model=SessionOut,
        responses={401: problem_response("not signed in")},
    )
    def session(
        request: Request, settings: Annotated[AuthSettings, Depends(auth_settings)]
    ) -> SessionOut:
        """Who this request is, and the CSRF token of its session."""
        found = authenticate(request)
        if found is not None:
            csrf = found.session.csrf if found.session else None
            return session_out(found.principal, csrf=csrf, settings=settings)
        if settings.public_read:
            return session_out(PUBLIC, csrf=None, settings=settings)
        raise HTTPException(401, "not signed in")

    return router
