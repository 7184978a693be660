"""Sensor drivers: each reads a set of values on demand."""
