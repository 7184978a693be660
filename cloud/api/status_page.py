"""The public status page's HTML (gettext domain ``pantau``, ``cloud.i18n``): Indonesian unless
``?lang=en``, with a link to the other language. No script; since when on the regency's clock
(WIB)."""

from __future__ import annotations

import html
from zoneinfo import ZoneInfo

from cloud.api.schemas import PublicServiceOut
from cloud.i18n import LANGS, N_, Texts, texts

_WIB = ZoneInfo("Asia/Jakarta")  # the regency's time, as citizens read it
LABELS = {
    "up": N_("Operating normally"),
    "down": N_("Disrupted"),
    "unknown": N_("Unknown"),
    "maintenance": N_("Under maintenance"),
}
TITLE = N_("Service status")
SINCE = N_("since {when}")
LONG_AGO = N_("for more than 6 hours")
# Each language's link is written in that language, so a reader finds their own.
OTHER = {"id": ("en", "English"), "en": ("id", "Bahasa Indonesia")}


def page_language(asked: str | None, default: str) -> str:
    """The page's language: ``asked`` (``?lang=``) if pantau speaks it, else ``default`` (the
    deployment's: Indonesian unless ``pantau api --lang``). The browser's Accept-Language is
    not followed: public-service information is in Bahasa Indonesia (UU 24/2009, art. 38), many
    phones in the regency run an English interface, and every citizen should read the same
    page; the page links to the other language instead."""
    return asked if asked in LANGS else default


def render(services: list[PublicServiceOut], lang: str) -> str:
    """The whole page for ``services`` in ``lang``."""
    t = texts(lang)
    rows = "".join(_row(s, t) for s in services)
    title = html.escape(t._(TITLE))
    other, name = OTHER[t.lang]
    switch = f'<a id="lang" lang="{other}" href="?lang={other}">{name}</a>'
    page = _PAGE.replace("{lang}", t.lang).replace("{title}", title)
    return page.replace("{switch}", switch).replace("{rows}", rows)


def _row(s: PublicServiceOut, t: Texts) -> str:
    when = (
        t._(LONG_AGO)
        if s.since is None
        else t._(SINCE).format(when=s.since.astimezone(_WIB).strftime("%d-%m-%Y %H:%M WIB"))
    )
    return (
        f'<tr class="{s.state}"><td class="name">{html.escape(s.title)}</td>'
        f'<td class="state">{html.escape(t._(LABELS[s.state]))}</td>'
        f'<td class="since">{html.escape(when)}</td></tr>'
    )


_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{font-family:sans-serif;margin:2em auto;max-width:40em;color:#222}
table{width:100%;border-collapse:collapse}td{padding:.5em;border-bottom:1px solid #ddd}
tr.up .state{color:#1a7f37}tr.down .state{color:#c62828;font-weight:bold}
tr.unknown .state{color:#777}tr.maintenance .state{color:#8a6d00}
</style></head>
<body><p style="float:right">{switch}</p><h1>{title}</h1>
<table id="services"><tbody>{rows}</tbody></table>
</body></html>
"""
