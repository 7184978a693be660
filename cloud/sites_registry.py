"""The cloud's site registry: a site's district (and location) is the one the command center
registered (``pantau sites add --district``), never the one its payload claims.

``registered_message`` is pure: it rewrites a batch or a status to the registered district and
says whether the payload claimed another (a mismatch, stored as a point the problem rules turn
into "site claims another district"). ``SiteRegistry`` holds the file's content and rereads the
file when it changes (the collector polls ``reload_if_changed``). A site that is not registered
keeps the district it claims: sites added before the registry go on working until placed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from cloud.lineproto import format_line
from cloud.schema import DISTRICT_MISMATCH, SITE_TAG
from pantau.core.contract import ReadingBatch, SiteStatus
from pantau.core.siteregistry import RegisteredSite, RegistryError, load_registry

log = logging.getLogger(__name__)

RELOAD_EVERY_S = 5.0  # how soon a `pantau sites add/place` reaches the collector (one stat each)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A payload claimed ``claimed`` for a site registered in ``registered``."""

    site: str
    claimed: str
    registered: str

    def line(self, now_ns: int) -> str:
        """The point that records it, at the collector's time."""
        return format_line(
            DISTRICT_MISMATCH,
            {SITE_TAG: self.site},
            {"claimed": self.claimed, "registered": self.registered},
            now_ns,
        )


def registered_message(
    message: ReadingBatch | SiteStatus, entry: RegisteredSite | None
) -> tuple[ReadingBatch | SiteStatus, Mismatch | None]:
    """``message`` under the registered district (a status also at the registered location),
    and the mismatch if it claimed another district; unchanged if the site is not registered."""
    if entry is None:
        return message, None
    update: dict[str, object] = {}
    if message.district != entry.district:
        update["district"] = entry.district
    if isinstance(message, SiteStatus) and entry.lat is not None and entry.lon is not None:
        update.update(lat=entry.lat, lon=entry.lon)
    mismatch = (
        Mismatch(message.site, message.district, entry.district) if "district" in update else None
    )
    return (message.model_copy(update=update) if update else message), mismatch


class SiteRegistry:
    """The registry file's content, reread when the file changes.

    Args:
        path: the registry file (``sites.yaml`` in the broker's account directory); ``None``:
            no registry, every site keeps the district it claims.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._sites: dict[str, RegisteredSite] = {}
        self._stamp: tuple[int, int] | None = None
        self.reload_if_changed()

    def get(self, site: str) -> RegisteredSite | None:
        """The site's registered place, or None if it is not registered."""
        return self._sites.get(site)

    def __len__(self) -> int:
        return len(self._sites)

    def reload_if_changed(self) -> bool:
        """Reread the file if it changed since the last read; True if the content was replaced.

        A file that cannot be read or is invalid keeps the previous content (logged): a typo
        while editing must not let sites choose their districts again.
        """
        if self.path is None:
            return False
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, -1)
        except OSError as exc:
            log.warning("cannot stat the site registry %s: %s", self.path, exc)
            return False
        if stamp == self._stamp:
            return False
        try:
            content = load_registry(self.path)
        except RegistryError as exc:
            log.warning("%s; keeping the %d sites read before", exc, len(self._sites))
            return False
        self._stamp = stamp
        self._sites = dict(content.sites)
        log.info("site registry %s: %d sites", self.path, len(self._sites))
        return True

    async def watch(self, every_s: float = RELOAD_EVERY_S) -> None:
        """Reread the file whenever it changed, checking every ``every_s``; until cancelled."""
        while self.path is not None:
            await asyncio.sleep(every_s)
            await asyncio.to_thread(self.reload_if_changed)
