"""The cabinet's PoE switch on real snmpd (pass_persist): port link, PoE state and power read
over SNMP; a hung camera power-cycled by a signed command (SNMP SET of pethPsePortAdminEnable)
comes back, and the agent's answer (done, up after, recovery seconds) and the port readings are
stored in InfluxDB through mosquitto and the collector."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.schema import REMEDIATION, SWITCH_PORT
from devtools.localsvc import InfluxProcess, MosquittoProcess
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.switch.snmp import SnmpSwitch, SwitchError
from edge_agent.switch_settings import SwitchConfig
from pantau.core.commands import Action, Command
from pantau.core.contract import PoeState, site_command_topic
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from pantau.core.signing import load_private, new_key_pair, new_nonce, sign
from simulators.cameras import CameraMode, FakeCamera
from simulators.switch import POWER_OID, FakeSwitch, power_cameras, running_switch
from tests.helpers import async_wait_for
from tests.test_receipts import start_collector


@pytest.fixture
def snmp_switch(tmp_path: Path) -> Iterator[FakeSwitch]:
    with running_switch(tmp_path / "switch") as switch:
        yield switch


def switch_config(switch: FakeSwitch) -> SwitchConfig:
    return SwitchConfig(
        id="sw1",
        host="127.0.0.1",
        port=switch.port,
        write_community=switch.write_community,
        power_oid=POWER_OID,
        timeout_s=0.5,
    )


@pytest.mark.services
async def test_ports_read_and_switched(snmp_switch: FakeSwitch) -> None:
    """Powered, unloaded and unplugged ports read as such; PoE off by SET is disabled and
    takes the link down; a stopped switch is a SwitchError naming it."""
    driver = SnmpSwitch(switch_config(snmp_switch))
    try:

        async def answering() -> bool:
            try:
                await driver.read([1])
            except SwitchError:
                return False
            return True

        await async_wait_for(answering, timeout_s=15, what="snmpd answering")
        snmp_switch.set_port(2, load=0)
        snmp_switch.set_port(3, link=0)
        one, two, three = await driver.read([1, 2, 3])
        assert (one.link_up, one.poe, one.poe_w) == (True, PoeState.DELIVERING, 4.2)
        assert (two.link_up, two.poe, two.poe_w) == (True, PoeState.SEARCHING, 0.0)
        assert three.link_up is False
        await driver.set_poe(1, enabled=False)
        (off,) = await driver.read([1])
        assert (off.link_up, off.poe) == (False, PoeState.DISABLED)
        assert snmp_switch.state()["1"]["admin"] == 2
        await driver.set_poe(1, enabled=True)
        (on,) = await driver.read([1])
        assert (on.link_up, on.poe) == (True, PoeState.DELIVERING)
        snmp_switch.stop()
        with pytest.raises(SwitchError, match="sw1"):
            await driver.read([1])
    finally:
        driver.close()


@pytest.mark.services
async def test_a_hung_camera_is_power_cycled_by_a_signed_command(
    snmp_switch: FakeSwitch,
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
) -> None:
    """c1 hangs (RTSP silent, port up and powered); a signed power_cycle turns its PoE off and
    on through snmpd, the camera boots healthy, and the agent reports done, up after, and the
    seconds to recovery."""
    private, public = new_key_pair()
    camera = FakeCamera("c1")
    await camera.start()
    await camera.set_mode(CameraMode.HUNG)
    power = asyncio.create_task(power_cameras(snmp_switch, {2: camera}), name="poe")
    config = AgentConfig.model_validate(
        {
            "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
            "broker": {"url": broker.url, "reconnect_max_s": 1},
            "probe": {"interval_s": 0.5, "timeout_s": 0.3},
            "cameras": [
                {"id": "c1", "rtsp_url": camera.rtsp_url, "switch": {"switch": "sw1", "port": 2}}
            ],
            "switches": [switch_config(snmp_switch).model_dump()],
            "queue": {"path": str(tmp_path / "q.sqlite")},
            "commands": {"public_key": public, "power_off_s": 0.5, "recovery_probe_s": 0.2},
        }
    )
    _collector, collector_task = await start_collector(broker, influxd.url, database, tmp_path)
    agent = Agent(config)
    agent_task = asyncio.create_task(agent.run(), name="switch-agent")
    cloud = MqttLink(LinkSettings(address=BrokerAddress.parse(broker.url), client_id="cloud-sw"))
    try:
        await asyncio.wait_for(agent.link.connected.wait(), 10)
        await cloud.start()
        await cloud.wait_connected(10)
        async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:

            async def hung_on_a_live_port() -> bool:
                rows = series_rows(
                    await influx.query(f'SELECT last("port"), "powered" FROM "{SWITCH_PORT}"')
                )
                return bool(rows) and rows[0]["last"] == 1 and rows[0]["powered"] == 1

            await async_wait_for(hung_on_a_live_port, timeout_s=20, what="port readings")
            now = time.time_ns()
            command = Command(
                site="s1",
                device="c1",
                action=Action.POWER_CYCLE,
                nonce=new_nonce(),
                issued_ns=now,
                expires_ns=now + 60 * 10**9,
                trigger="user:tech1",
            )
            await cloud.publish(site_command_topic("s1"), sign(command, load_private(private)))

            async def answered() -> list[dict[str, object]]:
                return series_rows(
                    await influx.query(
                        f'SELECT "result", "up_after", "recovery_s", "trigger", "action" '
                        f'FROM "{REMEDIATION}"'
                    )
                )

            rows = await async_wait_for(answered, timeout_s=30, what="the agent's answer")
        (row,) = rows
        assert (row["result"], row["action"], row["trigger"]) == (
            "done",
            "power_cycle",
            "user:tech1",
        )
        assert row["up_after"] == 1
        assert 0.5 <= float(row["recovery_s"]) < 20  # type: ignore[arg-type]
        assert camera.mode is CameraMode.UP
        assert snmp_switch.state()["2"]["admin"] == 1
    finally:
        await cloud.close()
        for task in (agent_task, collector_task, power):
            task.cancel()
        await asyncio.gather(agent_task, collector_task, power, return_exceptions=True)
        await camera.stop()
