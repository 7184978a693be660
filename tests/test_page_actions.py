"""The technician page's camera actions in a real headless Chromium, on real snmpd, mosquitto
and InfluxDB: a d1 technician power-cycles a hung camera from its problem card, and the action
appears in the problem's history with the agent's outcome (done, camera back); a viewer sees no
button and the API refuses them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from cloud.api.app import create_app
from cloud.auth.principal import Role
from cloud.influx import InfluxSettings
from cloud.remediation.config import RemediationConfig
from cloud.schema import CAMERA
from devtools.localsvc import InfluxProcess, MosquittoProcess
from edge_agent.agent import Agent
from pantau.core.signing import new_key_pair
from simulators.cameras import CameraMode, FakeCamera
from simulators.switch import FakeSwitch, power_cameras, running_switch
from tests.auth import add_user, bearer, open_problem
from tests.helpers import async_wait_for, influx_rows, serving
from tests.test_auth_page import browser  # noqa: F401 - the Chromium fixture
from tests.test_receipts import start_collector
from tests.test_remediation import _agent_config

PASSWORD = "page-actions-pw"


@pytest.fixture
def snmp_switch(tmp_path: Path) -> Iterator[FakeSwitch]:
    with running_switch(tmp_path / "switch") as switch:
        yield switch


async def sign_in_page(browser: webdriver.Chrome, url: str, username: str) -> WebDriverWait:  # noqa: F811
    """Open the page, sign in with the form, wait for the page's first list; the wait used."""
    wait = WebDriverWait(browser, 20)
    await asyncio.to_thread(browser.get, f"{url}/login")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "submit").click()
    await asyncio.to_thread(wait.until, expected_conditions.url_to_be(f"{url}/"))
    await asyncio.to_thread(  # the page has asked who is signed in and drawn its list
        wait.until,
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "body[data-loaded]")),
    )
    return wait


@pytest.mark.services
async def test_a_technician_power_cycles_from_the_page_and_sees_the_outcome(
    snmp_switch: FakeSwitch,
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
    browser: webdriver.Chrome,  # noqa: F811
) -> None:
    """hung c1 -> Power-cycle -> confirm -> the history shows the action, then "done, camera
    back" (Indonesian); the problem's actions name tech1; viewer: no button, 403."""
    private, public = new_key_pair()
    key_file = tmp_path / "command.key"
    key_file.write_text(private + "\n")
    cam = FakeCamera("c1")
    await cam.start()
    await cam.set_mode(CameraMode.HUNG)
    power = asyncio.create_task(power_cameras(snmp_switch, {1: cam}), name="poe")
    _collector, collector_task = await start_collector(broker, influxd.url, database, tmp_path)
    agent = Agent(_agent_config(snmp_switch, broker, {"c1": cam}, public, tmp_path))
    agent_task = asyncio.create_task(agent.run(), name="page-agent")
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    problem = open_problem(state_url, "s1", "d1", "c1")
    add_user(state_url, "tech1", Role.TECHNICIAN, ["d1"], password=PASSWORD)
    viewer = bearer(add_user(state_url, "viewer1", Role.VIEWER, ["d1"], password=PASSWORD))
    remediation = RemediationConfig.model_validate(
        {"broker": {"url": broker.url, "client_id": "page-rem"}, "key_file": str(key_file)}
    )
    app = create_app(
        influx=InfluxSettings(url=influxd.url, database=database),
        state_url=state_url,
        remediation=remediation,
    )
    try:
        await async_wait_for(
            lambda: asyncio.to_thread(
                influx_rows, influxd.url, database, f'SELECT last("up") FROM "{CAMERA}"'
            ),
            timeout_s=30,
            what="the hung camera's probes in InfluxDB",
        )
        async with serving(app) as url:
            wait = await sign_in_page(browser, url, "tech1")
            card = f'article[data-problem-id="{problem}"]'
            await asyncio.to_thread(
                wait.until,
                expected_conditions.element_to_be_clickable(
                    (By.CSS_SELECTOR, f"{card} button.power-cycle")
                ),
            )
            browser.find_element(By.CSS_SELECTOR, f"{card} button.power-cycle").click()
            send = browser.find_element(By.CSS_SELECTOR, f"{card} .power-cycle-send")
            assert send.text == "Nyalakan ulang daya c1 sekarang"
            send.click()
            done = f'{card} li.action[data-result="done"]'
            await asyncio.to_thread(
                WebDriverWait(browser, 60).until,
                expected_conditions.presence_of_element_located((By.CSS_SELECTOR, done)),
            )
            line = browser.find_element(By.CSS_SELECTOR, done).text
            assert "nyala ulang daya · tech1 · selesai, kamera kembali setelah" in line, line
            assert cam.mode is CameraMode.UP
            async with httpx.AsyncClient(base_url=url, timeout=30, headers=viewer) as http:
                (action,) = (await http.get(f"/api/problems/{problem}/actions")).json()
                refused = await http.post("/api/cameras/s1/c1/power-cycle")
            assert (action["trigger"], action["action"], action["result"]) == (
                "user:tech1",
                "power_cycle",
                "done",
            )
            assert action["up_after"] is True
            assert refused.status_code == 403

            # The viewer: the same card, no button.
            browser.find_element(By.ID, "signout").click()
            await asyncio.to_thread(wait.until, expected_conditions.url_to_be(f"{url}/login"))
            await sign_in_page(browser, url, "viewer1")
            await asyncio.to_thread(
                wait.until,
                expected_conditions.presence_of_element_located(
                    (By.CSS_SELECTOR, f"{card} li.action")
                ),
            )
            assert not browser.find_elements(By.CSS_SELECTOR, f"{card} button")
    finally:
        for task in (agent_task, collector_task, power):
            task.cancel()
        await asyncio.gather(agent_task, collector_task, power, return_exceptions=True)
        await cam.stop()
