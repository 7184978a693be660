"""Real cabinet devices on loopback: a UPS behind net-snmp's snmpd (UPS-MIB values served by a
``pass`` script from a state file the simulator rewrites) and an environmental sensor served by
pymodbus' Modbus TCP server."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from devtools.localsvc import ServiceError, free_port
from simulators.snmpd import start_snmpd, stop_snmpd

UPS_MIB = "1.3.6.1.2.1.33"
PASS_SCRIPT = Path(__file__).with_name("ups_pass.py")


class UpsState(enum.StrEnum):
    """What the simulated UPS reports."""

    ON_MAINS = "on_mains"
    ON_BATTERY = "on_battery"
    BATTERY_LOW = "battery_low"


def ups_values(state: UpsState) -> dict[str, int]:
    """UPS-MIB objects (OID -> INTEGER) for a state (RFC 1628 codes)."""
    on_battery = state is not UpsState.ON_MAINS
    return {
        f"{UPS_MIB}.1.2.1.0": 3 if state is UpsState.BATTERY_LOW else 2,  # upsBatteryStatus
        f"{UPS_MIB}.1.2.3.0": 4 if state is UpsState.BATTERY_LOW else 45 if on_battery else 120,
        f"{UPS_MIB}.1.2.4.0": 12 if state is UpsState.BATTERY_LOW else 80 if on_battery else 100,
        f"{UPS_MIB}.1.3.3.1.3.1": 0 if on_battery else 221,  # upsInputVoltage
        f"{UPS_MIB}.1.4.1.0": 5 if on_battery else 3,  # upsOutputSource: battery / normal
    }


class FakeUps:
    """snmpd (Debian package ``snmpd``) answering SNMP v2c on a free loopback UDP port."""

    def __init__(self, workdir: Path, *, community: str = "public") -> None:
        self.workdir = workdir
        self.community = community
        self.port = free_port()
        self.state_file = workdir / "ups-state.json"
        self._process: subprocess.Popen[bytes] | None = None

    def set_state(self, state: UpsState) -> None:
        """Switch what the UPS reports (atomically: snmpd may be reading)."""
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(ups_values(state)))
        os.replace(tmp, self.state_file)

    def start(self) -> None:
        """Write the config and the pass wrapper; start snmpd."""
        binary = shutil.which("snmpd") or "/usr/sbin/snmpd"
        if not Path(binary).exists():
            raise ServiceError("snmpd not found: run `make setup` (Debian package snmpd)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.set_state(UpsState.ON_MAINS)
        wrapper = self.workdir / "ups-pass.sh"
        wrapper.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{PASS_SCRIPT}" "{self.state_file}" "$@"\n'
        )
        wrapper.chmod(0o755)
        self._process = start_snmpd(
            binary,
            self.workdir,
            f"agentaddress udp:127.0.0.1:{self.port}\n"
            f"rocommunity {self.community} 127.0.0.1\n"
            f"pass .{UPS_MIB} {wrapper}\n",
        )

    def stop(self) -> None:
        """Stop snmpd."""
        stop_snmpd(self._process)


class FakeEnvSensor:
    """A Modbus TCP environmental sensor: temperature (x0.1 °C, int16) at holding register 0,
    humidity (x0.1 %, uint16) at 1, door contact at discrete input 0."""

    def __init__(self, *, unit: int = 1) -> None:
        self.unit = unit
        self.port = free_port()
        self.temperature_c = 28.5
        self.humidity_pct = 61.0
        self.door_open = False
        device = SimDevice(
            unit,
            simdata=(
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],  # coils
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],  # discrete
                [SimData(0, count=16, values=0, datatype=DataType.REGISTERS)],  # holding
                [SimData(0, count=16, values=0, datatype=DataType.REGISTERS)],  # input
            ),
            action=self._serve,
        )
        self._server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
        self._task: asyncio.Task[None] | None = None

    async def _serve(
        self,
        function_code: int,
        start_address: int,
        _address: int,
        _count: int,
        registers: list[int],
        _values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        # Fill the block with the current readings before pymodbus answers from it.
        if function_code in (3, 4):
            words = struct.unpack(
                ">HH",
                struct.pack(">hH", round(self.temperature_c * 10), round(self.humidity_pct * 10)),
            )
            registers[0 - start_address] = words[0]
            registers[1 - start_address] = words[1]
        elif function_code in (1, 2):
            registers[0 - start_address] = int(self.door_open)
        return None

    async def start(self) -> None:
        """Serve until ``stop``."""
        self._task = asyncio.create_task(self._server.serve_forever(), name="fake-modbus")
        for _ in range(100):
            with contextlib.suppress(OSError):
                _reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            await asyncio.sleep(0.05)
        raise ServiceError("the fake Modbus sensor did not start")

    async def stop(self) -> None:
        """Stop serving."""
        await self._server.shutdown()  # type: ignore[no-untyped-call]
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
