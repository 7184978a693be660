"""Problem messages as people read them (Telegram, the webhook's ``text``)."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any
from zoneinfo import ZoneInfo

from cloud.problems.model import Event

_ICONS = {"critical": "🟥", "major": "🔴", "minor": "🟠", "warning": "🟡"}


def _clock(ns: int, zone: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=zone).strftime("%d %b %H:%M %Z")


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min" if minutes else f"{int(seconds)} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def render_text(
    event: Event, problem: dict[str, Any], *, zone: ZoneInfo, page_url: str | None
) -> str:
    """A short HTML message (Telegram's ``parse_mode=HTML`` subset), one fact per line."""
    e = html.escape
    where = f"{e(problem['subject'])} · district {e(problem['district'] or '-')}"
    since = _clock(problem["since_ns"], zone)
    if event is Event.OPEN:
        lines = [
            f"{_ICONS.get(problem['severity'], '🔴')} <b>PROBLEM</b> [{e(problem['severity'])}] "
            f"{e(problem['title'])}",
            where,
            f"since {since}",
            f"cause: {e(problem['cause'])}",
        ]
        cameras = problem.get("details", {}).get("cameras") or []
        if cameras:
            names = ", ".join(e(str(c["camera"])) for c in cameras)
            lines.append(f"cameras out of sight ({len(cameras)}): {names}")
        if problem.get("reopen_count"):
            lines.append(f"returned (reopened {problem['reopen_count']}x)")
    else:
        resolved = problem.get("resolved_ns") or problem["since_ns"]
        lines = [
            f"✅ <b>RESOLVED</b> {e(problem['title'])}",
            where,
            f"lasted {_span((resolved - problem['since_ns']) / 1e9)} "
            f"({since} – {_clock(resolved, zone)})",
        ]
    if page_url:
        lines.append(f'<a href="{e(page_url)}">open the technician page</a>')
    return "\n".join(lines)
