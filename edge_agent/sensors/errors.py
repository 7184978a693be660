"""Sensor driver errors: expected field trouble (a device unreachable), logged without a trace."""


class SensorError(Exception):
    """A sensor could not be read; the message names the device and what to check."""
