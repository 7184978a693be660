"""Late Last Wills stay in the past: a will of an older connection than the site's latest birth
is stored just before that birth, so the newest status point (what the wall's ``last("online")``
reads) is the birth of the connection that is up.

After a broker restart, mosquitto delivers the wills of the connections it lost (it publishes
them on SIGTERM and again from its persistence) after the agents' new births. Each birth and its
will carry the connection number (``SiteStatus.seq``, Sparkplug's ``bdSeq``); the same rule as
``cloud.schema.site_online_now`` decides which wills are stale. A collector knows the births it
wrote; for births written by another collector of the share group it asks the store
(``BirthLookup``) before writing a will.
"""

from __future__ import annotations

from dataclasses import dataclass

from pantau.core.contract import SiteStatus


@dataclass(frozen=True, slots=True)
class Birth:
    """A site's latest numbered birth: its connection number and where it is stored."""

    seq: int
    ts_ns: int


class BirthBook:
    """The latest numbered birth of each site (bounded: the oldest entries are forgotten)."""

    def __init__(self, max_sites: int = 100_000) -> None:
        self._births: dict[str, Birth] = {}
        self._max_sites = max_sites

    def learn(self, site: str, birth: Birth) -> None:
        """Note a numbered birth (a lower number than known is ignored)."""
        known = self._births.get(site)
        if known is not None and known.seq > birth.seq:
            return
        self._births.pop(site, None)
        if len(self._births) >= self._max_sites:
            self._births.pop(next(iter(self._births)))
        self._births[site] = birth

    def get(self, site: str) -> Birth | None:
        """The site's latest numbered birth known here."""
        return self._births.get(site)

    def will_ts(self, will: SiteStatus, ts_ns: int) -> int:
        """When to store ``will`` arriving at ``ts_ns``: just before the birth of a newer
        connection if it is stale (unnumbered, or numbered below that birth), else at ``ts_ns``."""
        birth = self._births.get(will.site)
        if birth is None or (will.seq is not None and will.seq >= birth.seq):
            return ts_ns
        return min(ts_ns, birth.ts_ns - 1)
