"""Sign in through an OpenID Connect provider (authorization code flow with PKCE and a nonce).

authlib builds the authorization request (RFC 6749 grant URI, RFC 7636 S256 challenge); the code
is exchanged with httpx (client_secret_basic); joserfc checks the ID token's signature against
the provider's keys and authlib's ``CodeIDToken`` its claims (iss, aud, exp, nonce, at_hash).
Who the person is in pantau comes from a local account of the same username, or, for accounts
the provider manages, from the role and district claims.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Annotated, Any

import httpx
import sqlalchemy as sa
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from cloud.audit import AuditEvent, AuditTrail
from cloud.auth.accounts import AccountError, User, check_districts, check_username
from cloud.auth.deps import identity
from cloud.auth.identity import Identity
from cloud.auth.principal import Role
from cloud.auth.routes import start_session
from cloud.auth.settings import OidcSettings
from cloud.auth.tables import oidc_logins_table
from cloud.auth.tokens import sha256

log = logging.getLogger(__name__)
STATE_COOKIE = "pantau_oidc"
LOGIN_TTL_NS = 600 * 10**9  # a login must come back from the provider within 10 minutes
CLOCK_LEEWAY_S = 60


class OidcError(Exception):
    """The provider's answer cannot sign anyone in; the message says why."""


