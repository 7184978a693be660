"""A camera's time from its ONVIF ``GetSystemDateAndTime`` answer, with the field pitfalls.

Cameras fill ``UTCDateTime`` with local time, leave it out, or give only ``LocalDateTime`` and a
POSIX ``TZ`` string (``CST-8``: eight hours *ahead* of UTC, the sign reads backwards) or an IANA
name. ``camera_utc`` works out the camera's UTC time and says how it did; ``parse_xs_datetime``
reads the ``xs:dateTime`` values of subscriptions (``Z``, an offset, or none).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# "CST-8", "WIB-7", "GMT0", "UTC", "<+07>-7", "EST5EDT,M3.2.0,M11.1.0" (daylight rules ignored:
# DaylightSavings flags them, and they are rare where pantau runs).
_POSIX = re.compile(r"^(?:<[^>]{1,16}>|[A-Za-z]{3,16})([+-]?)(\d{1,2})(?::(\d{2}))?(?::\d{2})?")
_UTC_NAMES = frozenset({"UTC", "GMT", "Z", "ZULU", "UCT", "UTC0", "GMT0"})


def tz_offset(tz: str | None, at: dt.datetime) -> dt.timedelta | None:
    """How far local time is ahead of UTC under ``tz`` at ``at``; ``None`` if unknown."""
    if not tz:
        return None
    name = tz.strip()
    if name.upper() in _UTC_NAMES:
        return dt.timedelta(0)
    if "/" in name:
        try:
            return ZoneInfo(name).utcoffset(at.replace(tzinfo=None))
        except (ZoneInfoNotFoundError, ValueError):
            return None
    match = _POSIX.match(name)
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    offset = dt.timedelta(hours=int(hours), minutes=int(minutes or 0))
    if offset > dt.timedelta(hours=15):
        return None
    return offset if sign == "-" else -offset  # POSIX: "-8" is east of Greenwich


def _datetime(value: Any) -> dt.datetime | None:
    if not isinstance(value, Mapping):
        return None
    date, time = value.get("Date"), value.get("Time")
    if not isinstance(date, Mapping) or not isinstance(time, Mapping):
        return None
    try:
        return dt.datetime(
            int(date["Year"]),
            int(date["Month"]),
            int(date["Day"]),
            int(time["Hour"]),
            int(time["Minute"]),
            int(time["Second"]),
            tzinfo=dt.UTC,
        )
    except (KeyError, TypeError, ValueError):
        return None


def camera_utc(answer: Mapping[str, Any]) -> tuple[dt.datetime | None, str]:
    """The camera's UTC time from a ``GetSystemDateAndTime`` answer (as a dict), and a note on
    how it was found (``""`` when the answer was plain). ``None`` if it cannot be told."""
    utc = _datetime(answer.get("UTCDateTime"))
    local = _datetime(answer.get("LocalDateTime"))
    zone = answer.get("TimeZone")
    tz = zone.get("TZ") if isinstance(zone, Mapping) else None
    offset = tz_offset(tz if isinstance(tz, str) else None, local or utc or dt.datetime.now(dt.UTC))
    if utc is not None and local is not None and offset:
        if abs(utc - local) < dt.timedelta(seconds=5):
            # UTC filled with local time (seen on several brands): trust the zone.
            return local - offset, f"UTCDateTime carries local time ({tz}); corrected"
        if abs((local - utc) - offset) > dt.timedelta(minutes=1):
            return utc, f"LocalDateTime and TZ {tz} disagree; UTCDateTime used"
    if utc is not None:
        return utc, ""
    if local is not None and offset is not None:
        return local - offset, f"no UTCDateTime; local time and TZ {tz} used"
    if local is not None:
        return None, "only a local time without a usable time zone"
    return None, "no date and time in the answer"


def parse_xs_datetime(text: str) -> dt.datetime | None:
    """An ``xs:dateTime`` as cameras write it: ``...Z``, ``...+07:00`` or without a zone (read
    as UTC, as most cameras mean it); ``None`` if it is not one."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_duration_s(text: str) -> float | None:
    """An ``xs:duration`` of seconds, minutes and hours (``PT600S``, ``PT10M``, ``PT1H30M``)."""
    match = re.fullmatch(
        r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", text.strip()
    )
    if match is None or text.strip() in ("P", "PT"):
        return None
    days, hours, minutes, seconds = match.groups()
    return (
        int(days or 0) * 86400
        + int(hours or 0) * 3600
        + int(minutes or 0) * 60
        + float(seconds or 0)
    )
