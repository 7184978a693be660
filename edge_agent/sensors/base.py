"""The driver interface every sensor kind implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SensorValue:
    """One value read from a sensor."""

    sensor: str
    kind: str
    value: float


class SensorDriver(Protocol):
    """Reads current values; must not block the event loop for long."""

    async def read(self, now_s: float) -> list[SensorValue]:
        """Return the values at wall-clock time ``now_s``; an empty list if none are available."""
        ...

    def close(self) -> None:
        """Release sockets and threads; called once when the agent stops."""
        ...
