"""Problems from a live simulated outage, through the API and the technician page in a real
headless Chromium: listed, acknowledged with the button, still acknowledged after a reload."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

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
from cloud.problems.config import EvaluatorConfig
from cloud.problems.service import run_problems
from devtools.localsvc import InfluxProcess, MosquittoProcess
from simulators.cameras import CameraMode
from simulators.scenario import PowerEvent, Scenario, SimSite
from tests.auth import add_user, bearer
from tests.helpers import async_wait_for, running_simulation, serving
from tests.receiver import Receiver, receiver

PASSWORD = "siti-password"


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
        "--window-size=412,915",  # a phone screen
    ):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
async def stack(
    influxd: InfluxProcess, database: str, tmp_path: Path
) -> AsyncIterator[tuple[str, Receiver, dict[str, str]]]:
    """The API (with the page) and the problems service on one state database; Siti, a
    technician of every district, signs in with a password."""
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    add_user(state_url, "Siti", Role.TECHNICIAN, password=PASSWORD, lang="en")  # reads English
    auth = bearer(add_user(state_url, "reader", Role.VIEWER))
    with receiver() as hook:
        config = EvaluatorConfig.model_validate(
            {
                "influx_url": influxd.url,
                "database": database,
                "state_url": state_url,
                "interval": 0.5,
                "rules": {
                    "camera": {"down_for": 2, "clear_for": 3},
                    "site": {"offline_for": 1, "clear_for": 3, "stale_after": 6},
                    "thresholds": [],
                },
                "notify": {"targets": [{"type": "webhook", "name": "ops", "url": hook.url}]},
            }
        )
        app = create_app(
            influx=InfluxSettings(url=influxd.url, database=database),
            state_url=state_url,
        )
        stop = asyncio.Event()
        problems = asyncio.create_task(run_problems(config, stop), name="problems")
        try:
            async with serving(app) as url:
                yield url, hook, auth
        finally:
            stop.set()
            await problems


async def problems(http: httpx.AsyncClient, state: str = "unresolved") -> dict[str, Any]:
    response = await http.get("/api/problems", params={"state": state})
    return {p["key"]: p for p in response.json()} if response.status_code == 200 else {}


async def test_outage_to_acknowledged_problem_in_a_real_browser(
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
    stack: tuple[str, Receiver, dict[str, str]],
    browser: webdriver.Chrome,
) -> None:
    """Camera down -> problem on the page -> ack button -> acknowledged (survives a reload) ->
    recovery resolves it without a message; a power cut is one site problem, cameras folded."""
    url, hook, auth = stack
    scenario = Scenario(
        seed=3,
        probe_interval=1.0,
        probe_timeout=0.4,
        keepalive=2,
        sites=[
            SimSite(id="s1", district="d1", lat=-3.8, lon=102.2, cameras=2),
            SimSite(id="s2", district="d2", lat=-3.9, lon=102.3, cameras=2),
        ],
    )
    async with (
        running_simulation(
            scenario,
            mqtt_url=broker.url,
            influx_url=influxd.url,
            database=database,
            workdir=tmp_path / "sim",
        ) as sim,
        httpx.AsyncClient(base_url=url, timeout=10, headers=auth) as http,
    ):

        async def all_up() -> bool:
            cameras = (await http.get("/api/cameras", params={"status": "up"})).json()
            return isinstance(cameras, list) and len(cameras) == 4

        await async_wait_for(all_up, timeout_s=30, what="4 cameras up")
        await sim.sites["s1"].cameras["c1"].set_mode(CameraMode.DOWN)
        power = PowerEvent.model_validate({"at": 0, "site": "s2", "power": "down", "for": 60})
        await sim.apply(power, "start")

        async def both_open() -> dict[str, Any] | None:
            found = await problems(http, "open")
            return found if {"camera:s1/c1", "site:s2"} <= set(found) else None

        found = await async_wait_for(both_open, timeout_s=30, what="camera and site problems")
        site = found["site:s2"]
        assert [c["camera"] for c in site["cameras"]] == ["c1", "c2"]
        assert not [k for k in found if k.startswith("camera:s2/")]
        camera = found["camera:s1/c1"]
        assert camera["cause"] == "refused at tcp" and camera["district"] == "d1"

        # The page, on a phone-sized window: signed in with the login form.
        await asyncio.to_thread(browser.get, f"{url}/")
        wait = WebDriverWait(browser, 15)
        await asyncio.to_thread(wait.until, expected_conditions.url_to_be(f"{url}/login"))
        browser.find_element(By.ID, "username").send_keys("Siti")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "submit").click()
        card = f'article[data-problem-id="{camera["id"]}"]'
        await asyncio.to_thread(
            wait.until, expected_conditions.presence_of_element_located((By.CSS_SELECTOR, card))
        )
        cards = browser.find_elements(By.CSS_SELECTOR, "article.card")
        assert cards[0].get_attribute("data-problem-id") == str(site["id"])  # critical first
        text = browser.find_element(By.CSS_SELECTOR, card).text
        assert "camera down" in text and "s1/c1" in text and "refused at tcp" in text
        browser.find_element(By.CSS_SELECTOR, f"{card} button.ack").click()
        browser.find_element(By.CSS_SELECTOR, f"{card} .ack-comment").send_keys("on my way")
        browser.find_element(By.CSS_SELECTOR, f"{card} .ack-send").click()
        acked = f'{card}[data-state="acknowledged"]'
        await asyncio.to_thread(
            wait.until, expected_conditions.presence_of_element_located((By.CSS_SELECTOR, acked))
        )
        stored = (await problems(http))["camera:s1/c1"]
        assert (stored["state"], stored["acknowledged_by"], stored["ack_comment"]) == (
            "acknowledged",
            "Siti",
            "on my way",
        )
        await asyncio.to_thread(browser.refresh)
        await asyncio.to_thread(
            wait.until, expected_conditions.presence_of_element_located((By.CSS_SELECTOR, acked))
        )
        assert (
            "acknowledged by Siti — on my way" in browser.find_element(By.CSS_SELECTOR, acked).text
        )

        # Recovery: the acknowledged camera resolves silently; the site's return is announced.
        await sim.sites["s1"].cameras["c1"].set_mode(CameraMode.UP)
        await sim.apply(power, "end")

        async def all_resolved() -> bool:
            unresolved = await problems(http)
            return not unresolved and len(await problems(http, "resolved")) == 2

        await async_wait_for(all_resolved, timeout_s=40, what="both problems resolved")
        await async_wait_for(
            lambda: asyncio.sleep(0, len(hook.requests) >= 3), timeout_s=10, what="messages"
        )
        assert sorted((b["event"], b["problem"]["key"]) for b in hook.bodies()) == [
            ("open", "camera:s1/c1"),
            ("open", "site:s2"),
            ("resolve", "site:s2"),
        ]
