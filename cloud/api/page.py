"""The technician page and its login page: static files that talk to the API from the browser,
served behind identity, with a Content-Security-Policy that forbids framing and inline script."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from importlib.resources import files

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from cloud.auth.deps import auth_settings, authenticate

# Scripts and styles only from files of this origin; nobody may frame the page (clickjacking).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors 'none'"
)
# The printable report carries its own <style>; Swagger UI (/docs) loads its script from a CDN.
CSP_REPORT = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
CSP_DOCS = "frame-ancestors 'none'"
STATIC = {
    "i18n.js": "text/javascript",
    "technician.js": "text/javascript",
    "actions.js": "text/javascript",
    "approvals.js": "text/javascript",
    "login.js": "text/javascript",
    "pantau.css": "text/css",
}


@cache
def _static(name: str) -> str:
    return files("cloud.api").joinpath(f"static/{name}").read_text(encoding="utf-8")


def add_security_headers(app: FastAPI) -> None:
    """Every response says: no framing, no sniffing, no referrer to other sites."""

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        path = request.url.path
        if path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            policy = CSP_DOCS
        elif path == "/api/report":
            policy = CSP_REPORT
        else:
            policy = CSP
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response


def page_router() -> APIRouter:
    """``/`` (the technician page, or a redirect to ``/login``), ``/login``, ``/static/*``."""
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_model=None)
    def technician_page(request: Request) -> Response:
        """The problems list with acknowledge and maintenance actions, once signed in."""
        if authenticate(request) is None and not auth_settings(request).public_read:
            return RedirectResponse("/login", status_code=303)
        return HTMLResponse(_static("technician.html"), headers={"Cache-Control": "no-cache"})

    @router.get("/login")
    def login_page() -> HTMLResponse:
        """Username and password (and single sign-on when configured)."""
        return HTMLResponse(_static("login.html"), headers={"Cache-Control": "no-cache"})

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        """The page's scripts and styles (a fixed list: nothing else is readable here)."""
        if name not in STATIC:
            raise HTTPException(404, f"no static file {name}")
        return Response(
            _static(name), media_type=STATIC[name], headers={"Cache-Control": "no-cache"}
        )

    return router
