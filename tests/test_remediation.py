"""Remediation end to end on real snmpd, mosquitto and InfluxDB: the automatic policy
power-cycles a hung camera once and it comes back (the problem records the action and the
recovery); a second hang inside the daily limit is left alone; a camera in maintenance is never
cycled; "down: link" and "hung" are told apart on the problem; a d1 technician cannot reach a
d2 camera (404), and a manual power-cycle is signed, sent and recorded under their name."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.api.app import create_app
from cloud.audit import AuditTrail
from cloud.auth.principal import Role
from cloud.influx import InfluxClient, InfluxSettings
from cloud.lineproto import batch_lines
from cloud.maintenance import StateStore
from cloud.problems.config import RulesConfig
from cloud.problems.evaluator import Evaluator
from cloud.problems.observe import Observer
from cloud.problems.store import ProblemStore
from cloud.remediation.config import PolicyConfig, RemediationConfig
from cloud.remediation.history import ActionLog
from cloud.remediation.policy import Skip
from cloud.remediation.runner import Remediator
from cloud.remediation.sender import CommandSender
from devtools.localsvc import InfluxProcess, MosquittoProcess
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from pantau.core.commands import Action, Command, SignedCommand
from pantau.core.contract import (
    CameraReading,
    Cause,
    ReadingBatch,
    TopicFilter,
    site_command_topic,
)
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from pantau.core.signing import load_private, load_public, new_key_pair, verified
from simulators.cameras import CameraMode, FakeCamera
from simulators.switch import FakeSwitch, power_cameras, running_switch
from tests.auth import add_user, bearer
from tests.helpers import async_wait_for, serving
from tests.test_receipts import start_collector
from tests.test_switch import switch_config

RULES = RulesConfig.model_validate(
    {"camera": {"down_for": 1, "clear_for": 1, "flap_changes": 1000}}
)
POLICY = PolicyConfig(
    enabled=True, hung_probes=3, max_per_camera_day=1, max_site_share=0.5, settle_s=60
)


@pytest.fixture
def snmp_switch(tmp_path: Path) -> Iterator[FakeSwitch]:
    with running_switch(tmp_path / "switch") as switch:
        yield switch


def _agent_config(
    switch: FakeSwitch, broker: MosquittoProcess, cams: dict[str, FakeCamera], public: str,
    tmp: Path,
) -> AgentConfig:  # fmt: skip
    return AgentConfig.model_validate(
        {
            "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
            "broker": {"url": broker.url, "reconnect_max_s": 1},
            "probe": {"interval_s": 0.5, "timeout_s": 0.3},
            "cameras": [
                {"id": cid, "rtsp_url": cam.rtsp_url, "switch": {"switch": "sw1", "port": n}}
                for n, (cid, cam) in enumerate(cams.items(), start=1)
            ],
            "switches": [switch_config(switch).model_dump()],
            "queue": {"path": str(tmp / "q.sqlite")},
            "commands": {"public_key": public, "power_off_s": 0.5, "recovery_probe_s": 0.2},
        }
    )


@pytest.mark.services
async def test_the_policy_heals_a_hung_camera_once_and_never_in_maintenance(
    snmp_switch: FakeSwitch,
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
) -> None:
    """c1 hung (port up, powered), c2 hung in an approved maintenance window, c3 unplugged."""
    private, public = new_key_pair()
    cams = {cid: FakeCamera(cid) for cid in ("c1", "c2", "c3")}
    for cam in cams.values():
        await cam.start()
    await cams["c1"].set_mode(CameraMode.HUNG)
    await cams["c2"].set_mode(CameraMode.HUNG)
    await cams["c3"].set_mode(CameraMode.DOWN)
    snmp_switch.set_port(3, link=0, load=0)  # c3's cable pulled
    power = asyncio.create_task(
        power_cameras(snmp_switch, {1: cams["c1"], 2: cams["c2"]}), name="poe"
    )
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    problems, maintenance, actions = (
        ProblemStore(state_url), StateStore(state_url), ActionLog(state_url)
    )  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    maintenance.add(
        site="s1", district="d1", camera="c2", start=now - dt.timedelta(minutes=1),
        end=now + dt.timedelta(hours=1), reason="mast work", created_by="sup1",
    )  # fmt: skip
    _collector, collector_task = await start_collector(broker, influxd.url, database, tmp_path)
    agent = Agent(_agent_config(snmp_switch, broker, cams, public, tmp_path))
    agent_task = asyncio.create_task(agent.run(), name="remediation-agent")
    cloud = MqttLink(LinkSettings(address=BrokerAddress.parse(broker.url), client_id="cloud-rem"))
    decisions: dict[str, list[Skip | None]] = {"c1": [], "c2": []}
    acted_on: list[str] = []
    try:
        await asyncio.wait_for(agent.link.connected.wait(), 10)
        await cloud.start()
        await cloud.wait_connected(10)
        async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
            evaluator = Evaluator(Observer(influx, RULES), problems, maintenance, RULES, [])
            remediator = Remediator(
                influx=influx, sender=CommandSender(cloud, load_private(private), ttl_s=60),
                actions=actions, problems=problems, maintenance=maintenance, policy=POLICY,
            )  # fmt: skip

            async def step() -> None:
                await evaluator.evaluate(time.time_ns())
                for d in await remediator.tick():
                    decisions.setdefault(d.camera.camera, []).append(d.skip)
                    if d.act:  # what the problem said when the policy acted
                        acted_on.append(titles()[d.camera.camera])

            def titles() -> dict[str | None, str]:
                return {p.camera: p.title for p in problems.unresolved().values() if p.camera}

            async def cycled_and_back() -> bool:
                await step()
                done = [a for a in actions.since(0) if a.camera == "c1" and a.result]
                return bool(done) and cams["c1"].mode is CameraMode.UP

            await async_wait_for(cycled_and_back, timeout_s=60, what="c1 power-cycled and up")
            (action,) = [a for a in actions.since(0) if a.camera == "c1"]
            assert (action.trigger, action.action, action.result) == (
                "policy", "power_cycle", "done"
            )  # fmt: skip
            assert action.up_after is True
            assert action.recovery_s is not None and 0.5 <= action.recovery_s < 20
            # The action answers the problem it was taken for, in its history.
            assert action.problem_id is not None
            assert [a.nonce for a in actions.of_problem(action.problem_id)] == [action.nonce]
            assert acted_on == ["camera hung"]
            assert titles()["c3"] == "camera down: link"
            assert "cable or power" in problems.unresolved()["camera:s1/c3"].cause
            assert titles()["c2"] == "camera hung"  # hung, in maintenance

            # A second hang the same day: seen, hung long enough, and refused by the limit.
            await cams["c1"].set_mode(CameraMode.HUNG)

            async def refused_by_the_limit() -> bool:
                await step()
                return Skip.DAILY_LIMIT in decisions["c1"]

            await async_wait_for(refused_by_the_limit, timeout_s=30, what="c1 at its limit")
            for _ in range(4):
                await step()
        assert [a.camera for a in actions.since(0)] == ["c1"]  # once, and never c2
        assert cams["c1"].mode is CameraMode.HUNG and cams["c2"].mode is CameraMode.HUNG
        assert set(decisions["c2"]) == {Skip.MAINTENANCE}
        assert snmp_switch.state()["2"]["admin"] == 1
        audit = [r for r in AuditTrail(state_url).records() if r.event == "remediation_sent"]
        assert [(r.actor, r.target) for r in audit] == [("policy", "camera:s1/c1")]
    finally:
        await cloud.close()
        for task in (agent_task, collector_task, power):
            task.cancel()
        await asyncio.gather(agent_task, collector_task, power, return_exceptions=True)
        for cam in cams.values():
            await cam.stop()
        for store in (problems, maintenance, actions):
            store.close()


@pytest.fixture
async def api(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> AsyncIterator[tuple[str, str, str]]:
    """The API with remediation configured; cameras s1/c1 (d1) and s2/c1 (d2) in InfluxDB."""
    private, public = new_key_pair()
    key_file = tmp_path / "command.key"
    key_file.write_text(private + "\n")
    now = time.time_ns()
    lines: list[str] = []
    for site, district in (("s1", "d1"), ("s2", "d2")):
        reading = CameraReading(camera="c1", ts=now, up=False, cause=Cause.TIMEOUT)
        lines += batch_lines(ReadingBatch(site=site, district=district, cameras=[reading]))
    async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
        await influx.write("\n".join(lines).encode())
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    config = RemediationConfig.model_validate(
        {"broker": {"url": broker.url, "client_id": "api-rem"}, "key_file": str(key_file)}
    )
    app = create_app(
        influx=InfluxSettings(url=influxd.url, database=database),
        state_url=state_url,
        remediation=config,
    )
    async with serving(app) as url:
        yield url, state_url, public


@pytest.mark.services
async def test_manual_power_cycle_is_scoped_signed_and_recorded(
    api: tuple[str, str, str], broker: MosquittoProcess
) -> None:
    url, state_url, public = api
    tech1 = bearer(add_user(state_url, "tech1", Role.TECHNICIAN, ["d1"]))
    viewer = bearer(add_user(state_url, "viewer", Role.VIEWER))
    got: list[bytes] = []
    listener = MqttLink(
        LinkSettings(address=BrokerAddress.parse(broker.url), client_id="site-listener")
    )
    await listener.start()
    await listener.wait_connected(10)
    await listener.subscribe([TopicFilter(site_command_topic("s1"))])
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            other = await http.post("/api/cameras/s2/c1/power-cycle", headers=tech1)
            assert other.status_code == 404, other.text
            assert other.json()["detail"] == "no camera s2/c1"
            missing = await http.post("/api/cameras/s1/c9/reboot", headers=tech1)
            assert missing.status_code == 404
            low = await http.post("/api/cameras/s1/c1/power-cycle", headers=viewer)
            assert low.status_code == 403
            sent = await http.post("/api/cameras/s1/c1/power-cycle", headers=tech1)
            assert sent.status_code == 202, sent.text
            body: dict[str, Any] = sent.json()
            assert (body["trigger"], body["action"], body["result"]) == (
                "user:tech1", "power_cycle", None
            )  # fmt: skip

        async def received() -> bool:
            while not listener.messages.empty():
                got.append(listener.messages.get_nowait().payload)
            return bool(got)

        await async_wait_for(received, timeout_s=10, what="the signed command on command/run")
        envelope = SignedCommand.model_validate_json(got[0])
        assert verified(envelope, load_public(public))
        command = Command.model_validate_json(envelope.command)
        assert (command.site, command.device, command.action, command.trigger) == (
            "s1", "c1", Action.POWER_CYCLE, "user:tech1"
        )  # fmt: skip
        audit = [r for r in AuditTrail(state_url).records() if r.event == "remediation_sent"]
        assert [(r.actor, r.target) for r in audit] == [("tech1", "camera:s1/c1")]
    finally:
        await listener.close()
