"""The catalogue this agent probes: taken from the site's retained ``command/services`` message,
checked (signature with ``commands.public_key`` when configured, this site, a version not older
than the one running) and kept beside the queue, so a restart without uplink still probes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from pantau.core.services import SignedCatalogue, SiteCatalogue, catalogue_verified

if TYPE_CHECKING:  # cryptography loads only where a command key is configured
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

log = logging.getLogger(__name__)


class CatalogueRefusedError(ValueError):
    """A catalogue message this agent will not run; the message says why."""


class CatalogueKeeper:
    """Holds the running catalogue; ``take`` checks and adopts a new one."""

    def __init__(self, site: str, key: Ed25519PublicKey | None, path: Path) -> None:
        self._site = site
        self._key = key
        self._path = path
        self.current: SiteCatalogue | None = None
        self.refused = 0
        try:
            stored = path.read_bytes()
        except FileNotFoundError:
            return
        try:
            self.current = self._check(stored)
        except CatalogueRefusedError as exc:
            log.warning("ignoring the stored service catalogue %s: %s", path, exc)

    @classmethod
    def for_agent(cls, site: str, public_key: str | None, queue_path: Path) -> CatalogueKeeper:
        """The agent's keeper: its command key (if any), kept beside the queue."""
        key = None
        if public_key:
            from pantau.core.signing import load_public  # noqa: PLC0415 - see above

            key = load_public(public_key)
        return cls(site, key, queue_path.with_suffix(".services.json"))

    @property
    def version(self) -> int | None:
        """The version running (``None``: none received yet)."""
        return self.current.version if self.current else None

    def take(self, payload: bytes) -> SiteCatalogue | None:
        """Adopt ``payload`` if it holds and is new; return it (``None``: same as running, or
        refused and logged)."""
        try:
            catalogue = self._check(payload)
        except CatalogueRefusedError as exc:
            self.refused += 1
            log.warning("service catalogue refused: %s", exc)
            return None
        if self.current is not None and catalogue.version < self.current.version:
            self.refused += 1
            log.warning(
                "service catalogue refused: version %d is older than the running %d",
                catalogue.version,
                self.current.version,
            )
            return None
        if self.current == catalogue:
            return None
        tmp = self._path.with_suffix(".tmp")
        try:
            tmp.write_bytes(payload)
            tmp.replace(self._path)
        except OSError as exc:  # a full or failing disk: run it anyway, it comes again retained
            log.warning("could not keep the service catalogue in %s: %s", self._path, exc)
        self.current = catalogue
        log.info(
            "service catalogue version %d: %d services", catalogue.version, len(catalogue.services)
        )
        return catalogue

    def _check(self, payload: bytes) -> SiteCatalogue:
        try:
            envelope = SignedCatalogue.model_validate_json(payload)
        except ValidationError as exc:
            raise CatalogueRefusedError(f"malformed: {exc.errors()[0]['msg']}") from exc
        if self._key is not None:
            if not envelope.sig:
                raise CatalogueRefusedError("unsigned, and commands.public_key is configured")
            if not catalogue_verified(envelope, self._key):
                raise CatalogueRefusedError("signature does not match commands.public_key")
        try:
            catalogue = SiteCatalogue.model_validate_json(envelope.catalogue)
        except ValidationError as exc:
            raise CatalogueRefusedError(f"malformed catalogue: {exc.errors()[0]['msg']}") from exc
        if catalogue.site != self._site:
            raise CatalogueRefusedError(f"for site {catalogue.site}, not {self._site}")
        return catalogue
