"""Reading probe counts over any window: rollups for the whole days and hours inside it, raw
points only for the partial hours at its edges and the hours not rolled up yet."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

from cloud.influx import InfluxClient, InfluxQueryError, series_rows
from cloud.rollup.timegrid import LocalDays, ceil_hour, floor_hour
from cloud.rollup.worker import read_watermark
from cloud.schema import CAMERA, CAMERA_1D, CAMERA_1H, RP_DAILY, RP_HOURLY


class Source(enum.StrEnum):
    """Where a segment's counts come from."""

    RAW = "raw"
    HOURS = "hours"
    DAYS = "days"


@dataclass(frozen=True, slots=True)
class Segment:
    """[start_ns, end_ns) read from one source."""

    source: Source
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True)
class RollupState:
    """What is rolled up: every hour before ``watermark_ns``, days of ``days``."""

    watermark_ns: int
    days: LocalDays


async def rollup_state(influx: InfluxClient, now_ns: int) -> RollupState | None:
    """The rollup worker's progress, or None where it never ran (everything is read raw)."""
    try:
        stored = await read_watermark(influx, now_ns)
    except InfluxQueryError as exc:
        if "retention policy not found" in str(exc):
            return None  # no worker has set this database up yet
        raise
    if stored is None:
        return None
    return RollupState(stored[0], LocalDays(stored[1]))


def plan(start_ns: int, end_ns: int, state: RollupState | None) -> list[Segment]:
    """Cover [start_ns, end_ns) with the cheapest sources that hold the same counts."""
    if state is None:
        return [Segment(Source.RAW, start_ns, end_ns)]
    h0, h1 = ceil_hour(start_ns), min(floor_hour(end_ns), state.watermark_ns)
    if h1 <= h0:
        return [Segment(Source.RAW, start_ns, end_ns)]
    segments = [Segment(Source.RAW, start_ns, h0)]
    d0, d1 = state.days.ceil(h0), state.days.floor(h1)
    if d1 > d0:
        segments += [
            Segment(Source.HOURS, h0, d0),
            Segment(Source.DAYS, d0, d1),
            Segment(Source.HOURS, d1, h1),
        ]
    else:
        segments.append(Segment(Source.HOURS, h0, h1))
    segments.append(Segment(Source.RAW, h1, end_ns))
    return [s for s in segments if s.end_ns > s.start_ns]


_QUERIES = {
    Source.RAW: f'SELECT count("up") AS "probes", sum("up") AS "up" FROM "{CAMERA}"',
    Source.HOURS: f'SELECT sum("probes") AS "probes", sum("up") AS "up" '
    f'FROM "{RP_HOURLY}"."{CAMERA_1H}"',
    Source.DAYS: f'SELECT sum("probes") AS "probes", sum("up") AS "up" '
    f'FROM "{RP_DAILY}"."{CAMERA_1D}"',
}


@dataclass
class CameraCounts:
    """Probe counts of one camera."""

    site: str
    district: str
    camera: str
    probes: int = 0
    up: int = 0


async def add_counts(
    influx: InfluxClient,
    counts: dict[tuple[str, str], CameraCounts],
    segments: list[Segment],
    site_condition: str,
    *,
    sign: int = 1,
    only: set[tuple[str, str]] | None = None,
) -> None:
    """Add (or with ``sign=-1`` subtract) each camera's probes and up probes over ``segments``;
    cameras seen for the first time are added to ``counts`` unless ``only`` limits them."""
    answers = await asyncio.gather(
        *(
            influx.query(
                f"{_QUERIES[segment.source]} WHERE time >= {segment.start_ns} "
                f"AND time < {segment.end_ns}{site_condition} "
                'GROUP BY "site", "district", "camera"'
            )
            for segment in segments
        )
    )  # InfluxDB runs them side by side on its cores
    for answer in answers:
        for row in series_rows(answer):
            key = (row["site"], row["camera"])
            if only is not None and key not in only:
                continue
            cam = counts.setdefault(key, CameraCounts(row["site"], row["district"], row["camera"]))
            cam.probes += sign * int(row["probes"] or 0)
            cam.up += sign * int(row["up"] or 0)


async def known_cameras(influx: InfluxClient, site_condition: str) -> list[tuple[str, str, str]]:
    """(site, district, camera) of every camera with raw points or day rollups on record, from
    the series index (no points are read)."""
    found: set[tuple[str, str, str]] = set()
    where = f" WHERE {site_condition.removeprefix(' AND ')}" if site_condition else ""
    for measurement in (CAMERA, CAMERA_1D):
        for result in await influx.query(f'SHOW SERIES FROM "{measurement}"{where}'):
            for series in result.get("series", []) or []:
                for (key,) in series.get("values", []):
                    tags = dict(part.split("=", 1) for part in str(key).split(",")[1:])
                    if {"site", "district", "camera"} <= tags.keys():
                        found.add((tags["site"], tags["district"], tags["camera"]))
    return sorted(found)
