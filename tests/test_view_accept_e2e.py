"""Accepting a changed view end to end, on a real RTSP server, mosquitto and InfluxDB: an agent
learns a camera's view, the camera is turned (same URL, another picture), the probe says
view_changed and the problem rules call it "camera view changed"; a technician accepts the new
view through the API, which records it and sends a signed ``accept_view`` command; the agent
adopts the current view at once (far before ``view_relearn_probes``), answers done, and its
next probe is healthy. A viewer cannot accept."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.api.app import create_app
from cloud.audit import AuditTrail
from cloud.auth.principal import Role
from cloud.influx import InfluxClient, InfluxSettings
from cloud.problems.config import RulesConfig
from cloud.problems.observe import VIEW_CHANGED_TITLE, Observer
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
from tests.test_receipts import start_collector

SIZE = (640, 360)


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
) -> None:
    """learned -> turned: view_changed and the "camera view changed" problem -> viewer 403 ->
    technician accepts (delivered) -> the agent answers done -> its next probe is healthy."""
    private, public = new_key_pair()
    key_file = tmp_path / "command.key"
    key_file.write_text(private + "\n")
    server = rtsp[0]
    settings = InfluxSettings(url=influxd.url, database=database)
    _collector, collector_task = await start_collector(broker, influxd.url, database, tmp_path)
    agent = Agent(_agent(broker, server.port, public, tmp_path))
    agent_task = asyncio.create_task(agent.run(), name="view-agent")

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
        async with InfluxClient(settings) as influx:

            async def the_problem() -> list[str]:
                found = await Observer(influx, RulesConfig()).observe(time.time_ns())
                return [o.title for o in found if o.key == "camera:s1/c1" and o.verdict == "bad"]

            titles = await async_wait_for(the_problem, timeout_s=20, what="the view problem")
        assert titles == [VIEW_CHANGED_TITLE]

        state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
        tech = bearer(add_user(state_url, "tech1", Role.TECHNICIAN, ["d1"]))
        viewer = bearer(add_user(state_url, "viewer1", Role.VIEWER, ["d1"]))
        remediation = RemediationConfig.model_validate(
            {"broker": {"url": broker.url, "client_id": "api-view"}, "key_file": str(key_file)}
        )
        app = create_app(influx=settings, state_url=state_url, remediation=remediation)
        async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            path = "/api/cameras/s1/c1/view/accept"
            denied = await http.post(path, json={}, headers=viewer)
            assert denied.status_code == 403
            accepted = await http.post(path, json={"comment": "re-aimed"}, headers=tech)
            assert accepted.status_code == 200, accepted.text
            out = accepted.json()
        assert out["delivered"] is True and out["accepted_by"] == "tech1"
        nonce = out["nonce"]

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
        trail = AuditTrail(state_url)
        try:
            (row,) = [r for r in trail.records() if r.event == "view_accepted"]
        finally:
            trail.close()
        assert (row.actor, json.loads(row.details)["nonce"]) == ("tech1", nonce)
    finally:
        for task in (agent_task, collector_task):
            task.cancel()
        await asyncio.gather(agent_task, collector_task, return_exceptions=True)
