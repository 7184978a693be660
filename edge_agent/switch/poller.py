"""Each probe cycle, the switch ports of the site's cameras as ``ports`` readings; a switch
that does not answer gives each of its ports a reading with ``error`` (state unknown)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from edge_agent.config import AgentConfig
from edge_agent.switch.snmp import SnmpSwitch, SwitchError
from pantau.core.contract import PortReading

log = logging.getLogger(__name__)

Item = tuple[str, int, bytes]
Stamp = Callable[[tuple[str, ...], int], int]


class SwitchPoller:
    """The site's switches and which camera sits on which port."""

    def __init__(self, config: AgentConfig) -> None:
        self.switches = {s.id: SnmpSwitch(s) for s in config.switches}
        self._ports: dict[str, dict[int, str]] = {s.id: {} for s in config.switches}
        for camera in config.cameras:
            if camera.switch is not None:
                self._ports[camera.switch.switch][camera.switch.port] = camera.id

    async def read(self) -> list[PortReading]:
        """Read every switch once (readings with ``ts`` 0: ``items`` stamps them)."""
        found: list[PortReading] = []
        for switch_id, switch in self.switches.items():
            ports = self._ports[switch_id]
            if not ports:
                continue
            readings: list[PortReading]
            try:
                states = await switch.read(sorted(ports))
            except SwitchError as exc:
                log.warning("%s", exc)
                error = str(exc).replace("\n", " ")[:200]
                readings = [
                    PortReading(switch=switch_id, port=p, camera=c, ts=0, error=error)
                    for p, c in ports.items()
                ]
            else:
                readings = [
                    PortReading(
                        switch=switch_id,
                        port=s.port,
                        camera=ports[s.port],
                        ts=0,
                        link_up=s.link_up,
                        poe=s.poe,
                        poe_w=s.poe_w,
                        errors=s.errors,
                    )
                    for s in states
                ]
            found += readings
        return found

    @staticmethod
    def items(readings: list[PortReading], stamp: Stamp, started_ns: int) -> list[Item]:
        """Queue items of ``readings``, stamped by the agent's clock (no await in between)."""
        items: list[Item] = []
        for reading in readings:
            ts = stamp(("port", reading.switch, str(reading.port)), started_ns)
            body = reading.model_copy(update={"ts": ts}).model_dump_json(exclude_none=True)
            items.append(("ports", ts, body.encode()))
        return items

    def close(self) -> None:
        """Release every switch's SNMP socket."""
        for switch in self.switches.values():
            switch.close()
