"""Build a month's availability report from InfluxDB (rollups) and the state database."""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from cloud.availability import AvailabilityRow, GroupBy, MaintenanceSpan, aggregate, compute
from cloud.influx import InfluxClient
from cloud.maintenance import Maintenance, StateStore
from cloud.schema import DEFAULT_PROBE_INTERVAL_S

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
NS = 1_000_000_000


@dataclass(frozen=True)
class MonthlyReport:
    """A month's availability at every level, with the maintenance windows behind it."""

    month: str
    timezone: str
    start: dt.datetime
    end: dt.datetime
    districts: list[AvailabilityRow]
    sites: list[AvailabilityRow]
    cameras: list[AvailabilityRow]
    maintenance: list[Maintenance]
    generated_at: dt.datetime
    seconds_to_build: float


def month_span(month: str, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """The first instant of ``month`` (YYYY-MM) and of the month after, in ``timezone``."""
    found = _MONTH.match(month)
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise ValueError(f"month {month!r} must look like 2026-11")
    year, number = int(found.group(1)), int(found.group(2))
    if not 1970 <= year <= 2261:
        raise ValueError(f"month {month!r} is outside 1970-2261")
    zone = ZoneInfo(timezone)
    start = dt.datetime(year, number, 1, tzinfo=zone)
    end = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return start, end


def _ns(value: dt.datetime) -> int:
    return int(value.timestamp()) * NS


async def build_report(
    influx: InfluxClient,
    store: StateStore,
    *,
    month: str,
    timezone: str = "Asia/Jakarta",
    default_interval_s: float = DEFAULT_PROBE_INTERVAL_S,
) -> MonthlyReport:
    """Compute the report (every camera once; sites and districts sum their cameras)."""
    started = time.perf_counter()
    start, end = month_span(month, timezone)
    windows = store.list(overlapping=(start, end))
    cameras = await compute(
        influx,
        start_ns=_ns(start),
        end_ns=_ns(end),
        maintenance=[
            MaintenanceSpan(
                _ns(m.start), _ns(m.end), site=m.site, camera=m.camera, district=m.district
            )
            for m in windows
        ],
        group_by=GroupBy.CAMERA,
        default_interval_s=default_interval_s,
    )
    return MonthlyReport(
        month=month,
        timezone=timezone,
        start=start,
        end=end,
        districts=aggregate(cameras, GroupBy.DISTRICT),
        sites=aggregate(cameras, GroupBy.SITE),
        cameras=cameras,
        maintenance=sorted(windows, key=lambda m: (m.start, m.id)),
        generated_at=dt.datetime.now(dt.UTC),
        seconds_to_build=time.perf_counter() - started,
    )
