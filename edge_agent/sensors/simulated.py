"""Simulated cabinet sensors with plausible daily curves and seeded noise."""

from __future__ import annotations

import math
import random

from edge_agent.config import SimulatedCabinet
from edge_agent.sensors.base import SensorValue

WIB_OFFSET_S = 7 * 3600  # cabinets in western Indonesia peak in the local afternoon


def daily_phase(now_s: float) -> float:
    """0 at 03:00 local time (coolest), 0.5 at 15:00 (warmest)."""
    return (((now_s + WIB_OFFSET_S) / 86400.0) - 3 / 24) % 1.0


class SimulatedCabinetDriver:
    """Temperature, humidity, mains voltage and UPS charge of a roadside cabinet."""

    def __init__(self, config: SimulatedCabinet) -> None:
        self._id = config.id
        self._base = config.base_temp_c
        self._rng = random.Random(config.seed)

    async def read(self, now_s: float) -> list[SensorValue]:
        """Values at ``now_s``: a sine over the day plus small seeded noise."""
        day = -math.cos(2 * math.pi * daily_phase(now_s))  # -1 at night, +1 mid-afternoon
        noise = self._rng.gauss
        temperature = self._base + 6.0 * day + noise(0, 0.3)
        humidity = min(100.0, max(5.0, 75.0 - 15.0 * day + noise(0, 1.0)))
        mains = 220.0 + noise(0, 2.0)
        ups = min(100.0, 98.0 + noise(0, 0.5))
        return [
            SensorValue(self._id, "temperature", round(temperature, 2)),
            SensorValue(self._id, "humidity", round(humidity, 2)),
            SensorValue(self._id, "mains_voltage", round(mains, 1)),
            SensorValue(self._id, "ups_battery_pct", round(ups, 1)),
        ]

    def close(self) -> None:
        """Nothing to release."""
