"""How the API authenticates: public reads or not, cookies, OpenID Connect."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cloud.auth.principal import Role
from cloud.auth.sessions import SESSION_TTL_S


class OidcSettings(BaseModel):
    """An OpenID Connect provider (Keycloak, ...) to sign in with, besides local passwords."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(
        min_length=8,
        max_length=500,
        description="issuer URL; its /.well-known/openid-configuration is read at the first login",
    )
    client_id: str = Field(min_length=1, max_length=200, description="this API's client id")
    client_secret: str = Field(
        min_length=1, max_length=500, description="the client secret (from a file or env)"
    )
    redirect_url: str = Field(
        min_length=8,
        max_length=500,
        description="the callback URL as browsers reach it: https://HOST/auth/oidc/callback",
    )
    scopes: str = Field(default="openid profile email", max_length=200)
    username_claim: str = Field(
        default="preferred_username",
        max_length=100,
        description="the claim matched to a pantau username",
    )
    role_claim: str | None = Field(
        default=None,
        max_length=100,
        description="a claim holding viewer/technician/supervisor/admin; without it (or without "
        "the claim in the token) a local account of the same username must exist",
    )
    districts_claim: str | None = Field(
        default=None,
        max_length=100,
        description="a claim holding a list of districts, or '*' for every district",
    )
    max_role: Role = Field(
        default=Role.SUPERVISOR,
        description="the highest role a claim may grant (admins are local accounts)",
    )
    label: str = Field(default="Single sign-on", max_length=60, description="login button text")
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="per request to the IdP")


class AuthSettings(BaseModel):
    """Identity settings of one API instance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    public_read: bool = Field(
        default=False,
        description="answer reads without identity, as a viewer of every district (a wall); "
        "writes still need a session or a token",
    )
    cookie_secure: bool | None = Field(
        default=None,
        description="mark the session cookie Secure; None: when the request came over https "
        "(set true behind a TLS-terminating proxy)",
    )
    session_ttl_s: float = Field(default=SESSION_TTL_S, gt=0, le=7 * 86400)
    oidc: OidcSettings | None = Field(default=None, description="OpenID Connect login, optional")
