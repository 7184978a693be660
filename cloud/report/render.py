"""The report as CSV (one table, a level column) and as a printable HTML page.

The page is in the reader's language (Indonesian by default: ``cloud.i18n``), with the locale's
dates (Asia/Jakarta) and numbers; the CSV stays machine-readable (English columns, dot decimals).
"""

from __future__ import annotations

import csv
import html
import io

from cloud.audit import Summary
from cloud.availability import AvailabilityRow
from cloud.i18n import N_, Texts, texts
from cloud.maintenance import Maintenance
from cloud.report.monthly import MonthlyReport
from cloud.report.remediation import remediation_html
from cloud.report.services import services_csv, services_html

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
    "retro_moved_hours",
    "recording_availability_pct",
    "retention_compliance_pct",
]
# The CSV's columns: the services' rows (level service, or opd for an office's) name them here.
CSV_COLUMNS = [*COLUMNS, "service", "opd"]


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.3f}"


def _values(level: str, row: AvailabilityRow, moved_s: float) -> list[str]:
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
        f"{moved_s / 3600:.3f}",
        _pct(row.recording_availability),
        _pct(row.retention_compliance),
    ]


def _moved(report: MonthlyReport, level: str, row: AvailabilityRow) -> float:
    return sum(
        m.seconds
        for m in report.retro_moved
        if (level == "district" and m.district == row.district)
        or (level == "site" and m.site == row.site)
        or (level == "camera" and (m.site, m.camera) == (row.site, row.camera))
    )


def _levels(report: MonthlyReport) -> list[tuple[str, AvailabilityRow]]:
    return (
        [("district", r) for r in report.districts]
        + [("site", r) for r in report.sites]
        + [("camera", r) for r in report.cameras]
    )