class OidcClient:
    """One provider: its discovered endpoints and keys, and pending logins in the database."""

    def __init__(self, settings: OidcSettings, engine: sa.Engine) -> None:
        self.settings = settings
        self._engine = engine
        self._http = httpx.AsyncClient(timeout=settings.timeout_s)
        self._meta: dict[str, Any] | None = None

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (read once)."""
        if self._meta is None:
            url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                answer = await self._http.get(url)
                answer.raise_for_status()
            except httpx.HTTPError as exc:
                raise OidcError(f"cannot read {url}: {exc}") from exc
            self._meta = answer.json()
        return self._meta

    async def begin(self) -> tuple[str, str]:
        """Start a login: (the provider's authorization URL, the state for the cookie)."""
        meta = await self.metadata()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        now = time.time_ns()
        with self._engine.begin() as db:
            table = oidc_logins_table
            db.execute(table.delete().where(table.c.created_ns < now - LOGIN_TTL_NS))
            db.execute(
                table.insert().values(
                    state_sha256=sha256(state), nonce=nonce, verifier=verifier, created_ns=now
                )
            )
        url = prepare_grant_uri(
            meta["authorization_endpoint"],
            self.settings.client_id,
            "code",
            redirect_uri=self.settings.redirect_url,
            scope=self.settings.scopes,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        return str(url), state

    async def finish(self, *, state: str, code: str) -> dict[str, Any]:
        """Exchange ``code`` and return the ID token's verified claims (userinfo merged in)."""
        table = oidc_logins_table
        with self._engine.begin() as db:
            row = db.execute(table.select().where(table.c.state_sha256 == sha256(state))).first()
            db.execute(table.delete().where(table.c.state_sha256 == sha256(state)))
        if row is None or row._mapping["created_ns"] < time.time_ns() - LOGIN_TTL_NS:
            raise OidcError("this login is unknown or expired; start again")
        meta = await self.metadata()
        try:
            answer = await self._http.post(
                meta["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self.settings.redirect_url,
                    "code_verifier": row._mapping["verifier"],
                },
                auth=(self.settings.client_id, self.settings.client_secret),
            )
        except httpx.HTTPError as exc:
            raise OidcError(f"the provider's token endpoint did not answer: {exc}") from exc
        if answer.status_code != 200:
            raise OidcError(f"the provider refused the code: {answer.text[:300]}")
        token: dict[str, Any] = answer.json()
        if "id_token" not in token:
            raise OidcError("the provider sent no ID token (is 'openid' in the scopes?)")
        claims = await self._verify(token, nonce=row._mapping["nonce"], meta=meta)
        if "userinfo_endpoint" in meta:
            answer = await self._http.get(
                meta["userinfo_endpoint"],
                headers={"Authorization": f"Bearer {token['access_token']}"},
            )
            if answer.status_code == 200 and answer.json().get("sub") == claims["sub"]:
                claims = {**answer.json(), **claims}
        return claims

    async def _verify(
        self, token: dict[str, Any], *, nonce: str, meta: dict[str, Any]
    ) -> dict[str, Any]:
        keys = await self._http.get(meta["jwks_uri"])
        try:
            decoded = jwt.decode(
                token["id_token"],
                KeySet.import_key_set(keys.json()),
                algorithms=meta.get("id_token_signing_alg_values_supported") or ["RS256"],
            )
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {"iss": {"values": [meta["issuer"]]}},
                {
                    "nonce": nonce,
                    "client_id": self.settings.client_id,
                    "access_token": token.get("access_token"),
                },
            )
            claims.validate(leeway=CLOCK_LEEWAY_S)
        except (JoseError, ValueError) as exc:
            raise OidcError(f"the ID token does not verify: {exc}") from exc
        return dict(claims)


def account_for(ids: Identity, settings: OidcSettings, claims: dict[str, Any]) -> User:
    """The pantau account of a verified login: a local account of the same username, else one
    made (or refreshed) from the role and district claims."""
    try:
        username = check_username(str(claims.get(settings.username_claim, "")))
    except ValueError as exc:
        raise OidcError(f"claim {settings.username_claim!r}: {exc}") from None
    user = ids.accounts.get(username)
    if user is not None and user.source == "local":
        if user.disabled:
            raise OidcError(f"account {username!r} is disabled")
        return user
    role_value = claims.get(settings.role_claim) if settings.role_claim else None
    if role_value is None:
        raise OidcError(
            f"no pantau account {username!r}: an admin runs `pantau users add {username} "
            "--role ROLE --district D --no-password`"
            + (
                f", or the provider sends the {settings.role_claim!r} claim"
                if settings.role_claim
                else ""
            )
        )
    raw = claims.get(settings.districts_claim) if settings.districts_claim else None
    if raw is None:
        raise OidcError(f"the login of {username!r} carries no {settings.districts_claim!r} claim")
    try:
        role = Role(str(role_value))
        districts = check_districts(None if raw == "*" else [str(d) for d in raw])
    except ValueError as exc:
        raise OidcError(f"the role and district claims of {username!r}: {exc}") from None
    if role.rank > settings.max_role.rank:
        role = settings.max_role
    if user is None:
        try:
            return ids.accounts.add(
                username, role=role, districts=districts, password_hash=None, source="oidc"
            )
        except AccountError as exc:
            raise OidcError(str(exc)) from None
    if user.disabled:
        raise OidcError(f"account {username!r} is disabled")
    ids.accounts.set_scope(username, role=role, districts=districts)
    return ids.accounts.require(username)


def oidc_client(request: Request) -> OidcClient:
    """The app's OpenID Connect client."""
    client: OidcClient = request.app.state.oidc
    return client


def oidc_router() -> APIRouter:
    """Routes under /auth/oidc (only when a provider is configured)."""
    router = APIRouter(prefix="/auth/oidc", include_in_schema=False)

    @router.get("/info")
    def info(client: Annotated[OidcClient, Depends(oidc_client)]) -> dict[str, str]:
        """The login button's text."""
        return {"label": client.settings.label}

    @router.get("/login")
    async def login(client: Annotated[OidcClient, Depends(oidc_client)]) -> Response:
        """Send the browser to the provider."""
        try:
            url, state = await client.begin()
        except OidcError as exc:
            log.warning("OpenID Connect login cannot start: %s", exc)
            raise HTTPException(503, f"single sign-on is unavailable: {exc}") from None
        response = RedirectResponse(url, status_code=303)
        # Lax, not Strict: it must come back with the provider's cross-site redirect.
        response.set_cookie(
            STATE_COOKIE, state, max_age=600, path="/auth/oidc", httponly=True, samesite="lax"
        )
        return response

    @router.get("/callback")
    async def callback(
        request: Request,
        client: Annotated[OidcClient, Depends(oidc_client)],
        ids: Annotated[Identity, Depends(identity)],
        state: Annotated[str, Query(max_length=200)] = "",
        code: Annotated[str, Query(max_length=2000)] = "",
        error: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        """The provider's answer: verify, find the account, open a session."""
        if error is not None:
            raise HTTPException(403, f"the provider refused the login: {error}")
        cookie = request.cookies.get(STATE_COOKIE, "")
        if not state or not code or not secrets.compare_digest(cookie, state):
            raise HTTPException(400, "this login did not start in this browser; start again")
        try:
            user = account_for(ids, client.settings, await client.finish(state=state, code=code))
        except OidcError as exc:
            log.warning("OpenID Connect login refused: %s", exc)
            raise HTTPException(403, str(exc)) from None
        # A same-site navigation to the page, so the SameSite=Strict cookie goes along.
        page = HTMLResponse(
            '<!doctype html><meta http-equiv="refresh" content="0;url=/">'
            '<a href="/">continue to pantau</a>'
        )
        start_session(request, page, user, via="oidc")
        trail: AuditTrail = request.app.state.audit
        where = {"address": request.client.host if request.client else "unknown", "via": "oidc"}
        await asyncio.to_thread(
            trail.append, AuditEvent.LOGIN, user.username, f"user:{user.username}", where
        )
        page.delete_cookie(STATE_COOKIE, path="/auth/oidc", httponly=True, samesite="lax")
        return page

    return router
