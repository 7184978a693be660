"""Build a month's availability report from InfluxDB (rollups) and the state database."""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from cloud.audit import Summary
from cloud.availability import AvailabilityRow, GroupBy, MaintenanceSpan, aggregate, compute
from cloud.influx import InfluxClient
from cloud.maintenance import Maintenance, StateStore, WindowKind
from cloud.report.remediation import RemediationSummary, remediation_summary
from cloud.report.services import ServicesSummary, services_summary
from cloud.schema import DEFAULT_PROBE_INTERVAL_S
from cloud.services.windows import service_windows

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
NS = 1_000_000_000
# Each retroactive window's own effect costs one more computation (of its site, or of the whole
# fleet for a district-wide window); beyond this many only the month's total is given.
MAX_WINDOWS_ATTRIBUTED = 20


@dataclass(frozen=True)
class MovedSeconds:
    """Seconds of one camera that retroactive windows moved from down to maintenance."""

    site: str
    district: str
    camera: str
    seconds: float


@dataclass(frozen=True)
class MonthlyReport:
    """A month's availability at every level, with the maintenance windows behind it, what the
    retroactive ones moved, and the month's audit trail."""

    month: str
    timezone: str
    start: dt.datetime
    end: dt.datetime
    districts: list[AvailabilityRow]
    sites: list[AvailabilityRow]
    cameras: list[AvailabilityRow]
    maintenance: list[Maintenance]  # every window overlapping the month, counted or not
    generated_at: dt.datetime
    seconds_to_build: float
    retro_moved: list[MovedSeconds] = field(default_factory=list)
    moved_by_window: dict[int, float] = field(default_factory=dict)  # retroactive window id
    audit: Summary | None = None
    remediation: RemediationSummary | None = None  # scoped with the rest (``within``)
    services: ServicesSummary | None = None  # e-government services (as the reader sees them)

    @property
    def retro_moved_seconds(self) -> float:
        """Seconds moved from down to maintenance by retroactive windows (this report's
        cameras; overlapping windows counted once)."""
        return sum(m.seconds for m in self.retro_moved)


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


def _spans(windows: list[Maintenance]) -> list[MaintenanceSpan]:
    return [
        MaintenanceSpan(_ns(m.start), _ns(m.end), site=m.site, camera=m.camera, district=m.district)
        for m in windows
    ]


def _down_moved(
    counted: list[AvailabilityRow], without: list[AvailabilityRow]
) -> list[MovedSeconds]:
    before = {(r.site, r.camera): r.down_seconds for r in without}
    moved = []
    for row in counted:
        seconds = before.get((row.site, row.camera), row.down_seconds) - row.down_seconds
        if seconds > 0:
            moved.append(MovedSeconds(row.site, row.district, row.camera, seconds))
    return moved


async def build_report(
    influx: InfluxClient,
    store: StateStore,
    *,
    month: str,
    timezone: str = "Asia/Jakarta",
    default_interval_s: float = DEFAULT_PROBE_INTERVAL_S,
    services_catalogue: Path | None = None,
    service_districts: frozenset[str] | None = None,
) -> MonthlyReport:
    """Compute the report (every camera once; sites and districts sum their cameras). Only
    approved, not cancelled windows count; every window of the month is listed."""
    started = time.perf_counter()
    start, end = month_span(month, timezone)
    windows = store.list(overlapping=(start, end))  # the cameras' windows
    services_windows = store.list(overlapping=(start, end), kind=WindowKind.SERVICES)
    counting = [m for m in windows if m.counts]
    retro = [m for m in counting if m.retroactive]

    async def cameras_with(
        chosen: list[Maintenance], site: str | None = None
    ) -> list[AvailabilityRow]:
        return await compute(
            influx,
            start_ns=_ns(start),
            end_ns=_ns(end),
            maintenance=_spans(chosen),
            group_by=GroupBy.CAMERA,
            site=site,
            default_interval_s=default_interval_s,
        )

    cameras = await cameras_with(counting)
    retro_moved: list[MovedSeconds] = []
    moved_by_window: dict[int, float] = {}
    if retro:
        retro_moved = _down_moved(
            cameras, await cameras_with([m for m in counting if not m.retroactive])
        )
        for window in retro[:MAX_WINDOWS_ATTRIBUTED]:
            others = [m for m in counting if m.id != window.id]
            alone = await cameras_with(others, site=window.site)
            moved_by_window[window.id] = sum(
                m.seconds
                for m in _down_moved(cameras, alone)
                if window.site is None or m.site == window.site
            )
    return MonthlyReport(
        month=month,
        timezone=timezone,
        start=start,
        end=end,
        districts=aggregate(cameras, GroupBy.DISTRICT),
        sites=aggregate(cameras, GroupBy.SITE),
        cameras=cameras,
        maintenance=sorted([*windows, *services_windows], key=lambda m: (m.start, m.id)),
        generated_at=dt.datetime.now(dt.UTC),
        seconds_to_build=time.perf_counter() - started,
        retro_moved=retro_moved,
        moved_by_window=moved_by_window,
        audit=store.audit.summary(_ns(start), _ns(end)),
        remediation=remediation_summary(store.engine, _ns(start), _ns(end)),
        services=await services_summary(
            influx,
            services_catalogue,
            _ns(start),
            _ns(end),
            windows=service_windows(services_windows),
            districts=service_districts,
        )
        if services_catalogue
        else None,
    )
