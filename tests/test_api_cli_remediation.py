"""``pantau api --remediation FILE``: the API process sends a technician's power-cycle as a
signed command on the site's command topic (real mosquitto, InfluxDB); a config whose key
cannot be read stops the start with what to do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cloud.auth.principal import Role
from cloud.influx import InfluxClient, InfluxSettings
from cloud.lineproto import batch_lines
from devtools.localsvc import InfluxProcess, MosquittoProcess, free_port
from pantau.core.commands import Action, Command, SignedCommand
from pantau.core.contract import CameraReading, Cause, ReadingBatch, TopicFilter, site_command_topic
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from pantau.core.signing import load_public, new_key_pair, verified
from tests.auth import add_user, bearer
from tests.helpers import async_wait_for

ENV = {k: v for k, v in os.environ.items() if k != "PANTAU_COMMAND_KEY_FILE"}


def test_an_unreadable_key_stops_the_start(tmp_path: Path) -> None:
    """Exit 2, naming the key file and how to create one."""
    config = tmp_path / "remediation.yaml"
    config.write_text(f"key_file: {tmp_path / 'nope.key'}\n")
    done = subprocess.run(
        [sys.executable, "-m", "pantau", "api", "--remediation", str(config),
         "--state", f"sqlite:///{tmp_path / 's.sqlite'}", "--influx", "http://127.0.0.1:9",
         "--database", "unused"],
        capture_output=True, text=True, timeout=60, env=ENV, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    # The terminal wraps long paths: compare without the line breaks.
    assert str(tmp_path / "nope.key") in "".join(done.stderr.split()), done.stderr
    assert "pantau keys init" in " ".join(done.stderr.split()), done.stderr


@pytest.mark.services
async def test_the_api_process_sends_a_signed_power_cycle(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """POST /api/cameras/s1/c1/power-cycle -> 202 -> a command on s1's topic that verifies with
    the public key, naming the technician."""
    private, public = new_key_pair()
    key = tmp_path / "command.key"
    key.write_text(private + "\n")
    config = tmp_path / "remediation.yaml"
    config.write_text(f"broker:\n  url: {broker.url}\n  client_id: api-cli\nkey_file: {key}\n")
    reading = CameraReading(camera="c1", ts=time.time_ns(), up=False, cause=Cause.TIMEOUT)
    async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
        batch = ReadingBatch(site="s1", district="d1", cameras=[reading])
        await influx.write("\n".join(batch_lines(batch)).encode())
    state = f"sqlite:///{tmp_path / 'state.sqlite'}"
    tech = bearer(add_user(state, "tech1", Role.TECHNICIAN, ["d1"]))
    port = free_port()
    listener = MqttLink(LinkSettings(address=BrokerAddress.parse(broker.url), client_id="site"))
    await listener.start()
    await listener.wait_connected(10)
    await listener.subscribe([TopicFilter(site_command_topic("s1"))])
    api = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for below
        [sys.executable, "-m", "pantau", "api", "--port", str(port), "--state", state,
         "--influx", influxd.url, "--database", database, "--remediation", str(config),
         "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "api.log").open("w"), env=ENV,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

            async def up() -> bool:
                try:
                    return (await http.get("/login")).status_code == 200
                except httpx.TransportError:
                    return False

            await async_wait_for(up, timeout_s=30, what="pantau api answering")
            sent = await http.post("/api/cameras/s1/c1/power-cycle", headers=tech)
        assert sent.status_code == 202, sent.text
        message = await async_wait_for(
            lambda: _next(listener), timeout_s=10, what="the command on s1's topic"
        )
        envelope = SignedCommand.model_validate_json(message)
        assert verified(envelope, load_public(public))
        command = Command.model_validate_json(envelope.command)
        assert (command.device, command.action, command.trigger) == (
            "c1",
            Action.POWER_CYCLE,
            "user:tech1",
        )
    finally:
        api.terminate()
        api.wait(timeout=20)
        await listener.close()


async def _next(link: MqttLink) -> bytes | None:
    return None if link.messages.empty() else link.messages.get_nowait().payload
