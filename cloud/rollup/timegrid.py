"""Whole hours and local days on InfluxDB's nanosecond time line."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

HOUR_NS = 3600 * 1_000_000_000
DAY_NS = 24 * HOUR_NS


def floor_hour(ts_ns: int) -> int:
    """The start of the hour holding ``ts_ns``."""
    return ts_ns - ts_ns % HOUR_NS


def ceil_hour(ts_ns: int) -> int:
    """The first whole-hour boundary at or after ``ts_ns``."""
    return -floor_hour(-ts_ns)


def fixed_offset_s(timezone: str) -> int:
    """The UTC offset of ``timezone`` in seconds; refused where it changes over the year (DST)
    or is not whole hours, since local days are built from whole UTC hours."""
    zone = ZoneInfo(timezone)
    offsets = {
        dt.datetime(2026, month, 1, tzinfo=zone).utcoffset() or dt.timedelta()
        for month in (1, 4, 7, 10)
    }
    if len(offsets) != 1:
        raise ValueError(f"timezone {timezone!r} changes its UTC offset over the year (DST)")
    seconds = int(offsets.pop().total_seconds())
    if seconds % 3600:
        raise ValueError(f"timezone {timezone!r} is not a whole number of hours from UTC")
    return seconds


class LocalDays:
    """Local calendar days (a fixed UTC offset) as nanosecond spans."""

    def __init__(self, offset_s: int) -> None:
        self.offset_ns = offset_s * 1_000_000_000

    def floor(self, ts_ns: int) -> int:
        """The local midnight at or before ``ts_ns``."""
        local = ts_ns + self.offset_ns
        return local - local % DAY_NS - self.offset_ns

    def ceil(self, ts_ns: int) -> int:
        """The first local midnight at or after ``ts_ns``."""
        start = self.floor(ts_ns)
        return start if start == ts_ns else start + DAY_NS

    def group_offset(self) -> str:
        """InfluxQL's ``GROUP BY time(1d, <offset>)`` for these days."""
        return f"{(-self.offset_ns) % DAY_NS // 1_000_000_000}s"
