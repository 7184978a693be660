"""The site registry file: each site's district and location, as the command center set them.

``pantau sites add --district D`` writes it beside the broker's accounts
(``sites.yaml`` in the account directory); the collector reads it (``registry_path``) and stores
every message under the registered district, whatever the payload claims
(``cloud.sites_registry``). A site's district belongs to the cloud: a site must not be able to
move its downtime into another district's figures.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pantau.core.wiretypes import Ident

REGISTRY_FILE = "sites.yaml"


class RegistryError(Exception):
    """The registry file cannot be read or written; the message says which and why."""


class RegisteredSite(BaseModel):
    """Where a site is, as registered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    district: Ident = Field(description="the district whose figures the site counts in")
    lat: float | None = Field(default=None, ge=-90, le=90, description="latitude (WGS84)")
    lon: float | None = Field(default=None, ge=-180, le=180, description="longitude (WGS84)")


class SiteRegistryFile(BaseModel):
    """The file's content."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    sites: dict[Ident, RegisteredSite] = Field(
        default_factory=dict, description="site id -> its district and location"
    )


def load_registry(path: Path) -> SiteRegistryFile:
    """Read ``path``; a missing file is an empty registry, a broken one a ``RegistryError``."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return SiteRegistryFile()
    except OSError as exc:
        raise RegistryError(f"cannot read the site registry {path}: {exc.strerror}") from None
    try:
        return SiteRegistryFile.model_validate(yaml.safe_load(text) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        raise RegistryError(
            f"site registry {path} is not valid ({str(exc).splitlines()[0]}); fix it or "
            "rewrite its entries with `pantau sites place`"
        ) from None


def save_registry(path: Path, registry: SiteRegistryFile) -> None:
    """Write ``path`` atomically (readers never see half a file), owned like its directory."""
    body = registry.model_dump(mode="json", exclude_none=True)
    text = (
        "# pantau site registry: written by `pantau sites add/place/remove`, read by the "
        "collector\n" + yaml.safe_dump(body, sort_keys=True)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        owner = path.parent.stat()
        if os.geteuid() == 0 and (owner.st_uid, owner.st_gid) != (0, 0):
            os.chown(tmp, owner.st_uid, owner.st_gid)
        os.replace(tmp, path)
    except OSError as exc:
        raise RegistryError(f"cannot write the site registry {path}: {exc.strerror}") from None
