"""District scope on the read side: what a principal may see of windows, rows and reports.

Whatever is out of scope does not exist for the principal: lists leave it out, and a lookup by
id answers exactly what a missing id answers (404 with the same text).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar

from cloud.auth.principal import Principal
from cloud.fleet import current_sites
from cloud.influx import InfluxClient
from cloud.maintenance import Maintenance
from cloud.report.monthly import MonthlyReport


class HasDistrict(Protocol):
    """Anything that belongs to a district (a row, a problem, a camera)."""

    @property
    def district(self) -> str | None: ...


Row = TypeVar("Row", bound=HasDistrict)


async def site_districts(client: InfluxClient, principal: Principal) -> Mapping[str, str]:
    """Each known site's district (from the fleet); empty for a principal of every district,
    who needs no lookup."""
    if principal.districts is None:
        return {}
    return {s.site: s.district for s in await current_sites(client)}


def window_district(window: Maintenance, sites: Mapping[str, str]) -> str | None:
    """The district a window belongs to: its own, else its site's."""
    if window.district is not None:
        return window.district
    return sites.get(window.site) if window.site is not None else None


def sees_window(principal: Principal, window: Maintenance, sites: Mapping[str, str]) -> bool:
    """True if ``window`` exists for ``principal``."""
    return principal.sees(window_district(window, sites))


def visible(principal: Principal, rows: Iterable[Row]) -> list[Row]:
    """The rows of districts in scope."""
    return [row for row in rows if principal.sees(row.district)]


def scoped_report(
    report: MonthlyReport, principal: Principal, sites: Mapping[str, str]
) -> MonthlyReport:
    """The report as ``principal`` may read it: only districts in scope, their sites, cameras,
    windows and remediation."""
    if principal.districts is None:
        return report
    return dataclasses.replace(
        report,
        districts=visible(principal, report.districts),
        sites=visible(principal, report.sites),
        cameras=visible(principal, report.cameras),
        # a whole service's window stands behind the service figures every reader sees
        maintenance=[
            m
            for m in report.maintenance
            if sees_window(principal, m, sites) or (m.service is not None and m.district is None)
        ],
        retro_moved=visible(principal, report.retro_moved),
        remediation=report.remediation.within(principal.districts)
        if report.remediation is not None
        else None,
    )
