"""Durations written as ``30s``, ``5m``, ``2h``, ``1d`` or plain seconds."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Return seconds for ``90``, ``90s``, ``1.5m``, ``2h``, ``1d`` or ``250ms``."""
    if isinstance(value, bool):
        raise TypeError("a duration must be a number of seconds or a string like '30s'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _FACTORS[match.group(2)]
    raise ValueError(f"{value!r} is not a duration; write e.g. 30s, 5m, 2h, 1d or 250ms")


Seconds = Annotated[float, BeforeValidator(parse_duration)]
"""A duration in seconds that config files may write as ``30s``, ``5m``, ..."""


NS_PER_S = 1_000_000_000


def to_ns(seconds: float) -> int:
    """Seconds as integer nanoseconds (InfluxDB's and the contract's timestamps)."""
    return int(seconds * NS_PER_S)
