"""The public status page in headless Chromium: an anonymous browser sees each service's
public name, up/down and since when, and nothing internal (no owner office, site, district,
URL or failure detail); /api/services needs identity and gives the state per service with its
OPD, and the availability per service and per OPD."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import yaml
from selenium import webdriver
from selenium.webdriver.common.by import By

from cloud.api.app import create_app
from cloud.api.status_page import page_language
from cloud.auth.principal import Role
from cloud.influx import InfluxClient, InfluxSettings
from cloud.lineproto import join_lines, service_line
from cloud.maintenance import StateStore
from devtools.localsvc import InfluxProcess
from pantau.core.readings import ServiceReading, ServiceStage
from tests.auth import add_user, bearer
from tests.helpers import serving
from tests.test_technician_page import browser  # noqa: F401 (fixture)

S, MIN = 10**9, 60 * 10**9
CATALOGUE = {
    "version": 1,
    "services": [
        {"name": "simpeg", "title": "SIMPEG Kepegawaian", "opd": "bkpsdm",
         "url": "https://simpeg.internal.test/login"},
        {"name": "sipd", "title": "SIPD Perencanaan", "opd": "bappeda",
         "url": "https://sipd.internal.test/"},
    ],
}  # fmt: skip


async def write_history(influx: InfluxClient, now: int) -> int:
    """30 minutes from the cloud, s1 and s2: sipd up throughout; simpeg up, then failing
    everywhere for the last 10 minutes. Returns the time of simpeg's first failing reading."""
    failed_at = now - 10 * MIN
    first_bad: int | None = None
    lines = []
    for minute in range(30):
        ts = now - (30 - minute) * MIN + 5 * S
        for site, district in (("cloud", "cloud"), ("s1", "d1"), ("s2", "d2")):
            lines.append(
                service_line(ServiceReading(service="sipd", ts=ts, ok=True), site, district)
            )
            bad = ts >= failed_at
            if bad and first_bad is None:
                first_bad = ts
            reading = ServiceReading(
                service="simpeg", ts=ts, ok=not bad, stage=ServiceStage.STATUS if bad else None,
                detail="status 503 from 10.20.0.7" if bad else "",
            )  # fmt: skip
            lines.append(service_line(reading, site, district))
    for site in ("s1", "s2"):
        lines.append(f"site,district=d{site[1]},site={site} online=1i {now - 40 * MIN}")
    await influx.write(join_lines(lines))
    assert first_bad is not None
    return first_bad


