"""InfluxDB's nanosecond timestamps to and from the API's aware datetimes."""

from __future__ import annotations

import datetime as dt


def to_ns(value: dt.datetime) -> int:
    """Nanoseconds since the epoch."""
    return int(value.timestamp() * 1_000_000_000)


def from_ns(ns: int) -> dt.datetime:
    """An aware UTC datetime."""
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)
