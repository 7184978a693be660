"""The agent host's own metrics: CPU temperature, load, disk free and uplink round trip."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

from edge_agent.config import HostSensors
from edge_agent.sensors.base import SensorValue

THERMAL_ZONES = Path("/sys/class/thermal")


def _cpu_temperature_c() -> float | None:
    temps: list[float] = []
    for zone in THERMAL_ZONES.glob("thermal_zone*/temp"):
        try:
            temps.append(int(zone.read_text().strip()) / 1000.0)
        except (OSError, ValueError):
            continue
    return max(temps) if temps else None


class HostDriver:
    """Reads host metrics; the uplink round trip is a TCP connect to the broker."""

    def __init__(self, config: HostSensors, *, broker_host: str, broker_port: int) -> None:
        self._id = config.id
        self._disk = config.disk_path
        self._broker = (broker_host, broker_port)

    async def read(self, now_s: float) -> list[SensorValue]:
        """Current host values; ones the host cannot provide are left out."""
        values = [SensorValue(self._id, "load1", round(os.getloadavg()[0], 3))]
        usage = shutil.disk_usage(self._disk)
        values.append(
            SensorValue(self._id, "disk_free_pct", round(100 * usage.free / usage.total, 2))
        )
        temperature = _cpu_temperature_c()
        if temperature is not None:
            values.append(SensorValue(self._id, "cpu_temp_c", temperature))
        rtt = await self._uplink_rtt_ms()
        if rtt is not None:
            values.append(SensorValue(self._id, "uplink_rtt_ms", round(rtt, 3)))
        return values

    async def _uplink_rtt_ms(self) -> float | None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(2.0):
                _, writer = await asyncio.open_connection(*self._broker)
        except (OSError, TimeoutError):
            return None
        elapsed = (time.perf_counter() - started) * 1000
        writer.close()
        return elapsed

    def close(self) -> None:
        """Nothing to release."""
