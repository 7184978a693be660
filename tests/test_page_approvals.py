"""The supervisor's approval screen in a real headless Chromium: a technician's maintenance
requests wait under "Persetujuan"; a d1 supervisor sees d1's only, approves one and refuses the
other with a reason; the windows, their counting and the audit trail say so. A technician has
no approval screen."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions

from cloud.api.app import create_app
from cloud.audit import AuditTrail
from cloud.auth.principal import Role
from cloud.influx import InfluxClient, InfluxSettings
from cloud.lineproto import batch_lines, status_line
from devtools.localsvc import InfluxProcess
from pantau.core.contract import CameraReading, Cause, ReadingBatch, SiteStatus
from tests.auth import add_user, bearer
from tests.helpers import serving
from tests.test_auth_page import browser  # noqa: F401 - the Chromium fixture
from tests.test_page_actions import PASSWORD, sign_in_page


async def test_a_supervisor_approves_and_refuses_requests_on_the_page(
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
    browser: webdriver.Chrome,  # noqa: F811
) -> None:
    """Two d1 requests and one d2 request; sup1 (d1) approves the first and refuses the second
    ("tidak sesuai jadwal"); the d2 request is never shown and stays requested."""
    settings = InfluxSettings(url=influxd.url, database=database)
    lines: list[str] = []
    for site, district in (("s1", "d1"), ("s2", "d2")):
        now = time.time_ns()
        reading = CameraReading(camera="c1", ts=now, up=True, cause=Cause.OK)
        lines += batch_lines(ReadingBatch(site=site, district=district, cameras=[reading]))
        birth = SiteStatus(
            site=site, district=district, online=True, ts=now, lat=-3.8, lon=102.2, session=now
        )
        lines.append(status_line(birth, now))
    async with InfluxClient(settings) as influx:
        await influx.write("\n".join(lines).encode())
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    techs = {
        d: bearer(add_user(state_url, f"tech-{d}", Role.TECHNICIAN, [d], password=PASSWORD))
        for d in ("d1", "d2")
    }
    add_user(state_url, "sup1", Role.SUPERVISOR, ["d1"], password=PASSWORD)
    admin = bearer(add_user(state_url, "admin", Role.ADMIN))
    app = create_app(influx=settings, state_url=state_url)
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        ids = []
        for site, reason, tech in (
            ("s1", "mengganti catu daya", techs["d1"]),
            ("s1", "membersihkan lensa", techs["d1"]),
            ("s2", "kabel baru", techs["d2"]),
        ):
            body = {
                "site": site,
                "start": start.isoformat(),
                "end": (start + dt.timedelta(hours=2)).isoformat(),
                "reason": reason,
            }
            made = await http.post("/api/maintenance", json=body, headers=tech)
            assert made.status_code == 201, made.text
            assert made.json()["status"] == "requested"
            ids.append(made.json()["id"])

        # A technician has no approval screen.
        await sign_in_page(browser, url, "tech-d1")
        assert not browser.find_element(By.ID, "tab-maintenance").is_displayed()
        browser.find_element(By.ID, "signout").click()

        wait = await sign_in_page(browser, url, "sup1")
        tab = browser.find_element(By.ID, "tab-maintenance")
        await asyncio.to_thread(wait.until, expected_conditions.visibility_of(tab))
        assert tab.text == "Persetujuan"
        tab.click()
        first, second = (f'article[data-window-id="{i}"]' for i in ids[:2])
        await asyncio.to_thread(
            wait.until, expected_conditions.presence_of_element_located((By.CSS_SELECTOR, second))
        )
        shown = {
            int(c.get_attribute("data-window-id") or 0)
            for c in browser.find_elements(By.CSS_SELECTOR, "article.window")
        }
        assert shown == set(ids[:2])
        text = browser.find_element(By.CSS_SELECTOR, first).text
        assert "Permintaan pemeliharaan" in text and "diminta oleh tech-d1" in text
        assert "mengganti catu daya" in text
        browser.find_element(By.CSS_SELECTOR, f"{first} button.approve").click()
        await asyncio.to_thread(
            wait.until,
            expected_conditions.invisibility_of_element_located((By.CSS_SELECTOR, first)),
        )
        browser.find_element(By.CSS_SELECTOR, f"{second} button.refuse").click()
        browser.find_element(By.CSS_SELECTOR, f"{second} .refuse-reason").send_keys(
            "tidak sesuai jadwal"
        )
        browser.find_element(By.CSS_SELECTOR, f"{second} .refuse-send").click()
        await asyncio.to_thread(
            wait.until,
            expected_conditions.text_to_be_present_in_element(
                (By.ID, "list"), "Tidak ada permintaan pemeliharaan yang menunggu"
            ),
        )
        windows = {w["id"]: w for w in (await http.get("/api/maintenance", headers=admin)).json()}
    approved, refused, other = (windows[i] for i in ids)
    assert (approved["status"], approved["approved_by"], approved["counts"]) == (
        "approved",
        "sup1",
        True,
    )
    assert (refused["status"], refused["cancelled_by"], refused["cancel_reason"]) == (
        "cancelled",
        "sup1",
        "tidak sesuai jadwal",
    )
    assert refused["counts"] is False
    assert other["status"] == "requested"
    trail = AuditTrail(state_url)
    try:
        rows = [(r.event, r.actor, r.target) for r in trail.records() if r.actor == "sup1"]
    finally:
        trail.close()
    assert rows[-2:] == [
        ("maintenance_approved", "sup1", f"maintenance:{ids[0]}"),
        ("maintenance_cancelled", "sup1", f"maintenance:{ids[1]}"),
    ]
