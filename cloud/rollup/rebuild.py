"""Rebuild the rollups of a past range from the raw points: for history that reached InfluxDB
without the collector (an import, a restore), which no late-data mark announces.

The same computation as the worker (``roll_hours``, ``roll_days``) writes the same points over
the old ones, so a rebuild can run beside a live worker and any number of times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cloud.influx import InfluxClient
from cloud.rollup.timegrid import DAY_NS, HOUR_NS, ceil_hour, floor_hour
from cloud.rollup.worker import CATCH_UP_CHUNK_NS
from cloud.rollup.writer import RollupSpec, roll_days, roll_hours

DAYS_CHUNK_NS = 31 * DAY_NS  # local days summed per query


@dataclass(frozen=True, slots=True)
class RebuildPlan:
    """What a rebuild of [start_ns, end_ns) recomputes: whole hours, then whole local days."""

    hours: list[tuple[int, int]]  # [start, end) chunks of whole hours
    days: list[tuple[int, int]]  # [start, end) chunks of whole local days

    @property
    def steps(self) -> int:
        """Queries' worth of work, for a progress bar."""
        return len(self.hours) + len(self.days)


@dataclass
class RebuildReport:
    """What a rebuild did."""

    hours: int = 0
    days: int = 0
    points: int = 0


def _chunks(start: int, end: int, size: int) -> list[tuple[int, int]]:
    return [(t, min(t + size, end)) for t in range(start, end, size)]


def rebuild_plan(start_ns: int, end_ns: int, spec: RollupSpec, *, now_ns: int) -> RebuildPlan:
    """The hours overlapping [start_ns, end_ns) that are over at ``now_ns`` and still have raw
    points (``spec.lookback_ns``, raw retention), and the local days holding them that are over.
    """
    first = max(floor_hour(start_ns), ceil_hour(now_ns - spec.lookback_ns))
    last = min(ceil_hour(end_ns), floor_hour(now_ns))
    if last <= first:
        return RebuildPlan([], [])
    days = spec.days
    day_end = min(days.ceil(last), days.floor(floor_hour(now_ns)))
    day_start = days.floor(first)
    return RebuildPlan(
        _chunks(first, last, CATCH_UP_CHUNK_NS),
        _chunks(day_start, day_end, DAYS_CHUNK_NS) if day_end > day_start else [],
    )


async def rebuild(
    influx: InfluxClient,
    spec: RollupSpec,
    plan: RebuildPlan,
    *,
    sites: Iterable[str] | None = None,
    on_step: Callable[[RebuildReport], None] | None = None,
) -> RebuildReport:
    """Recompute the plan's hours from raw points (camera, sensor and district hours), then its
    days from the hours; ``on_step`` is called after each query's worth of work."""
    only = None if sites is None else sorted(set(sites))
    report = RebuildReport()
    for start, end in plan.hours:
        report.points += await roll_hours(influx, start, end, spec, sites=only)
        report.hours += (end - start) // HOUR_NS
        if on_step:
            on_step(report)
    for start, end in plan.days:
        report.points += await roll_days(influx, start, end, spec, sites=only)
        report.days += (end - start) // DAY_NS
        if on_step:
            on_step(report)
    return report
