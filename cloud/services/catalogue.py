"""The service catalogue file (``services.yaml``): every service the regency watches, its owner
office (OPD), how it is checked and which districts probe it. Edited in the cloud only; each
agent receives its district's part (``for_site``)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pantau.core.configfile import load_yaml_model
from pantau.core.services import MAX_SERVICES, ServiceCheck, SiteCatalogue


class Catalogue(BaseModel):
    """The whole catalogue. Raise ``version`` with every change: agents run the newest version
    they received and refuse an older one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1, lt=2**53, description="raised with every change")
    services: list[ServiceCheck] = Field(
        default_factory=list, max_length=MAX_SERVICES, description="the services, each once"
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Catalogue:
        twice = [name for name, n in Counter(s.name for s in self.services).items() if n > 1]
        if twice:
            raise ValueError(f"service names must be unique; repeated: {', '.join(twice)}")
        return self

    def by_name(self) -> dict[str, ServiceCheck]:
        """The services by name."""
        return {s.name: s for s in self.services}

    def for_site(self, site: str, district: str, *, now_ns: int | None = None) -> SiteCatalogue:
        """What ``site`` (in ``district``) probes, to be signed and published to it."""
        return SiteCatalogue(
            site=site,
            version=self.version,
            issued_ns=time.time_ns() if now_ns is None else now_ns,
            services=[s for s in self.services if s.probed_from(district)],
        )


def load_catalogue(path: Path) -> Catalogue:
    """Read and validate ``path``; ``ConfigError`` names the key at fault."""
    return load_yaml_model(path, Catalogue)
