"""Accepting a changed view end to end, on a real RTSP server, mosquitto, InfluxDB and headless
Chromium: an agent learns a camera's view, the camera is turned (same URL, another picture), the
probe says view_changed and the problem rules open "camera view changed"; a technician accepts
the new view with the page's button; the API records it and sends a signed ``accept_view``
command; the agent adopts the current view at once (far before ``view_relearn_probes``), answers
done, its next probe is healthy and the problem resolves. A viewer cannot accept."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions

from cloud.api.app import create_app
from cloud.audit import AuditTrail
from cloud.auth.principal import Role
from cloud.influx import InfluxClient, InfluxSettings
from cloud.maintenance import StateStore
from cloud.problems.config import RulesConfig
from cloud.problems.evaluator import Evaluator
from cloud.problems.observe import VIEW_CHANGED_TITLE, Observer
from cloud.problems.store import ProblemStore
from cloud.remediation.config import RemediationConfig
from cloud.schema import REMEDIATION, STREAM
from devtools.localsvc import InfluxProcess, ManagedProcess, MosquittoProcess
from devtools.rtspserver import make_gst_rtsp
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from pantau.core.signing import new_key_pair
from simulators.scenes import Scene, encode
from tests.auth import add_user, bearer
from tests.helpers import async_wait_for, influx_rows, serving
from tests.test_auth_page import browser  # noqa: F401 - the Chromium fixture
from tests.test_page_actions import PASSWORD, sign_in_page
from tests.test_receipts import start_collector

SIZE = (640, 360)
RULES = RulesConfig.model_validate({"camera": {"clear_for": 1}})


@pytest.fixture
def scenes(tmp_path: Path) -> dict[Scene, Path]:
    """The road as the camera was aimed, and the camera turned away."""
    return {
        scene: encode(scene, tmp_path / f"{scene}.mkv", size=SIZE, seconds=6.0)
        for scene in (Scene.MOVING, Scene.TURNED)
    }


@pytest.fixture
def rtsp(tmp_path: Path, scenes: dict[Scene, Path]) -> Iterator[list[ManagedProcess]]:
    """A server showing the road at /cam; the test may restart it showing another scene."""
    server = make_gst_rtsp(tmp_path / "gst", {"cam": f"{scenes[Scene.MOVING]}:h264"})
    server.start()
    running = [server]
    yield running
    running[-1].stop()


def _agent(broker: MosquittoProcess, port: int, public: str, tmp: Path) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
            "broker": {"url": broker.url, "reconnect_max_s": 1},
            "probe": {"interval_s": 1.0, "timeout_s": 0.5},
            "cameras": [{"id": "c1", "rtsp_url": f"rtsp://127.0.0.1:{port}/cam"}],
            "stream": {
                "enabled": True,
                "interval_s": 6,
                "sample_s": 3.0,
                "timeout_s": 4,
                "transport": "tcp",
                # One probe teaches the view; left alone, a new one would take 50 to learn.
                "thresholds": {"baseline_probes": 1, "view_relearn_probes": 50},
            },
            "queue": {"path": str(tmp / "q.sqlite")},
            "commands": {"public_key": public},
        }
    )


@pytest.mark.services
async def test_an_accepted_view_is_adopted_by_the_agent_at_once(
    rtsp: list[ManagedProcess],
    scenes: dict[Scene, Path],
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
    browser: webdriver.Chrome,  # noqa: F811
) -> None:
    """learned -> turned: view_changed and the "camera view changed" problem -> viewer 403 ->
    technician accepts on the page (delivered) -> the agent answers done -> its next probe is
    healthy -> the problem resolves."""
    private, public = new_key_pair()
    key_file = tmp_path / "command.key"
    key_file.write_text(private + "\n")
    server = rtsp[0]
    settings = InfluxSettings(url=influxd.url, database=database)
    _collector, collector_task = await start_collector(broker, influxd.url, database, tmp_path)
    agent = Agent(_agent(broker, server.port, public, tmp_path))
    agent_task = asyncio.create_task(agent.run(), name="view-agent")
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    problems, maintenance = ProblemStore(state_url), StateStore(state_url)
    influx = InfluxClient(settings)
    evaluator = Evaluator(Observer(influx, RULES), problems, maintenance, RULES, [])

    def streams(after_ns: int = 0) -> list[dict[str, Any]]:
        return influx_rows(
            influxd.url,
            database,
            f'SELECT "fault", "view_score" FROM "{STREAM}" WHERE time > {after_ns} ORDER BY time',
        )

    try:
        await async_wait_for(
            lambda: asyncio.to_thread(lambda: [r for r in streams() if r["fault"] == "none"]),
            timeout_s=60,
            what="a healthy stream probe (the view learned)",
        )
        # The camera is turned: same URL, another picture.
        server.stop()
        turned = make_gst_rtsp(
            tmp_path / "gst2", {"cam": f"{scenes[Scene.TURNED]}:h264"}, port=server.port
        )
        turned.start()
        rtsp.append(turned)
        changed_from = time.time_ns()
        changed = await async_wait_for(
            lambda: asyncio.to_thread(
                lambda: [r for r in streams(changed_from) if r["fault"] == "view_changed"]
            ),
            timeout_s=60,
            what="the turned camera's probe saying view_changed",
        )
        assert changed[0]["view_score"] >= 0.4

        async def the_problem() -> list[str]:
            await evaluator.evaluate(time.time_ns())
            return [p.title for p in problems.unresolved().values() if p.camera == "c1"]

        titles = await async_wait_for(the_problem, timeout_s=20, what="the view problem")
        assert titles == [VIEW_CHANGED_TITLE]
        problem = problems.unresolved()["camera:s1/c1"].id

        add_user(state_url, "tech1", Role.TECHNICIAN, ["d1"], password=PASSWORD)
        viewer = bearer(add_user(state_url, "viewer1", Role.VIEWER, ["d1"]))
        remediation = RemediationConfig.model_validate(
            {"broker": {"url": broker.url, "client_id": "api-view"}, "key_file": str(key_file)}
        )
        app = create_app(influx=settings, state_url=state_url, remediation=remediation)
        async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            denied = await http.post("/api/cameras/s1/c1/view/accept", json={}, headers=viewer)
            assert denied.status_code == 403
            wait = await sign_in_page(browser, url, "tech1")
            card = f'article[data-problem-id="{problem}"]'
            assert "pandangan kamera berubah" in browser.find_element(By.CSS_SELECTOR, card).text
            browser.find_element(By.CSS_SELECTOR, f"{card} button.view-accept").click()
            browser.find_element(By.CSS_SELECTOR, f"{card} .view-comment").send_keys("re-aimed")
            browser.find_element(By.CSS_SELECTOR, f"{card} .view-accept-send").click()
            await asyncio.to_thread(
                wait.until,
                expected_conditions.text_to_be_present_in_element(
                    (By.CSS_SELECTOR, f"{card} .note"), "Pandangan baru diterima"
                ),
            )
        trail = AuditTrail(state_url)
        try:
            (row,) = [r for r in trail.records() if r.event == "view_accepted"]
        finally:
            trail.close()
        details = json.loads(row.details)
        assert (row.actor, details["comment"]) == ("tech1", "re-aimed")
        nonce = details["nonce"]

        def answer() -> list[dict[str, Any]]:
            return influx_rows(
                influxd.url,
                database,
                f'SELECT "action", "result", "trigger", "detail" FROM "{REMEDIATION}" '
                f"WHERE \"nonce\" = '{nonce}'",
            )

        (done,) = await async_wait_for(
            lambda: asyncio.to_thread(answer), timeout_s=20, what="the agent's answer"
        )
        assert (done["action"], done["result"], done["trigger"]) == (
            "accept_view",
            "done",
            "user:tech1",
        )
        answered_ns = int(done["time"])
        after = await async_wait_for(
            lambda: asyncio.to_thread(streams, answered_ns),
            timeout_s=30,
            what="the first probe after the acceptance",
        )
        assert after[0]["fault"] == "none", after[0]
        assert after[0]["view_score"] < 0.4

        async def resolved() -> bool:
            await evaluator.evaluate(time.time_ns())
            return "camera:s1/c1" not in problems.unresolved()

        await async_wait_for(resolved, timeout_s=30, what="the view problem resolved")
    finally:
        for task in (agent_task, collector_task):
            task.cancel()
        await asyncio.gather(agent_task, collector_task, return_exceptions=True)
        await influx.aclose()
        problems.close()
        maintenance.close()
