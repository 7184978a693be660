"""Bahasa Indonesia by default, English available: the catalogs cover every text the code
marks, notifications and the monthly report come out in Indonesian with local dates (Asia/
Jakarta) and numbers, and the catalogs load from the .po files alone (a clean clone)."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import httpx
import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from cloud.availability import AvailabilityRow
from cloud.i18n import catalog_path, language, page_catalog, texts
from cloud.maintenance import Approval, Maintenance
from cloud.problems.config import NotifyConfig, Severity
from cloud.problems.model import Observation, Verdict
from cloud.problems.notify import Notifier
from cloud.problems.store import ProblemStore
from cloud.report.monthly import MonthlyReport, MovedSeconds
from cloud.report.render import to_csv, to_html
from tests.receiver import receiver

ROOT = Path(__file__).resolve().parent.parent
I18N = ROOT / "cloud" / "i18n"
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def catalog(domain: str) -> dict[str, str]:
    """The Indonesian catalog of ``domain``: msgid -> msgstr."""
    with (I18N / catalog_path("id", domain)).open("rb") as po:
        return {str(m.id): str(m.string) for m in read_po(po) if m.id}


def python_ids(path: str, keywords: tuple[str, ...]) -> set[str]:
    """Messages marked in a Python module."""
    found = extract_from_file("python", ROOT / path, keywords=dict.fromkeys(keywords))
    return {msg for _, msg, _, _ in found if msg}


def test_every_marked_text_has_an_indonesian_translation() -> None:
    """Notifications and the report (``_``/``N_``), the page's JS (``t``), its HTML
    (``data-i18n``): each text is translated, keeping its {placeholders}."""
    server = python_ids("cloud/report/render.py", ("_", "N_"))
    server |= python_ids("cloud/problems/messages.py", ("_", "N_"))
    server |= python_ids("cloud/api/status_page.py", ("_", "N_"))
    page: set[str] = set()
    for script in sorted((ROOT / "cloud/api/static").glob("*.js")):  # every script of the page
        found = extract_from_file("javascript", script, {"t": None})
        page |= {msg for _, msg, _, _ in found if msg}
    for name in ("technician.html", "login.html"):
        page |= set(
            re.findall(
                r'data-i18n(?:-label)?="([^"]+)"', (ROOT / "cloud/api/static" / name).read_text()
            )
        )
    page |= python_ids("cloud/api/i18n.py", ("N_",)) | python_ids(
        "cloud/problems/messages.py", ("N_",)
    )
    assert len(server) > 60 and len(page) > 50  # the extraction found the texts at all
    for domain, wanted in (("pantau", server), ("page", page)):
        known = catalog(domain)
        missing = sorted(m for m in wanted if not known.get(m))
        assert not missing, f"{domain}.po lacks: {missing}"
        for message in wanted:
            assert set(PLACEHOLDER.findall(known[message])) == set(PLACEHOLDER.findall(message))


def test_catalogs_load_from_the_po_files_alone() -> None:
    """No compiled .mo is kept anywhere: the .po is compiled when first loaded."""
    assert not list(I18N.rglob("*.mo"))
    assert texts("id")._("camera down") == "kamera mati"
    assert texts("en")._("camera down") == "camera down"
    assert page_catalog("id")["Acknowledge"] == "Tangani"
    assert page_catalog("en") == {}
    assert (language("id-ID"), language("en_GB"), language("fr"), language(None)) == (
        "id", "en", "id", "id",
    )  # fmt: skip


def test_dates_and_numbers_in_the_locale_on_jakarta_time() -> None:
    """17:30 UTC on 31 December is 00.30 on 1 January in Jakarta; 1234.5 is 1.234,5."""
    instant = dt.datetime(2026, 12, 31, 17, 30, tzinfo=dt.UTC)
    assert texts("id").when(instant) == "1 Jan 2027 00.30"
    assert texts("en").when(instant) == "1 Jan 2027 00:30"
    assert texts("id").number(1234.5, 1) == "1.234,5"
    assert texts("en").number(1234.5, 1) == "1,234.5"
    assert texts("id").percent(0.99125) == "99,125 %"


async def test_a_notification_comes_out_in_indonesian_by_default(tmp_path: Path) -> None:
    """The notifier with its default settings posts 'MASALAH ... kamera mati ... sejak ... WIB'
    to a real webhook; with lang: en the same problem reads 'PROBLEM ... camera down'."""
    since = time.time_ns() - 300 * 10**9
    observation = Observation(
        key="camera:s1/c1", rule="camera", title="camera down", severity=Severity.MAJOR,
        verdict=Verdict.BAD, site="s1", district="d1", camera="c1", subject="s1/c1",
        since_ns=since, cause="timeout at tcp",
    )  # fmt: skip
    texts_by_lang = {}
    for lang in (None, "en"):
        store = ProblemStore(f"sqlite:///{tmp_path / f'{lang}.sqlite'}")
        with receiver() as hook:
            settings: dict[str, object] = {
                "targets": [{"type": "webhook", "name": "ops", "url": hook.url}]
            }
            if lang:
                settings["lang"] = lang
            config = NotifyConfig.model_validate(settings)
            problem = store.open(observation, now_ns=time.time_ns(), in_maintenance=False)
            assert problem is not None
            assert store.announce_open(problem.id, now_ns=time.time_ns(), targets=["ops"])
            async with httpx.AsyncClient() as http:
                assert await Notifier(store, config, http).deliver_due() == 1
            texts_by_lang[lang] = hook.bodies()[0]["text"]
        store.close()
    local = dt.datetime.fromtimestamp(since / 1e9, dt.UTC).astimezone(texts().zone)
    indonesian = texts_by_lang[None]
    assert "<b>MASALAH</b> [berat] kamera mati" in indonesian
    assert "kabupaten/kota d1" in indonesian and "penyebab: timeout at tcp" in indonesian
    assert f"sejak {local.day} {texts().when(local, 'MMM')} {local:%H.%M} WIB" in indonesian
    assert "<b>PROBLEM</b> [major] camera down" in texts_by_lang["en"]


def _report() -> MonthlyReport:
    zone = texts().zone
    start = dt.datetime(2026, 11, 1, tzinfo=zone)
    row = AvailabilityRow("s1", "d1", "c1", 2_500_000.0, 40_000.0, 5_600.0, 7_200.0)
    window = Maintenance(
        id=7, site="s1", district="d1", camera=None,
        start=dt.datetime(2026, 11, 5, 1, tzinfo=dt.UTC),
        end=dt.datetime(2026, 11, 5, 3, tzinfo=dt.UTC), reason="ganti PSU",
        created_by="spv_budi", created_at=dt.datetime(2026, 11, 6, tzinfo=dt.UTC),
        approval=Approval.SUPERVISOR, approved_by="spv_budi",
        approved_at=dt.datetime(2026, 11, 6, tzinfo=dt.UTC), retroactive=True,
        retro_reason="laporan kertas",
    )  # fmt: skip
    return MonthlyReport(
        month="2026-11", timezone="Asia/Jakarta", start=start,
        end=dt.datetime(2026, 12, 1, tzinfo=zone),
        districts=[AvailabilityRow("", "d1", "", *row_values(row))],
        sites=[AvailabilityRow("s1", "d1", "", *row_values(row))], cameras=[row],
        maintenance=[window], generated_at=dt.datetime(2026, 12, 1, 2, tzinfo=dt.UTC),
        seconds_to_build=0.1, retro_moved=[MovedSeconds("s1", "d1", "c1", 3_600.0)],
        moved_by_window={7: 3_600.0},
    )  # fmt: skip


def row_values(row: AvailabilityRow) -> tuple[float, float, float, float]:
    """A row's four second counts."""
    return (row.up_seconds, row.down_seconds, row.unknown_seconds, row.maintenance_seconds)


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (None, ['<html lang="id">', "Ketersediaan kamera 2026-11", "Kabupaten/kota",
                "98,425 %", "694,444", "5 Nov 2026 08.00", "susulan", "ya: laporan kertas",
                "memindahkan 3.600 detik (1,000 jam) dari mati ke pemeliharaan",
                "disetujui oleh spv_budi pada 6 Nov 2026 07.00"]),
        ("en", ['<html lang="en">', "Camera availability 2026-11", "Districts", "98.425 %",
                "694.444", "5 Nov 2026 08:00", "yes: laporan kertas",
                "moved 3,600 s (1.000 h) from down to maintenance"]),
    ],
)  # fmt: skip
def test_the_monthly_report_is_indonesian_by_default(lang: str | None, expected: list[str]) -> None:
    """The page in Indonesian unless asked for English: words, numbers, WIB dates, the
    retroactive window flagged with its reason; the CSV stays machine-readable."""
    page = to_html(_report(), lang)
    for text in expected:
        assert text in page, text
    assert "1.000" in to_csv(_report())  # retro_moved_hours: dot decimals in every language


@pytest.mark.parametrize("domain", ["pantau", "page"])
def test_each_text_is_translated_once(domain: str) -> None:
    """No msgid appears twice in a catalog (the loader would silently keep one of them, and
    two translations of one text could differ)."""
    text = (I18N / catalog_path("id", domain)).read_text(encoding="utf-8")
    ids: list[str] = []
    for entry in text.split("\n\n"):
        lines = [ln for ln in entry.splitlines() if not ln.startswith("#")]
        joined = ""
        for line in lines:
            if line.startswith("msgstr"):
                break
            joined += line.removeprefix("msgid ").strip().strip('"')
        if joined:
            ids.append(joined)
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicated, duplicated
