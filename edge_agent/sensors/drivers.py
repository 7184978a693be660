"""The sensor drivers a site's config names (heavy libraries load only where used)."""

from __future__ import annotations

from edge_agent.config import AgentConfig, HostSensors, ModbusSensors, SimulatedCabinet, SnmpUps
from edge_agent.sensors.base import SensorDriver
from edge_agent.sensors.host import HostDriver
from edge_agent.sensors.simulated import SimulatedCabinetDriver
from pantau.core.mqtt import BrokerAddress


def build_drivers(config: AgentConfig, broker: BrokerAddress) -> list[SensorDriver]:
    """Instantiate the configured sensor drivers."""
    drivers: list[SensorDriver] = []
    for sensor in config.sensors:
        if isinstance(sensor, SimulatedCabinet):
            drivers.append(SimulatedCabinetDriver(sensor))
        elif isinstance(sensor, HostSensors):
            drivers.append(HostDriver(sensor, broker_host=broker.host, broker_port=broker.port))
        # pysnmp and pymodbus cost tens of MB each: imported only by sites that have such a device.
        elif isinstance(sensor, SnmpUps):
            from edge_agent.sensors.snmp_ups import SnmpUpsDriver  # noqa: PLC0415

            drivers.append(SnmpUpsDriver(sensor))
        elif isinstance(sensor, ModbusSensors):
            from edge_agent.sensors.modbus import ModbusDriver  # noqa: PLC0415

            drivers.append(ModbusDriver(sensor))
    return drivers