async def test_an_anonymous_browser_sees_the_state_and_nothing_else(
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
    browser: webdriver.Chrome,  # noqa: F811
) -> None:
    """SIMPEG shows 'Gangguan' since it began failing, SIPD 'Normal'; no internal word."""
    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump(CATALOGUE))
    settings = InfluxSettings(url=influxd.url, database=database)
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    now = time.time_ns()
    async with InfluxClient(settings) as influx:
        failed_at = await write_history(influx, now)
    app = create_app(influx=settings, state_url=state_url, services_catalogue=path)
    token = add_user(state_url, "ops", Role.VIEWER)
    async with serving(app) as url:
        await asyncio.to_thread(browser.get, f"{url}/status")
        rows = await asyncio.to_thread(browser.find_elements, By.CSS_SELECTOR, "#services tr")
        shown = {
            r.find_element(By.CLASS_NAME, "name").text: (
                r.find_element(By.CLASS_NAME, "state").text,
                r.find_element(By.CLASS_NAME, "since").text,
            )
            for r in rows
        }
        began = dt.datetime.fromtimestamp(failed_at // MIN * 60, ZoneInfo("Asia/Jakarta"))
        minute = began.strftime("%d-%m-%Y %H:%M")
        assert shown["SIMPEG Kepegawaian"] == ("Gangguan", f"sejak {minute} WIB"), shown
        assert shown["SIPD Perencanaan"][0] == "Normal"
        text = (await asyncio.to_thread(browser.find_element, By.TAG_NAME, "body")).text
        for internal in (
            "bkpsdm",
            "bappeda",
            "simpeg.internal",
            "s1",
            "d1",
            "503",
            "10.20",
            "cloud",
        ):
            assert internal not in text.lower(), internal
        source = browser.page_source
        assert "<script" not in source and "internal.test" not in source
        async with httpx.AsyncClient(base_url=url) as http:
            page = await http.get("/status")
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
            assert "script-src" not in page.headers["content-security-policy"]
            public = (await http.get("/status.json")).json()
            assert {tuple(sorted(s)) for s in public} == {("since", "state", "title")}
            assert (await http.get("/api/services")).status_code == 401
            assert (await http.get("/api/services/availability")).status_code == 401
            services = (await http.get("/api/services", headers=bearer(token))).json()
            assert {(s["name"], s["opd"], s["state"]) for s in services} == {
                ("simpeg", "bkpsdm", "down"),
                ("sipd", "bappeda", "up"),
            }
            window = {
                "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((now - 30 * MIN) // S)),
                "to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now // S)),
            }
            figures = (
                await http.get("/api/services/availability", params=window, headers=bearer(token))
            ).json()
            by = {(f["service"], f["opd"]): f for f in figures}
            assert by[("sipd", "bappeda")]["availability"] == 1.0
            simpeg = by[("simpeg", "bkpsdm")]
            assert 540 <= simpeg["down_seconds"] <= 660, simpeg
            assert by[(None, "bkpsdm")]["down_seconds"] == simpeg["down_seconds"]
            # The monthly report: per service and per OPD, in JSON and on the page.
            month = dt.datetime.fromtimestamp(now / S, ZoneInfo("Asia/Jakarta")).strftime("%Y-%m")
            report = (
                await http.get("/api/report", params={"month": month}, headers=bearer(token))
            ).json()["services"]
            rows = {r.get("service", r["opd"]): r for r in report["services"] + report["opds"]}
            began = dt.datetime.fromtimestamp(failed_at / S, ZoneInfo("Asia/Jakarta"))
            if began.strftime("%Y-%m") == month:  # not across a month's start
                assert 540 <= rows["simpeg"]["down_seconds"] <= 660, rows["simpeg"]
                assert rows["bkpsdm"]["down_seconds"] == rows["simpeg"]["down_seconds"]
            assert rows["sipd"]["availability"] == rows["bappeda"]["availability"] == 1.0
            page = await http.get(
                "/api/report", params={"month": month, "format": "html"}, headers=bearer(token)
            )
            assert "Layanan e-government" in page.text and "SIMPEG Kepegawaian" in page.text


def test_the_page_language_is_asked_for_never_guessed() -> None:
    """?lang=id|en wins; anything else is the deployment's default."""
    assert page_language("en", "id") == "en"
    assert page_language("id", "en") == "id"
    assert page_language(None, "id") == page_language("fr", "id") == "id"


async def test_the_page_is_indonesian_unless_english_is_asked(
    influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """Labels from the catalog: Indonesian by default, whatever the browser's language (a
    link offers English), English for ?lang=en; a service in an approved window shows
    maintenance."""
    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump(CATALOGUE))
    settings = InfluxSettings(url=influxd.url, database=database)
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    now = time.time_ns()
    async with InfluxClient(settings) as influx:
        await write_history(influx, now)
    store = StateStore(state_url)
    store.add(
        site=None, district=None, camera=None, service="sipd", reason="migrasi",
        created_by="spv", start=dt.datetime.fromtimestamp(now / S - 120, dt.UTC),
        end=dt.datetime.fromtimestamp(now / S + 3600, dt.UTC),
    )  # fmt: skip
    store.close()
    app = create_app(influx=settings, state_url=state_url, services_catalogue=path)
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:

        async def page(lang: str | None, accept: str) -> str:
            params = {"lang": lang} if lang else {}
            got = await http.get("/status", params=params, headers={"Accept-Language": accept})
            assert got.status_code == 200
            return got.text

        for indonesian in (
            await page(None, "id-ID,id;q=0.9"),
            await page(None, "en-US,en;q=0.9"),  # an English phone still reads the regency's
            await page("id", "en-US"),
            await page("fr", "fr-FR"),
        ):
            assert '<html lang="id">' in indonesian and "<h1>Status Layanan</h1>" in indonesian
            assert ">Gangguan<" in indonesian and ">Pemeliharaan<" in indonesian
            assert ">sejak " in indonesian and ">since " not in indonesian
            assert 'href="?lang=en">English</a>' in indonesian
        english = await page("en", "id-ID")
        assert '<html lang="en">' in english and "<h1>Service status</h1>" in english
        assert ">Disrupted<" in english and ">Under maintenance<" in english
        assert ">since " in english and "Gangguan" not in english and "sejak" not in english
        assert 'href="?lang=id">Bahasa Indonesia</a>' in english
        public = {s["title"]: s["state"] for s in (await http.get("/status.json")).json()}
        assert public == {"SIMPEG Kepegawaian": "down", "SIPD Perencanaan": "maintenance"}
