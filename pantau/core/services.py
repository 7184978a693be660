"""The service catalogue on the wire: what an agent probes (e-government services) and how the
cloud hands it over.

The cloud keeps one YAML catalogue (``cloud/services/``) and publishes, retained, on each site's
``.../sites/{site}/command/services`` topic a ``SignedCatalogue``: the ``SiteCatalogue`` JSON
(the services that site's district probes, the catalogue version, the site) exactly as signed
with the command center's Ed25519 key (``pantau.core.signing``), and the signature. An agent
with ``commands.public_key`` accepts only a catalogue whose signature holds; without a key it
accepts the topic's message unsigned, trusting the broker, which lets only the cloud's account
publish there (``pantau/ops/brokerauth.py``). Agents report the version they run
(``AgentReading.services_version``).
"""

from __future__ import annotations

import base64
import binascii
import enum
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pantau.core.wiretypes import Ident, Strict, TimestampNs

if TYPE_CHECKING:  # cryptography is cloud-side; an agent loads it only with a command key
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

MAX_SERVICES = 200  # per catalogue: bounds an agent's work per cycle and the retained message
MAX_CATALOGUE_BYTES = 512 * 1024
_HOST = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$"
_LINE = r"^[^\r\n]*$"


class Method(enum.StrEnum):
    """HTTP methods a check may use (no body is sent)."""

    GET = "GET"
    HEAD = "HEAD"


class ServiceCheck(BaseModel):
    """One service and how to tell it works. ``url`` (HTTP(S)) or ``target`` (``host:port``,
    TCP, with TLS when ``tls``) names it; the DNS name defaults to the URL's or target's host."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Ident = Field(description="the service's id (letters, digits, _.-)")
    title: str = Field(
        default="", max_length=120, pattern=_LINE, description="the name citizens read"
    )
    opd: Ident = Field(description="the owner office (OPD) answering for the service")
    url: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        description="http:// or https:// URL probed with ``method``",
    )
    target: str | None = Field(
        default=None,
        max_length=260,
        pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$",
        description="host:port for a TCP (or TLS, see ``tls``) check instead of HTTP",
    )
    tls: bool = Field(default=False, description="with ``target``: do a TLS handshake too")
    method: Method = Field(default=Method.GET, description="HTTP method")
    expect_status: list[int] = Field(
        default_factory=lambda: [200],
        min_length=1,
        max_length=20,
        description="HTTP statuses that count as working (after redirects)",
    )
    keyword: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=_LINE,
        description="text the body must contain (an error page served with 200 lacks it)",
    )
    json_path: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
        description="dotted path that must exist in the JSON body (list items by index)",
    )
    json_value: str | None = Field(
        default=None,
        max_length=200,
        pattern=_LINE,
        description="with json_path: the value there, as text, must equal this",
    )
    max_latency_ms: float = Field(
        default=3000.0, gt=0, le=120_000, description="slower (in total) is a warning"
    )
    tls_warn_days: int = Field(
        default=14, ge=0, le=365, description="a certificate expiring sooner is a warning"
    )
    dns_name: str | None = Field(
        default=None, max_length=253, pattern=_HOST, description="name resolved (default: host)"
    )
    districts: Literal["all"] | list[Ident] = Field(
        default="all", description="'all' or the districts whose agents probe it"
    )
    max_redirects: int = Field(default=3, ge=0, le=10, description="redirects followed")
    timeout_s: float = Field(default=10.0, gt=0, le=60, description="deadline of one probe")
    max_body_bytes: int = Field(
        default=256 * 1024, ge=0, le=4 * 1024 * 1024, description="body bytes read at most"
    )

    @model_validator(mode="after")
    def _one_target(self) -> ServiceCheck:
        if (self.url is None) == (self.target is None):
            raise ValueError("give exactly one of url and target")
        if self.target is not None and (self.keyword or self.json_path):
            raise ValueError("keyword and json_path need an HTTP url")
        if self.json_value is not None and self.json_path is None:
            raise ValueError("json_value needs json_path")
        return self

    @property
    def host(self) -> str:
        """The host the check connects to."""
        if self.url is not None:
            return urlsplit(self.url).hostname or ""
        return (self.target or "").rsplit(":", 1)[0]

    def probed_from(self, district: str) -> bool:
        """Whether agents of ``district`` probe this service."""
        return self.districts == "all" or district in self.districts


class SiteCatalogue(Strict):
    """What one site probes: its services from catalogue ``version``."""

    v: Literal[1] = 1
    site: Ident
    version: int = Field(ge=1, lt=2**53)
    issued_ns: TimestampNs
    services: list[ServiceCheck] = Field(default_factory=list, max_length=MAX_SERVICES)


class SignedCatalogue(Strict):
    """The envelope on ``command/services``: ``catalogue`` is the signed text, byte for byte."""

    v: Literal[1] = 1
    catalogue: str = Field(max_length=MAX_CATALOGUE_BYTES)
    sig: str = Field(default="", max_length=200, description="Ed25519 signature, base64")


def sign_catalogue(catalogue: SiteCatalogue, key: Ed25519PrivateKey | None) -> bytes:
    """The retained payload: the catalogue's JSON and (with a key) its signature."""
    text = catalogue.model_dump_json()
    sig = base64.b64encode(key.sign(text.encode())).decode() if key is not None else ""
    return SignedCatalogue(catalogue=text, sig=sig).model_dump_json().encode()


def catalogue_verified(envelope: SignedCatalogue, key: Ed25519PublicKey) -> bool:
    """True if the envelope's signature holds for its catalogue text."""
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - see above

    try:
        key.verify(base64.b64decode(envelope.sig, validate=True), envelope.catalogue.encode())
    except (binascii.Error, InvalidSignature):
        return False
    return True
