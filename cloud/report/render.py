"""The report as CSV (one table, a level column) and as a printable HTML page."""

from __future__ import annotations

import csv
import html
import io

from cloud.availability import AvailabilityRow
from cloud.report.monthly import MonthlyReport

COLUMNS = [
    "level",
    "district",
    "site",
    "camera",
    "availability_pct",
    "availability_strict_pct",
    "up_hours",
    "down_hours",
    "unknown_hours",
    "maintenance_hours",
]


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.3f}"


def _values(level: str, row: AvailabilityRow) -> list[str]:
    return [
        level,
        row.district,
        row.site,
        row.camera,
        _pct(row.availability),
        _pct(row.availability_strict),
        f"{row.up_seconds / 3600:.3f}",
        f"{row.down_seconds / 3600:.3f}",
        f"{row.unknown_seconds / 3600:.3f}",
        f"{row.maintenance_seconds / 3600:.3f}",
    ]


def _levels(report: MonthlyReport) -> list[tuple[str, AvailabilityRow]]:
    return (
        [("district", r) for r in report.districts]
        + [("site", r) for r in report.sites]
        + [("camera", r) for r in report.cameras]
    )


def to_csv(report: MonthlyReport) -> str:
    """Districts, then sites, then cameras; maintenance windows are in the page and the JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for level, row in _levels(report):
        writer.writerow(_values(level, row))
    return out.getvalue()


_STYLE = """
body{font:13px/1.4 system-ui,sans-serif;margin:2em;color:#111}
h1{font-size:20px;margin:0 0 .2em} h2{font-size:15px;margin:1.6em 0 .4em}
table{border-collapse:collapse;width:100%} th,td{border:1px solid #bbb;padding:3px 6px}
td.n{text-align:right;font-variant-numeric:tabular-nums} th{background:#eee;text-align:left}
.meta{color:#555} @media print{body{margin:0} h2{page-break-after:avoid}}
"""


def _table(rows: list[tuple[str, AvailabilityRow]], name_columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in name_columns + COLUMNS[4:])
    body = []
    for level, row in rows:
        values = _values(level, row)
        names = {"district": values[1], "site": values[2], "camera": values[3]}
        cells = "".join(f"<td>{html.escape(names[c])}</td>" for c in name_columns)
        cells += "".join(f'<td class="n">{html.escape(v)}</td>' for v in values[4:])
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def to_html(report: MonthlyReport) -> str:
    """A self-contained printable page (the browser's print dialog makes the PDF)."""
    windows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (
                m.district or "",
                m.site or "",
                m.camera or "",
                m.start.astimezone(report.start.tzinfo).isoformat(timespec="minutes"),
                m.end.astimezone(report.start.tzinfo).isoformat(timespec="minutes"),
                m.reason,
                m.created_by,
            )
        )
        + "</tr>"
        for m in report.maintenance
    )
    maintenance = (
        "<table><thead><tr><th>district</th><th>site</th><th>camera</th><th>start</th>"
        f"<th>end</th><th>reason</th><th>by</th></tr></thead><tbody>{windows}</tbody></table>"
        if report.maintenance
        else "<p>No maintenance windows this month.</p>"
    )
    title = f"Camera availability {html.escape(report.month)}"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{title}</h1>"
        f'<p class="meta">{report.start.isoformat()} to {report.end.isoformat()} '
        f"({html.escape(report.timezone)}); generated {report.generated_at:%Y-%m-%d %H:%M} UTC. "
        "availability = up / (up + down); strict = up / (up + down + unknown); maintenance "
        "seconds are set aside (docs/availability.md).</p>"
        f"<h2>Districts</h2>{_table([('district', r) for r in report.districts], ['district'])}"
        f"<h2>Sites</h2>{_table([('site', r) for r in report.sites], ['district', 'site'])}"
        f"<h2>Maintenance windows</h2>{maintenance}"
        "<h2>Cameras</h2>"
        f"{_table([('camera', r) for r in report.cameras], ['district', 'site', 'camera'])}"
        "</body></html>"
    )
