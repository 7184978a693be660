"""The rollup worker: rolls up every hour once it is over, and again when late data marks it.

Runs inside the collector (``rollup.enabled``); several collectors may run it at once, since
every write is idempotent. The watermark (every hour before it is rolled up) is stored in
InfluxDB, so a restarted worker goes on where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from cloud.influx import InfluxClient, InfluxError, series_rows
from cloud.lineproto import join_lines
from cloud.rollup.marks import done_line
from cloud.rollup.timegrid import DAY_NS, HOUR_NS, floor_hour
from cloud.rollup.writer import RollupSpec, roll_days, roll_districts, roll_hours
from cloud.schema import CAMERA, ROLLUP_DIRTY, ROLLUP_STATE, RP_HOURLY

log = logging.getLogger(__name__)
CATCH_UP_CHUNK_NS = 24 * HOUR_NS  # hours rolled up per query while catching up


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """How often and how far the worker looks."""

    every_s: float = 10.0
    settle_s: float = 60.0  # an hour is rolled up this long after it ends
    recent_marks_s: float = 2 * 86400.0  # marks on hours this recent are looked at every cycle
    all_marks_every_s: float = 600.0  # marks on older hours (to raw retention) this often
    max_marked_hours: int = 168  # marked hours recomputed per cycle (the rest next cycle)
    live_every_s: float = 30.0  # district hours not rolled up yet are refreshed this often


@dataclass
class StepReport:
    """What one cycle did."""

    hours: int = 0
    dirty: int = 0
    points: int = 0


async def read_watermark(influx: InfluxClient, now_ns: int) -> tuple[int, int] | None:
    """(watermark, day offset in seconds) if a worker has ever run on this database."""
    rows = series_rows(
        await influx.query(
            f'SELECT last("hours_done") AS "done", "day_offset_s" FROM "{RP_HOURLY}".'
            f'"{ROLLUP_STATE}" WHERE time >= {now_ns - 800 * DAY_NS} AND time <= {now_ns}'
        )
    )
    if not rows or rows[0].get("done") is None:
        return None
    return int(rows[0]["done"]), int(rows[0].get("day_offset_s") or 0)


class RollupWorker:
    """Keeps the rollups of one database up to date."""

    def __init__(self, influx: InfluxClient, spec: RollupSpec, settings: WorkerSettings) -> None:
        self._influx = influx
        self._spec = spec
        self._settings = settings
        self._last_full_scan = 0.0
        self._last_live_ns = 0
        self.watermark: int | None = None

    async def run(self) -> None:
        """Cycle forever; InfluxDB errors are logged and retried next cycle."""
        failing = False
        while True:
            try:
                await self.step(time.time_ns())
                if failing:
                    log.info("rollups are being written again")
                failing = False
            except InfluxError as exc:
                if not failing:
                    log.warning(
                        "rollup cycle failed, retrying every %gs: %s", self._settings.every_s, exc
                    )
                failing = True
            await asyncio.sleep(self._settings.every_s)

    async def step(self, now_ns: int) -> StepReport:
        """One cycle: hours that ended, then marked hours."""
        report = StepReport()
        mark = self.watermark
        if mark is None:
            stored = await read_watermark(self._influx, now_ns)
            mark = stored[0] if stored else await self._first_hour(now_ns)
        target = floor_hour(now_ns - int(self._settings.settle_s * 1e9))
        while mark < target:
            end = min(mark + CATCH_UP_CHUNK_NS, target)
            report.points += await roll_hours(self._influx, mark, end, self._spec)
            first_day, last_day = self._spec.days.floor(mark), self._spec.days.floor(end)
            if last_day > first_day:  # local days that ended within this chunk
                report.points += await roll_days(self._influx, first_day, last_day, self._spec)
            report.hours += (end - mark) // HOUR_NS
            mark = end
            await self._store_watermark(mark)
        self.watermark = mark
        await self._redo_marked(now_ns, mark, report)
        if now_ns - self._last_live_ns >= self._settings.live_every_s * 1e9:
            self._last_live_ns = now_ns
            report.points += await roll_districts(self._influx, mark, now_ns + 1, live=True)
        return report

    async def _first_hour(self, now_ns: int) -> int:
        rows = series_rows(
            await self._influx.query(
                f'SELECT first("up") FROM "{CAMERA}" '
                f"WHERE time >= {now_ns - self._spec.lookback_ns} AND time <= {now_ns}"
            )
        )
        first = int(rows[0]["time"]) if rows else now_ns
        return floor_hour(min(first, now_ns))

    async def _store_watermark(self, mark: int) -> None:
        offset_s = self._spec.days.offset_ns // 1_000_000_000
        line = f"{ROLLUP_STATE} hours_done={mark}i,day_offset_s={offset_s}i {mark}"
        await self._influx.write(line.encode(), rp=RP_HOURLY)

    async def _redo_marked(self, now_ns: int, mark: int, report: StepReport) -> None:
        """Recompute the hours before the watermark that were marked after their rollup."""
        full = time.monotonic() - self._last_full_scan >= self._settings.all_marks_every_s
        since = now_ns - (
            self._spec.lookback_ns if full else int(self._settings.recent_marks_s * 1e9)
        )
        if full:
            self._last_full_scan = time.monotonic()
        rows = series_rows(
            await self._influx.query(
                f'SELECT "marked", "done" FROM "{ROLLUP_DIRTY}" '
                f'WHERE time >= {since} AND time < {mark} GROUP BY "site"'
            )
        )
        by_hour: dict[int, dict[str, int]] = defaultdict(dict)
        for row in rows:
            marked, done = row.get("marked"), row.get("done")
            if marked is not None and (done is None or int(marked) > int(done)):
                by_hour[int(row["time"])][row["site"]] = int(marked)
        # Runs of consecutive marked hours are recomputed together (for the union of their
        # sites: recomputing an unmarked site-hour rewrites the same numbers), so readings
        # scattered over many hours cost a few queries, and at most max_marked_hours a cycle.
        hours = sorted(by_hour)[: self._settings.max_marked_hours]
        days = self._spec.days
        redo_days: dict[int, set[str]] = defaultdict(set)
        for start, end in _runs(hours):
            sites = {site for hour in hours if start <= hour < end for site in by_hour[hour]}
            report.points += await roll_hours(self._influx, start, end, self._spec, sites=sites)
            for hour in range(start, end, HOUR_NS):
                if days.floor(hour) + DAY_NS <= mark:
                    redo_days[days.floor(hour)].update(sites)
        for start, end in _runs(sorted(redo_days), DAY_NS):
            sites = set().union(*(redo_days[day] for day in range(start, end, DAY_NS)))
            report.points += await roll_days(self._influx, start, end, self._spec, sites=sites)
        done = [
            done_line(site, hour, by_hour[hour][site]) for hour in hours for site in by_hour[hour]
        ]
        if done:
            await self._influx.write(join_lines(done))
        report.dirty += len(done)


def _runs(starts: list[int], step: int = HOUR_NS) -> list[tuple[int, int]]:
    """Sorted hour (or day) starts as [start, end) runs of consecutive ones."""
    runs: list[tuple[int, int]] = []
    for start in starts:
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], start + step)
        else:
            runs.append((start, start + step))
    return runs
