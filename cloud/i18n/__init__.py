"""Languages: gettext catalogs (Babel) for what people read, and the locale's dates and numbers.

The messages are written in English in the code; ``locales/<lang>/LC_MESSAGES/<domain>.po`` hold
the translations and are compiled when first loaded (no build step: a clean clone works). This
deployment speaks Bahasa Indonesia by default (``id``); English (``en``) is the source text.
Domains: ``pantau`` (notifications, the monthly report) and ``page`` (the technician page).
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

DEFAULT_LANG = "id"
LANGS = ("id", "en")
TIMEZONE = "Asia/Jakarta"  # the regency's clock: Western Indonesian Time (WIB)
DOMAINS = ("pantau", "page")


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "translate later"
    """Mark ``message`` for the catalog; it is translated where it is shown."""
    return message


def language(lang: str | None) -> str:
    """``lang`` if pantau speaks it (``id-ID`` -> ``id``), else the deployment's default."""
    short = (lang or "").replace("_", "-").split("-")[0].lower()
    return short if short in LANGS else DEFAULT_LANG


def catalog_path(lang: str, domain: str) -> str:
    """Where a catalog's .po lives in the package."""
    return f"locales/{lang}/LC_MESSAGES/{domain}.po"


@cache
def _translations(lang: str, domain: str) -> gettext.NullTranslations:
    """The compiled catalog (memoized: catalogs are read-only data shipped with the code)."""
    source = files("cloud.i18n").joinpath(catalog_path(lang, domain))
    if not source.is_file():
        return gettext.NullTranslations()  # the source language, or a language without it
    with source.open("rb") as po:
        catalog = read_po(po, locale=lang, domain=domain)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def page_catalog(lang: str) -> dict[str, str]:
    """The technician page's translations, msgid -> text (served as JSON to the page)."""
    lang = language(lang)
    source = files("cloud.i18n").joinpath(catalog_path(lang, "page"))
    if not source.is_file():
        return {}
    with source.open("rb") as po:
        catalog = read_po(po, locale=lang, domain="page")
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy}


@dataclass(frozen=True)
class Texts:
    """What a reader in one language sees: translated messages, local dates and numbers."""

    lang: str
    zone: ZoneInfo

    @property
    def locale(self) -> Locale:
        """The Babel locale (``id_ID``, ``en_GB``... for formats)."""
        return Locale.parse("id_ID" if self.lang == "id" else "en_GB")

    def _(self, message: str) -> str:
        """``message`` in this language."""
        return _translations(self.lang, "pantau").gettext(message)

    def n_(self, singular: str, plural: str, count: int) -> str:
        """The singular or plural message for ``count``, in this language."""
        return _translations(self.lang, "pantau").ngettext(singular, plural, count)

    def when(self, value: dt.datetime, fmt: str = "d MMM yyyy HH.mm") -> str:
        """A date and time on this deployment's clock, in the locale's words."""
        pattern = fmt if self.lang == "id" else fmt.replace("HH.mm", "HH:mm")
        return format_datetime(value, pattern, tzinfo=self.zone, locale=self.locale)

    def number(self, value: float, digits: int = 3) -> str:
        """A number with the locale's separators (``1.234,5`` in Indonesian)."""
        return format_decimal(
            round(value, digits), format=f"#,##0.{'0' * digits}", locale=self.locale
        )

    def percent(self, value: float | None, digits: int = 3) -> str:
        """A share as a percentage (``99,123 %``); empty for None."""
        if value is None:
            return ""
        return format_percent(value, format=f"#,##0.{'0' * digits} %", locale=self.locale)


def texts(lang: str | None = None, timezone: str = TIMEZONE) -> Texts:
    """The texts of ``lang`` (default: Indonesian) on ``timezone``'s clock."""
    return Texts(lang=language(lang), zone=ZoneInfo(timezone))
