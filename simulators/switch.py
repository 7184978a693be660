"""A PoE switch behind net-snmp's snmpd (``switch_pass.py`` as pass_persist, state in a JSON
file), and the cameras it powers: a port switched off takes its camera down; a hung camera
stays hung, with its port up and powered, until its port is power-cycled."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from devtools.localsvc import ServiceError, free_port
from simulators.cameras import CameraMode, FakeCamera
from simulators.snmpd import start_snmpd, stop_snmpd

PASS_SCRIPT = Path(__file__).with_name("switch_pass.py")
POWER_OID = "1.3.6.1.4.1.99999.1"  # the simulated switch's per-port milliwatts
WATCH_S = 0.1


class FakeSwitch:
    """snmpd answering v2c on a free loopback port: ``community`` reads, ``write_community``
    may SET pethPsePortAdminEnable."""

    def __init__(self, workdir: Path, ports: int = 8) -> None:
        self.workdir = workdir
        self.community, self.write_community = "public", "private"
        self.port = free_port()
        self.state_file = workdir / "switch-state.json"
        self._ports = ports
        self._process: subprocess.Popen[bytes] | None = None

    def state(self) -> dict[str, dict[str, int]]:
        """Each port's ``admin`` (1 on, 2 off), ``link`` and ``load`` (a device draws power)."""
        loaded: dict[str, dict[str, int]] = json.loads(self.state_file.read_text())
        return loaded

    def set_port(self, port: int, **values: int) -> None:
        """Change a port's state (atomically: the pass program may be reading)."""
        state = self.state()
        state[str(port)].update(values)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_file)

    def start(self) -> None:
        """Write the state, config and wrapper; start snmpd."""
        binary = shutil.which("snmpd") or "/usr/sbin/snmpd"
        if not Path(binary).exists():
            raise ServiceError("snmpd not found: run `make setup` (Debian package snmpd)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        ports = {str(n): {"admin": 1, "link": 1, "load": 1} for n in range(1, self._ports + 1)}
        self.state_file.write_text(json.dumps(ports))
        wrapper = self.workdir / "switch-pass.sh"
        wrapper.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{PASS_SCRIPT}" "{self.state_file}"\n'
        )
        wrapper.chmod(0o755)
        self._process = start_snmpd(
            binary,
            self.workdir,
            f"agentaddress udp:127.0.0.1:{self.port}\n"
            f"rocommunity {self.community} 127.0.0.1\n"
            f"rwcommunity {self.write_community} 127.0.0.1\n"
            f"pass_persist .1.3.6.1.2.1.2.2.1 {wrapper}\n"
            f"pass_persist .1.3.6.1.2.1.105 {wrapper}\n"
            f"pass_persist .{POWER_OID} {wrapper}\n",
        )

    def stop(self) -> None:
        """Stop snmpd (its pass_persist children end with their stdin)."""
        stop_snmpd(self._process)


async def power_cameras(switch: FakeSwitch, cameras: dict[int, FakeCamera]) -> None:
    """Until cancelled: a camera whose port is switched off goes down; when its port comes back
    on it boots healthy (a hang does not survive a power-cycle)."""
    unpowered: set[int] = set()
    while True:
        state = switch.state()
        for port, camera in cameras.items():
            off = state[str(port)]["admin"] != 1
            if off and port not in unpowered:
                unpowered.add(port)
                await camera.set_mode(CameraMode.DOWN)
            elif not off and port in unpowered:
                unpowered.discard(port)
                await camera.set_mode(CameraMode.UP)
        await asyncio.sleep(WATCH_S)


@contextlib.contextmanager
def running_switch(workdir: Path, ports: int = 8) -> Iterator[FakeSwitch]:
    """A started ``FakeSwitch``, stopped on exit."""
    switch = FakeSwitch(workdir, ports)
    switch.start()
    try:
        yield switch
    finally:
        switch.stop()
