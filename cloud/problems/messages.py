"""Problem messages as people read them (Telegram, the webhook's ``text``), in the deployment's
language (Bahasa Indonesia by default; ``cloud.i18n``) with local times."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any
from zoneinfo import ZoneInfo

from cloud.i18n import DEFAULT_LANG, N_, Texts, texts
from cloud.problems.model import Event

_ICONS = {"critical": "🟥", "major": "🔴", "minor": "🟠", "warning": "🟡"}
# Problem titles the rules give (translated when the catalog knows them; a rule's own title
# from the config stays as written).
TITLES = (
    N_("camera down"),
    N_("camera flapping"),
    N_("site offline (lost contact with the agent)"),
    N_("ingest stalled (collector, broker or InfluxDB)"),
    N_("cabinet too hot"),
    N_("cabinet too humid"),
    N_("mains lost (UPS on battery)"),
    N_("UPS battery low"),
    N_("edge backlog growing (uplink trouble)"),
    N_("duplicate site id (two agents use one site id)"),
    N_("site clock wrong"),
    N_("site claims another district"),
    N_("recording gap"),
    N_("retention below goal"),
    N_("recorder disk failed"),
    N_("camera replaced"),
    N_("camera firmware changed"),
    N_("camera clock wrong"),
    N_("camera tampered"),
    N_("video signal lost"),
    N_("camera storage failed"),
    N_("camera rebooted"),
    N_("camera down: link"),
    N_("camera hung"),
    N_("camera view changed"),
    N_("camera picture fault"),
    N_("switch unreachable (its cameras' ports unknown)"),
    N_("service down"),
    N_("service unreachable from a district"),
    N_("services unreachable from the site (its internet path)"),
    N_("service certificate expiring"),
    N_("service answers slowly"),
)
SEVERITIES = (N_("critical"), N_("major"), N_("minor"), N_("warning"))


def _clock(ns: int, t: Texts) -> str:
    return t.when(dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC), "d MMM HH.mm zzz")


def _span(seconds: float, t: Texts) -> str:
    minutes = int(seconds // 60)
    if not minutes:
        return t._("{s} s").format(s=int(seconds))
    if minutes < 60:
        return t._("{m} min").format(m=minutes)
    return t._("{h} h {m} min").format(h=minutes // 60, m=f"{minutes % 60:02d}")


def render_text(
    event: Event,
    problem: dict[str, Any],
    *,
    zone: ZoneInfo,
    page_url: str | None,
    lang: str = DEFAULT_LANG,
) -> str:
    """A short HTML message (Telegram's ``parse_mode=HTML`` subset), one fact per line."""
    t = texts(lang, zone.key)
    _ = t._
    e = html.escape
    district = _("district")
    where = f"{e(problem['subject'])} · {e(district)} {e(problem['district'] or '-')}"
    since = _clock(problem["since_ns"], t)
    title = e(_(problem["title"]))
    if event is Event.OPEN:
        head, severity = _("PROBLEM"), _(problem["severity"])
        lines = [
            f"{_ICONS.get(problem['severity'], '🔴')} <b>{e(head)}</b> [{e(severity)}] {title}",
            where,
            e(_("since {when}").format(when=since)),
            e(_("cause: {cause}").format(cause=problem["cause"])),
        ]
        cameras = problem.get("details", {}).get("cameras") or []
        if cameras:
            names = ", ".join(str(c["camera"]) for c in cameras)
            lines.append(
                e(_("cameras out of sight ({count}): {names}").format(
                    count=len(cameras), names=names
                ))
            )  # fmt: skip
        if problem.get("reopen_count"):
            lines.append(e(_("returned (reopened {count}x)").format(count=problem["reopen_count"])))
    else:
        resolved = problem.get("resolved_ns") or problem["since_ns"]
        head = _("RESOLVED")
        lines = [
            f"✅ <b>{e(head)}</b> {title}",
            where,
            e(
                _("lasted {span} ({start} – {end})").format(
                    span=_span((resolved - problem["since_ns"]) / 1e9, t),
                    start=since,
                    end=_clock(resolved, t),
                )
            ),
        ]
    if page_url:
        link = _("open the technician page")
        lines.append(f'<a href="{e(page_url)}">{e(link)}</a>')
    return "\n".join(lines)
