"""A managed PoE switch over SNMP v2c: per port IF-MIB link state and error counters and
POWER-ETHERNET-MIB (RFC 3621) PoE state; PoE switched off and on by a SET of
``pethPsePortAdminEnable``. Any switch that implements these standard MIBs works."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    get_cmd,
    set_cmd,
)
from pysnmp.proto.rfc1902 import Integer

from edge_agent.switch.errors import SwitchError
from edge_agent.switch_settings import SwitchConfig
from pantau.core.contract import PoeState

__all__ = ["PortState", "SnmpSwitch", "SwitchError"]

IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"  # ifOperStatus.<ifIndex>: 1 up, 2 down, ...
IF_IN_ERRORS = "1.3.6.1.2.1.2.2.1.14"
IF_OUT_ERRORS = "1.3.6.1.2.1.2.2.1.20"
PETH_PORT = "1.3.6.1.2.1.105.1.1.1"  # pethPsePortEntry, indexed <group>.<port>
PETH_ADMIN_ENABLE = f"{PETH_PORT}.3"  # TruthValue: 1 true, 2 false
PETH_DETECTION = (
    f"{PETH_PORT}.6"  # 1 disabled, 2 searching, 3 deliveringPower, 4 fault, 5 test, 6 otherFault
)
TRUE, FALSE = 1, 2
OPER_UP = 1
DETECTION = {1: PoeState.DISABLED, 2: PoeState.SEARCHING, 3: PoeState.DELIVERING}
PORTS_PER_GET = 8  # 5 objects a port: 40 varbinds stay well inside one UDP datagram


@dataclass(frozen=True, slots=True)
class PortState:
    """What the switch says of one port (``None``: the switch lacks that object)."""

    port: int
    link_up: bool | None
    poe: PoeState
    poe_w: float | None
    errors: int | None


class SnmpSwitch:
    """One switch; ``read`` polls ports, ``set_poe`` switches a port's power."""

    def __init__(self, config: SwitchConfig) -> None:
        self.config = config
        self._engine = SnmpEngine()

    def _oids(self, port: int) -> list[str]:
        c = self.config
        oids = [
            f"{IF_OPER_STATUS}.{port}",
            f"{IF_IN_ERRORS}.{port}",
            f"{IF_OUT_ERRORS}.{port}",
            f"{PETH_DETECTION}.{c.pse_group}.{port}",
        ]
        if c.power_oid:
            oids.append(f"{c.power_oid}.{port}")
        return oids

    async def _target(self) -> UdpTransportTarget:
        c = self.config
        return await UdpTransportTarget.create(
            (c.host, c.port), timeout=c.timeout_s, retries=c.retries
        )

    async def _get(self, oids: Sequence[str]) -> dict[str, int]:
        c = self.config
        try:
            error, status, index, binds = await get_cmd(
                self._engine,
                CommunityData(c.community, mpModel=1),  # noqa: S508 - switches speak v2c
                await self._target(),
                ContextData(),
                *(ObjectType(ObjectIdentity(oid)) for oid in oids),
            )
        except OSError as exc:
            raise SwitchError(f"switch {c.id} at {c.host}:{c.port}: {exc}") from exc
        if error or status:
            why = error or f"{status.prettyPrint()} at object {index}"
            raise SwitchError(f"switch {c.id} at {c.host}:{c.port} did not answer: {why}")
        values: dict[str, int] = {}
        for oid, value in binds:
            try:
                values[str(oid)] = int(value)
            except (TypeError, ValueError):
                continue  # noSuchObject / noSuchInstance: this switch lacks that object
        return values

    async def read(self, ports: Sequence[int]) -> list[PortState]:
        """The state of ``ports`` (ifIndex = PoE port index); raises ``SwitchError``."""
        states: list[PortState] = []
        for start in range(0, len(ports), PORTS_PER_GET):
            chunk = ports[start : start + PORTS_PER_GET]
            values = await self._get([oid for port in chunk for oid in self._oids(port)])
            states += [self._state(port, values) for port in chunk]
        return states

    def _state(self, port: int, values: dict[str, int]) -> PortState:
        oper, rx, tx, detection, *power = self._oids(port)
        errors = values[rx] + values[tx] if rx in values and tx in values else values.get(rx)
        poe = DETECTION.get(values[detection], PoeState.FAULT) if detection in values else None
        milliwatts = values.get(power[0]) if power else None
        return PortState(
            port=port,
            link_up=values[oper] == OPER_UP if oper in values else None,
            poe=poe or PoeState.NONE,
            poe_w=None if milliwatts is None else milliwatts / 1000,
            errors=errors,
        )

    async def set_poe(self, port: int, *, enabled: bool) -> None:
        """SET pethPsePortAdminEnable of ``port``; raises ``SwitchError`` if refused."""
        c = self.config
        if not c.write_community:
            raise SwitchError(f"switch {c.id}: no write_community configured")
        oid = f"{PETH_ADMIN_ENABLE}.{c.pse_group}.{port}"
        try:
            error, status, index, _binds = await set_cmd(
                self._engine,
                CommunityData(c.write_community, mpModel=1),  # noqa: S508 - switches speak v2c
                await self._target(),
                ContextData(),
                ObjectType(ObjectIdentity(oid), Integer(TRUE if enabled else FALSE)),
            )
        except OSError as exc:
            raise SwitchError(f"switch {c.id} at {c.host}:{c.port}: {exc}") from exc
        if error or status:
            why = error or f"{status.prettyPrint()} at object {index}"
            raise SwitchError(f"switch {c.id}: PoE {'on' if enabled else 'off'} refused: {why}")

    def close(self) -> None:
        """Release the SNMP engine's socket."""
        self._engine.close_dispatcher()
