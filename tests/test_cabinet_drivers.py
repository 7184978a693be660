"""Cabinet drivers against real devices on loopback: a UPS behind net-snmp's snmpd (UPS-MIB,
switched to battery and battery-low) and a Modbus TCP environmental sensor (pymodbus)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from edge_agent.config import AgentConfig, ModbusSensors, SnmpUps
from edge_agent.sensors.errors import SensorError
from edge_agent.sensors.modbus import ModbusDriver, decode_registers
from edge_agent.sensors.snmp_ups import SnmpUpsDriver
from simulators.cabinet import FakeEnvSensor, FakeUps, UpsState
from tests.helpers import async_wait_for


@pytest.fixture
def ups(tmp_path: Path) -> Iterator[FakeUps]:
    device = FakeUps(tmp_path / "ups")
    device.start()
    yield device
    device.stop()


@pytest.fixture
async def env() -> AsyncIterator[FakeEnvSensor]:
    device = FakeEnvSensor()
    await device.start()
    yield device
    await device.stop()


def values(readings: list[object]) -> dict[str, float]:
    return {r.kind: r.value for r in readings}  # type: ignore[attr-defined]


async def test_ups_over_snmp_on_mains_on_battery_and_low(ups: FakeUps) -> None:
    """UPS-MIB output source, battery status, charge, minutes and input voltage, as the UPS
    moves from mains to battery to battery-low."""
    driver = SnmpUpsDriver(
        SnmpUps(type="snmp_ups", id="ups1", host="127.0.0.1", port=ups.port, timeout_s=0.5)
    )

    async def answering() -> dict[str, float] | None:
        try:
            return values(await driver.read(0))
        except SensorError:
            return None

    try:
        on_mains = await async_wait_for(answering, timeout_s=15, what="snmpd answering")
        assert on_mains == {
            "ups_on_battery": 0.0,
            "ups_battery_low": 0.0,
            "ups_battery_pct": 100.0,
            "ups_minutes_remaining": 120.0,
            "mains_voltage": 221.0,
        }
        ups.set_state(UpsState.ON_BATTERY)
        on_battery = values(await driver.read(0))
        assert (on_battery["ups_on_battery"], on_battery["mains_voltage"]) == (1.0, 0.0)
        assert on_battery["ups_battery_low"] == 0.0 and on_battery["ups_battery_pct"] == 80.0
        ups.set_state(UpsState.BATTERY_LOW)
        low = values(await driver.read(0))
        assert (low["ups_on_battery"], low["ups_battery_low"], low["ups_battery_pct"]) == (
            1.0,
            1.0,
            12.0,
        )
        assert low["ups_minutes_remaining"] == 4.0
    finally:
        driver.close()


async def test_unreachable_ups_is_a_sensor_error_naming_it(ups: FakeUps) -> None:
    """A wrong community (the agent refuses to answer) is an error naming the UPS."""
    driver = SnmpUpsDriver(
        SnmpUps(
            type="snmp_ups", id="ups9", host="127.0.0.1", port=ups.port, community="wrong",
            timeout_s=0.3, retries=0,
        )
    )  # fmt: skip
    try:
        with pytest.raises(SensorError, match=r"UPS ups9 at 127\.0\.0\.1"):
            await driver.read(0)
    finally:
        driver.close()


async def test_modbus_environment_sensor_from_a_register_map(env: FakeEnvSensor) -> None:
    """Temperature (int16 x0.1), humidity (uint16 x0.1) and door contact (discrete input),
    following changes on the device."""
    config = ModbusSensors.model_validate(
        {
            "type": "modbus",
            "id": "env1",
            "host": "127.0.0.1",
            "port": env.port,
            "registers": [
                {"kind": "temperature", "address": 0, "type": "int16", "scale": 0.1},
                {"kind": "humidity", "address": 1, "type": "uint16", "scale": 0.1},
                {"kind": "door_open", "table": "discrete", "address": 0},
            ],
        }
    )
    driver = ModbusDriver(config)
    try:
        assert values(await driver.read(0)) == pytest.approx(
            {"temperature": 28.5, "humidity": 61.0, "door_open": 0.0}
        )
        env.temperature_c, env.humidity_pct, env.door_open = -4.2, 97.5, True
        assert values(await driver.read(0)) == pytest.approx(
            {"temperature": -4.2, "humidity": 97.5, "door_open": 1.0}
        )
        await env.stop()
        with pytest.raises(SensorError, match="Modbus device env1"):
            await driver.read(0)
    finally:
        driver.close()


def test_register_decoding_and_config_validation() -> None:
    """32-bit values in both word orders; the site config names a bad driver setting."""
    reg = ModbusSensors.model_validate(
        {
            "type": "modbus",
            "host": "h",
            "registers": [{"kind": "t", "address": 0, "type": "float32"}],
        }
    ).registers[0]
    assert decode_registers([0x41C8, 0x0000], reg) == 25.0
    little = reg.model_copy(update={"word_order": "little"})
    assert decode_registers([0x0000, 0x41C8], little) == 25.0
    with pytest.raises(ValueError, match="type"):
        AgentConfig.model_validate(
            {
                "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
                "broker": {"url": "mqtt://127.0.0.1:1883"},
                "queue": {"path": "/tmp/q.sqlite"},
                "sensors": [{"type": "snmp_ups", "host": "10.0.0.9", "port": 70000}],
            }
        )