def to_csv(report: MonthlyReport) -> str:
    """Districts, then sites, then cameras, then services and their offices (OPD);
    maintenance windows are in the page and the JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for level, row in _levels(report):
        writer.writerow([*_values(level, row, _moved(report, level, row)), "", ""])
    for values in services_csv(report.services):
        writer.writerow([values.get(column, "") for column in CSV_COLUMNS])
    return out.getvalue()


# The audit trail's events as the report names them.
AUDIT_LABELS = {
    "login": N_("sign-ins"),
    "login_failed": N_("failed sign-ins"),
    "logout": N_("sign-outs"),
    "view_accepted": N_("changed camera views accepted"),
    "ack": N_("problems acknowledged"),
    "maintenance_requested": N_("maintenance windows entered"),
    "maintenance_approved": N_("maintenance windows approved"),
    "maintenance_cancelled": N_("maintenance windows cancelled"),
    "user_added": N_("accounts added"),
    "user_disabled": N_("accounts disabled"),
    "user_enabled": N_("accounts enabled"),
    "user_password": N_("passwords changed"),
    "user_changed": N_("accounts changed"),
    "token_created": N_("API tokens created"),
    "token_revoked": N_("API tokens revoked"),
    "remediation_sent": N_("power-cycles and reboots sent"),
}
APPROVERS = {"policy": N_("policy (entered in advance)"), "legacy": N_("legacy (before approvals)")}

_STYLE = """
body{font:13px/1.4 system-ui,sans-serif;margin:2em;color:#111}
h1{font-size:20px;margin:0 0 .2em} h2{font-size:15px;margin:1.6em 0 .4em}
table{border-collapse:collapse;width:100%} th,td{border:1px solid #bbb;padding:3px 6px}
td.n{text-align:right;font-variant-numeric:tabular-nums} th{background:#eee;text-align:left}
.meta{color:#555} .retro{background:#fde2e2;font-weight:600} .cancelled{color:#777}
code{font-size:11px;word-break:break-all} dt{font-weight:600;float:left;clear:left;width:16em}
@media print{body{margin:0} h2{page-break-after:avoid}}
"""


def _heads(t: Texts) -> dict[str, str]:
    _ = t._
    return {
        "district": _("district"),
        "site": _("site"),
        "camera": _("camera"),
        "availability_pct": _("availability %"),
        "availability_strict_pct": _("strict %"),
        "up_hours": _("up (h)"),
        "down_hours": _("down (h)"),
        "unknown_hours": _("unknown (h)"),
        "maintenance_hours": _("maintenance (h)"),
        "retro_moved_hours": _("moved by retroactive windows (h)"),
        "recording_availability_pct": _("recording availability %"),
        "retention_compliance_pct": _("retention compliance %"),
    }


def _table(
    report: MonthlyReport, t: Texts, rows: list[tuple[str, AvailabilityRow]], names: list[str]
) -> str:
    heads = _heads(t)
    head = "".join(f"<th>{html.escape(heads[c])}</th>" for c in names + COLUMNS[4:])
    body = []
    for level, row in rows:
        cells = "".join(f"<td>{html.escape(getattr(row, c))}</td>" for c in names)
        figures = [
            t.percent(row.availability),
            t.percent(row.availability_strict),
            *(
                t.number(s / 3600)
                for s in (
                    row.up_seconds,
                    row.down_seconds,
                    row.unknown_seconds,
                    row.maintenance_seconds,
                    _moved(report, level, row),
                )
            ),
            t.percent(row.recording_availability),
            t.percent(row.retention_compliance),
        ]
        cells += "".join(f'<td class="n">{html.escape(v)}</td>' for v in figures)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _status(m: Maintenance, t: Texts) -> str:
    _ = t._
    if m.cancelled_at is not None:
        by = _("cancelled by {who} on {when}").format(
            who=m.cancelled_by, when=t.when(m.cancelled_at)
        )
        return by + (f": {m.cancel_reason}" if m.cancel_reason else "")
    if m.approved_at is None:
        return _("requested, not approved: not counted")
    who = m.approved_by or ""
    return _("approved by {who} on {when}").format(
        who=_(APPROVERS[who]) if who in APPROVERS else who, when=t.when(m.approved_at)
    )


def _windows(report: MonthlyReport, t: Texts) -> str:
    _ = t._
    if not report.maintenance:
        none = _("No maintenance windows this month.")
        return f"<p>{html.escape(none)}</p>"
    heads = [
        _("district"), _("site"), _("camera"), _("service"), _("start"), _("end"), _("reason"),
        _("requested by"), _("entered"), _("status"), _("retroactive"), _("moved (h)"),
    ]  # fmt: skip
    rows = []
    for m in report.maintenance:
        retro = _("yes") + (f": {m.retro_reason}" if m.retro_reason else "")
        moved = report.moved_by_window.get(m.id)
        cells = [
            m.district or "", m.site or "", m.camera or "", m.service or "",
            t.when(m.start), t.when(m.end),
            m.reason, m.created_by, t.when(m.created_at), _status(m, t),
            retro if m.retroactive else "",
            t.number(moved / 3600) if moved is not None else "",
        ]  # fmt: skip
        kind = "retro" if m.retroactive and m.counts else "cancelled" if not m.counts else ""
        row = "".join(f"<td>{html.escape(str(v))}</td>" for v in cells)
        rows.append(f'<tr class="{kind}">{row}</tr>' if kind else f"<tr>{row}</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _audit(summary: Summary | None, t: Texts) -> str:
    _ = t._
    if summary is None:
        return ""
    nothing = _("nothing recorded this month")
    items = "".join(
        f"<dt>{html.escape(_(AUDIT_LABELS.get(event, event)))}</dt><dd>{count}</dd>"
        for event, count in summary.counts.items()
    )
    items = items or f"<dd>{html.escape(nothing)}</dd>"
    head = summary.head
    chain = (
        _("chain head: row {row}, SHA-256 {hash}").format(row=head.last_id, hash="")
        if head
        else _("no chain head")
    )
    digest = f"<code>{html.escape(head.last_hash)}</code>" if head else ""
    verdict = summary.verdict
    state = (
        _("the whole chain verifies ({rows} rows)").format(rows=verdict.rows)
        if verdict is not None and verdict.ok
        else _("the chain is BROKEN at row {row}: {problem}").format(
            row=verdict.row if verdict else "?", problem=verdict.problem if verdict else ""
        )
    )
    rows = (
        _("rows {first} to {last}").format(first=summary.first_id, last=summary.last_id)
        if summary.first_id is not None
        else ""
    )
    heading, check = _("Audit trail"), _("Check it: pantau audit verify --anchor ROW:HASH")
    return (
        f"<h2>{html.escape(heading)}</h2><dl>{items}</dl>"
        f'<p class="meta">{html.escape(rows)} · {html.escape(chain)}{digest} · '
        f"{html.escape(state)}. {html.escape(check)}</p>"
    )


def to_html(report: MonthlyReport, lang: str | None = None) -> str:
    """A self-contained printable page (the browser's print dialog makes the PDF) in ``lang``
    (Indonesian by default)."""
    t = texts(lang, report.timezone)
    _ = t._
    title = html.escape(_("Camera availability {month}").format(month=report.month))
    meta = _(
        "{start} to {end} ({zone}); generated {generated}. availability = up / (up + down); "
        "strict = up / (up + down + unknown); maintenance seconds are set aside: only windows "
        "a supervisor approved and nobody cancelled."
    ).format(
        start=t.when(report.start),
        end=t.when(report.end),
        zone=report.timezone,
        generated=t.when(report.generated_at),
    )
    retro = _(
        "Retroactive windows (entered after they began) moved {seconds} s ({hours} h) from "
        "down to maintenance."
    ).format(
        seconds=t.number(report.retro_moved_seconds, 0),
        hours=t.number(report.retro_moved_seconds / 3600),
    )
    heads = [_("Districts"), _("Sites"), _("Maintenance windows"), _("Cameras")]
    h2 = [f"<h2>{html.escape(h)}</h2>" for h in heads]
    districts = [("district", r) for r in report.districts]
    sites = [("site", r) for r in report.sites]
    cameras = [("camera", r) for r in report.cameras]
    return (
        f'<!doctype html><html lang="{t.lang}"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{title}</h1>"
        f'<p class="meta">{html.escape(meta)}</p>'
        f'<p class="retro-total">{html.escape(retro)}</p>'
        f"{h2[0]}{_table(report, t, districts, ['district'])}"
        f"{h2[1]}{_table(report, t, sites, ['district', 'site'])}"
        f"{h2[2]}{_windows(report, t)}"
        f"{h2[3]}{_table(report, t, cameras, ['district', 'site', 'camera'])}"
        f"{remediation_html(report.remediation, t)}"
        f"{services_html(report.services, t)}"
        f"{_audit(report.audit, t)}"
        "</body></html>"
    )
