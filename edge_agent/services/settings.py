"""The agent's service-probe settings (``services:`` in site.yaml). What to probe comes from the
cloud's catalogue, never from this file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ServiceProbeSettings(BaseModel):
    """How this agent probes the services the cloud's catalogue names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="probe the catalogue's services at all")
    interval_s: float = Field(default=60.0, ge=1, le=3600, description="probe period")
    concurrency: int = Field(default=8, ge=1, le=64, description="services probed at once")
    ca_file: Path | None = Field(
        default=None,
        description="extra CA bundle trusted for services' certificates (beside the system's)",
    )
    proxy: str | None = Field(
        default=None,
        pattern=r"^http://[A-Za-z0-9.-]+:[0-9]{1,5}/?$",
        description="http://host:port of the HTTP proxy (CONNECT) the district's offices reach "
        "the services through, if they do: probes take the same route (TLS stays end to end)",
    )
