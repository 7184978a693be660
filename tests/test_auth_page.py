"""The technician page behind identity, in a real headless Chromium: a d1 technician is sent to
the login form, signs in, sees only d1's problems and acknowledges one; the browser keeps no
credential in localStorage and the session cookie is out of the page script's reach."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from cloud.api.app import create_app
from cloud.auth.principal import Role
from cloud.influx import InfluxSettings
from tests.auth import add_user, bearer, open_problem
from tests.helpers import serving

PASSWORD = "d1-technician-pw"


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """Debian's chromium driven through Debian's chromedriver (installed by make setup)."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert binary and driver, "chromium and chromium-driver are missing: run make setup"
    options = Options()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=412,915",
    ):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[str, str, dict[str, int]]]:
    """The API with two problems in d1, two in d2, and a technician of d1."""
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    ids = {
        f"{s}/{c}": open_problem(state_url, s, d, c)
        for s, d in (("s1", "d1"), ("s2", "d2"))
        for c in ("c1", "c2")
    }
    add_user(state_url, "tech1", Role.TECHNICIAN, ["d1"], password=PASSWORD)
    admin = add_user(state_url, "admin", Role.ADMIN)
    app = create_app(
        influx=InfluxSettings(url="http://127.0.0.1:9", database="unused"), state_url=state_url
    )
    async with serving(app) as url:
        yield url, admin, ids


async def test_d1_technician_signs_in_sees_d1_only_and_acknowledges(
    site: tuple[str, str, dict[str, int]], browser: webdriver.Chrome
) -> None:
    """/ -> /login -> signed in -> d1's two problems only -> one acknowledged as tech1."""
    url, admin, ids = site
    wait = WebDriverWait(browser, 15)
    await asyncio.to_thread(browser.get, f"{url}/")
    await asyncio.to_thread(wait.until, expected_conditions.url_to_be(f"{url}/login"))
    browser.find_element(By.ID, "username").send_keys("tech1")
    browser.find_element(By.ID, "password").send_keys("wrong-password")
    browser.find_element(By.ID, "submit").click()
    await asyncio.to_thread(
        wait.until,
        expected_conditions.text_to_be_present_in_element(
            (By.ID, "error"),
            "nama pengguna atau kata sandi salah",  # Indonesian by default
        ),
    )
    browser.find_element(By.ID, "username").clear()
    browser.find_element(By.ID, "username").send_keys("tech1")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "submit").click()

    mine = f'article[data-problem-id="{ids["s1/c1"]}"]'
    await asyncio.to_thread(
        wait.until, expected_conditions.presence_of_element_located((By.CSS_SELECTOR, mine))
    )
    assert browser.current_url == f"{url}/"
    shown = {
        int(card.get_attribute("data-problem-id") or 0)
        for card in browser.find_elements(By.CSS_SELECTOR, "article.card")
    }
    assert shown == {ids["s1/c1"], ids["s1/c2"]}
    assert "tech1 · teknisi · kabupaten/kota d1" in browser.find_element(By.ID, "who").text
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "id"
    assert "kamera mati" in browser.find_element(By.CSS_SELECTOR, mine).text

    browser.find_element(By.CSS_SELECTOR, f"{mine} button.ack").click()
    browser.find_element(By.CSS_SELECTOR, f"{mine} .ack-comment").send_keys("on my way")
    send = browser.find_element(By.CSS_SELECTOR, f"{mine} .ack-send")
    assert send.text == "Tangani sebagai tech1"
    send.click()
    acked = f'{mine}[data-state="acknowledged"]'
    await asyncio.to_thread(
        wait.until, expected_conditions.presence_of_element_located((By.CSS_SELECTOR, acked))
    )
    assert "ditangani oleh tech1 — on my way" in browser.find_element(By.CSS_SELECTOR, acked).text

    # Nothing to steal from the page: no stored credential, the cookie hidden from script.
    assert browser.execute_script("return window.localStorage.length") == 0
    assert "pantau_session" not in browser.execute_script("return document.cookie")
    cookie = browser.get_cookie("pantau_session")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    async with httpx.AsyncClient(base_url=url, headers=bearer(admin)) as http:
        stored = {p["id"]: p for p in (await http.get("/api/problems")).json()}
    assert (stored[ids["s1/c1"]]["state"], stored[ids["s1/c1"]]["acknowledged_by"]) == (
        "acknowledged",
        "tech1",
    )
    assert {stored[ids[k]]["state"] for k in ("s1/c2", "s2/c1", "s2/c2")} == {"open"}
    # The audit trail names them: the wrong password, the sign-in, the acknowledgement.
    async with httpx.AsyncClient(base_url=url, headers=bearer(admin)) as http:
        audit = (await http.get("/api/audit")).json()
    assert audit["verified"]
    assert [(r["event"], r["actor"], r["target"]) for r in audit["rows"]] == [
        ("login_failed", "-", "user:tech1"),
        ("login", "tech1", "user:tech1"),
        ("ack", "tech1", f"problem:{ids['s1/c1']}"),
    ]
    assert audit["rows"][-1]["details"]["ack_comment"] == "on my way"

    # Signing out ends it: the page goes back to the login.
    browser.find_element(By.ID, "signout").click()
    await asyncio.to_thread(wait.until, expected_conditions.url_to_be(f"{url}/login"))
    await asyncio.to_thread(browser.get, f"{url}/")
    await asyncio.to_thread(wait.until, expected_conditions.url_to_be(f"{url}/login"))
