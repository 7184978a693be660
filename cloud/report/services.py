"""The month's e-government services in the report: availability per service and per owner
office (OPD), by the vantage-point rule (``cloud.services.availability``; docs/services.md)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.i18n import Texts
from cloud.influx import InfluxClient, series_rows
from cloud.services.availability import Tally, by_opd, service_availability
from cloud.services.catalogue import load_catalogue
from cloud.services.windows import ServiceWindow


@dataclass(frozen=True)
class ServiceRow:
    """One service's month (``service`` empty on an OPD's row)."""

    service: str
    title: str
    opd: str
    tally: Tally


@dataclass(frozen=True)
class ServicesSummary:
    """Every service of the catalogue, then every OPD."""

    services: list[ServiceRow]
    opds: list[ServiceRow]


async def services_summary(
    influx: InfluxClient,
    catalogue_path: Path,
    start_ns: int,
    end_ns: int,
    *,
    windows: Sequence[ServiceWindow] = (),
    districts: frozenset[str] | None = None,
) -> ServicesSummary:
    """The month's figures for the catalogue at ``catalogue_path`` (``windows``: the services'
    approved maintenance; ``districts``: judged from the cloud and these districts only, for a
    reader scoped to them)."""
    catalogue = load_catalogue(catalogue_path)

    async def query(q: str) -> list[dict[str, Any]]:
        return series_rows(await influx.query(q))

    tallies = await service_availability(
        query, catalogue, start_ns, end_ns, windows=windows, districts=districts
    )
    return ServicesSummary(
        services=[
            ServiceRow(s.name, s.title or s.name, s.opd, tallies[s.name])
            for s in catalogue.services
        ],
        opds=[ServiceRow("", "", opd, t) for opd, t in sorted(by_opd(catalogue, tallies).items())],
    )


def services_json(summary: ServicesSummary | None) -> dict[str, Any] | None:
    """The figures as JSON (``availability``: up / (up + down))."""
    if summary is None:
        return None

    def row(r: ServiceRow) -> dict[str, Any]:
        t = r.tally
        return {
            **({"service": r.service, "title": r.title} if r.service else {}),
            "opd": r.opd,
            "up_seconds": t.up_s,
            "down_seconds": t.down_s,
            "unknown_seconds": t.unknown_s,
            "maintenance_seconds": t.maintenance_s,
            "availability": t.availability,
        }

    return {"services": [row(r) for r in summary.services], "opds": [row(r) for r in summary.opds]}


def services_csv(summary: ServicesSummary | None) -> list[dict[str, str]]:
    """The figures as rows of the report's CSV, by column (levels ``service`` and ``opd``; the
    hours and shares as the camera rows give them, ``availability_pct`` up / (up + down))."""
    if summary is None:
        return []

    def pct(part: float, whole: float) -> str:
        return "" if whole == 0 else f"{100 * part / whole:.3f}"

    def row(level: str, r: ServiceRow) -> dict[str, str]:
        t = r.tally
        return {
            "level": level,
            "service": r.service,
            "opd": r.opd,
            "availability_pct": pct(t.up_s, t.up_s + t.down_s),
            "availability_strict_pct": pct(t.up_s, t.up_s + t.down_s + t.unknown_s),
            "up_hours": f"{t.up_s / 3600:.3f}",
            "down_hours": f"{t.down_s / 3600:.3f}",
            "unknown_hours": f"{t.unknown_s / 3600:.3f}",
            "maintenance_hours": f"{t.maintenance_s / 3600:.3f}",
        }

    return [row("service", r) for r in summary.services] + [row("opd", r) for r in summary.opds]


def services_html(summary: ServicesSummary | None, t: Texts) -> str:
    """Two tables: per service, per OPD."""
    if summary is None:
        return ""
    _ = t._
    cols = [
        _("availability %"), _("up (h)"), _("down (h)"), _("unknown (h)"), _("maintenance (h)"),
    ]  # fmt: skip

    def cells(r: ServiceRow) -> str:
        x = r.tally
        pct = "–" if x.availability is None else t.number(100 * x.availability)
        hours = [t.number(s / 3600) for s in (x.up_s, x.down_s, x.unknown_s, x.maintenance_s)]
        return "".join(f'<td class="n">{html.escape(v)}</td>' for v in [pct, *hours])

    def table(heads: list[str], rows: list[tuple[list[str], ServiceRow]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in [*heads, *cols])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in names) + cells(r) + "</tr>"
            for names, r in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    rule = _(
        "A service is down in a minute when the cloud and most districts whose agents are online "
        "fail to reach it; a district cut off counts no downtime."
    )
    return (
        f"<h2>{html.escape(_('E-government services'))}</h2>"
        f'<p class="meta">{html.escape(rule)}</p>'
        + table([_("service"), _("OPD")], [([r.title, r.opd], r) for r in summary.services])
        + f"<h2>{html.escape(_('Owner offices (OPD)'))}</h2>"
        + table([_("OPD")], [([r.opd], r) for r in summary.opds])
    )
