"""Environmental sensors over Modbus TCP, read by a register map from config."""

from __future__ import annotations

import struct

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge_agent.config import ModbusRegister, ModbusSensors
from edge_agent.sensors.base import SensorValue
from edge_agent.sensors.errors import SensorError

_FORMATS = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f"}


def decode_registers(words: list[int], register: ModbusRegister) -> float:
    """Turn raw 16-bit registers into the scaled value."""
    if register.word_order == "little":
        words = list(reversed(words))
    raw = struct.unpack(_FORMATS[register.type], b"".join(struct.pack(">H", w) for w in words))[0]
    return float(raw) * register.scale + register.offset


class ModbusDriver:
    """One connection per device, reopened when it drops."""

    def __init__(self, config: ModbusSensors) -> None:
        self._config = config
        self._client = AsyncModbusTcpClient(
            config.host, port=config.port, timeout=config.timeout_s, retries=0
        )

    async def read(self, now_s: float) -> list[SensorValue]:
        """Every mapped register, as ``(id, kind, value)``."""
        del now_s
        c = self._config
        if not self._client.connected and not await self._client.connect():
            raise SensorError(f"Modbus device {c.id} at {c.host}:{c.port} is unreachable")
        values = []
        try:
            for register in c.registers:
                values.append(SensorValue(c.id, register.kind, await self._read_one(register)))
        except (ModbusException, OSError) as exc:
            self._client.close()
            raise SensorError(f"Modbus device {c.id} at {c.host}:{c.port}: {exc}") from exc
        return values

    async def _read_one(self, register: ModbusRegister) -> float:
        unit, address = self._config.unit, register.address
        if register.table in ("coil", "discrete"):
            read_bits = (
                self._client.read_coils
                if register.table == "coil"
                else self._client.read_discrete_inputs
            )
            response = await read_bits(address, count=1, device_id=unit)
            if response.isError():
                raise SensorError(
                    f"register {register.kind} ({register.table} {address}): {response}"
                )
            return float(bool(response.bits[0])) * register.scale + register.offset
        count = 2 if register.type in ("int32", "uint32", "float32") else 1
        read_words = (
            self._client.read_holding_registers
            if register.table == "holding"
            else self._client.read_input_registers
        )
        response = await read_words(address, count=count, device_id=unit)
        if response.isError():
            raise SensorError(f"register {register.kind} ({register.table} {address}): {response}")
        return decode_registers(list(response.registers), register)

    def close(self) -> None:
        """Close the connection."""
        self._client.close()
