"""A UPS over SNMP: the standard UPS-MIB (RFC 1628), so any compliant network card works."""

from __future__ import annotations

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    get_cmd,
)

from edge_agent.config import SnmpUps
from edge_agent.sensors.base import SensorValue
from edge_agent.sensors.errors import SensorError

UPS_MIB = "1.3.6.1.2.1.33.1"
OUTPUT_SOURCE = f"{UPS_MIB}.4.1.0"  # upsOutputSource: 3 normal, 4 bypass, 5 battery, ...
BATTERY_STATUS = f"{UPS_MIB}.2.1.0"  # upsBatteryStatus: 2 normal, 3 low, 4 depleted
MINUTES_REMAINING = f"{UPS_MIB}.2.3.0"  # upsEstimatedMinutesRemaining
CHARGE_REMAINING = f"{UPS_MIB}.2.4.0"  # upsEstimatedChargeRemaining (%)
INPUT_VOLTAGE = f"{UPS_MIB}.3.3.1.3.1"  # upsInputVoltage of input line 1 (RMS V)
OIDS = (OUTPUT_SOURCE, BATTERY_STATUS, MINUTES_REMAINING, CHARGE_REMAINING, INPUT_VOLTAGE)
ON_BATTERY, BATTERY_LOW, BATTERY_DEPLETED = 5, 3, 4


class SnmpUpsDriver:
    """Reads the UPS once per probe cycle (one GET of five objects)."""

    def __init__(self, config: SnmpUps) -> None:
        self._config = config
        self._engine = SnmpEngine()

    async def read(self, now_s: float) -> list[SensorValue]:
        """``ups_on_battery``, ``ups_battery_low`` (0/1), ``ups_battery_pct``,
        ``ups_minutes_remaining`` and ``mains_voltage``."""
        del now_s
        c = self._config
        try:
            target = await UdpTransportTarget.create(
                (c.host, c.port), timeout=c.timeout_s, retries=c.retries
            )
            error, status, index, binds = await get_cmd(
                self._engine,
                CommunityData(c.community, mpModel=1),  # noqa: S508 - UPS cards speak v2c
                target,
                ContextData(),
                *(ObjectType(ObjectIdentity(oid)) for oid in OIDS),
            )
        except OSError as exc:
            raise SensorError(f"UPS {c.id} at {c.host}:{c.port}: {exc}") from exc
        if error or status:
            why = error or f"{status.prettyPrint()} at object {index}"
            raise SensorError(f"UPS {c.id} at {c.host}:{c.port} did not answer: {why}")
        values: dict[str, int] = {}
        for oid, value in binds:
            try:
                values[str(oid)] = int(value)
            except (TypeError, ValueError):
                continue  # noSuchObject / noSuchInstance: this card lacks that object
        found = [
            SensorValue(c.id, "ups_on_battery", float(values[OUTPUT_SOURCE] == ON_BATTERY))
            if OUTPUT_SOURCE in values
            else None,
            SensorValue(
                c.id,
                "ups_battery_low",
                float(values[BATTERY_STATUS] in (BATTERY_LOW, BATTERY_DEPLETED)),
            )
            if BATTERY_STATUS in values
            else None,
            SensorValue(c.id, "ups_battery_pct", float(values[CHARGE_REMAINING]))
            if CHARGE_REMAINING in values
            else None,
            SensorValue(c.id, "ups_minutes_remaining", float(values[MINUTES_REMAINING]))
            if MINUTES_REMAINING in values
            else None,
            SensorValue(c.id, "mains_voltage", float(values[INPUT_VOLTAGE]))
            if INPUT_VOLTAGE in values
            else None,
        ]
        return [v for v in found if v is not None]

    def close(self) -> None:
        """Release the SNMP engine's socket."""
        self._engine.close_dispatcher()
