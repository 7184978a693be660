"""FastAPI dependencies that turn a request into a ``Principal``, or refuse it.

A request is someone through ``Authorization: Bearer <personal token>`` or the session cookie.
A write through a session must carry the session's CSRF token in ``X-CSRF-Token``. Without
identity a request is refused (401), except reads when the API runs with ``--public-read``.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request

from cloud.auth.identity import Authenticated, Identity
from cloud.auth.principal import Principal, Role
from cloud.auth.sessions import COOKIE, CSRF_HEADER
from cloud.auth.settings import AuthSettings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC = Principal(username="public", role=Role.VIEWER, districts=None, via="public")
SIGN_IN = (
    "sign in: a session cookie from POST /auth/login (the page at /login) or "
    "'Authorization: Bearer <token>' from `pantau users token create`"
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="pantau"'}


def identity(request: Request) -> Identity:
    """The app's identity stores."""
    found: Identity = request.app.state.identity
    return found


def auth_settings(request: Request) -> AuthSettings:
    """The app's identity settings."""
    settings: AuthSettings = request.app.state.auth
    return settings


def authenticate(request: Request) -> Authenticated | None:
    """Who sent ``request`` (token first, then session cookie); a wrong token is a 401."""
    if hasattr(request.state, "authenticated"):
        cached: Authenticated | None = request.state.authenticated
        return cached
    found: Authenticated | None = None
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        found = identity(request).by_token(value.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            raise HTTPException(
                401, "unknown, expired or revoked token; " + SIGN_IN, headers=_CHALLENGE
            )
    elif cookie := request.cookies.get(COOKIE):
        found = identity(request).by_session(cookie)
    request.state.authenticated = found
    return found


def read_principal(request: Request) -> Principal:
    """The principal of a read: someone, or the public viewer under ``--public-read``."""
    found = authenticate(request)
    if found is not None:
        return found.principal
    if auth_settings(request).public_read and request.method in SAFE_METHODS:
        return PUBLIC
    raise HTTPException(401, SIGN_IN, headers=_CHALLENGE)


def require(role: Role) -> Callable[[Request], Principal]:
    """A dependency for writes: someone of at least ``role``, with the CSRF token if the
    request came through a session cookie."""

    def principal_of_writer(request: Request) -> Principal:
        found = authenticate(request)
        if found is None:
            raise HTTPException(401, SIGN_IN, headers=_CHALLENGE)
        if found.session is not None and not found.session.csrf_ok(
            request.headers.get(CSRF_HEADER)
        ):
            raise HTTPException(
                403, f"a write through a session needs the {CSRF_HEADER} header (the page sends it)"
            )
        if not found.principal.at_least(role):
            raise HTTPException(
                403, f"a {found.principal.role.value} may not do this; it needs a {role.value}"
            )
        return found.principal

    principal_of_writer.__name__ = f"require_{role.value}"
    return principal_of_writer
