"""Compute rollups from the raw points (hours) or from hours (days) and write them.

Every rollup point sits at the start of its hour or local day with the same tags as its raw
series, so writing it again overwrites it: recomputing is idempotent. Counts are stored, not
only seconds, so a sum of rollups equals the raw computation exactly (docs/availability.md
turns probe counts into seconds with the site's probe interval).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cloud.influx import InfluxClient, series_rows
from cloud.lineproto import format_line, join_lines
from cloud.rollup.record_hours import record_hour_lines
from cloud.rollup.timegrid import HOUR_NS, LocalDays
from cloud.schema import (
    CAMERA,
    CAMERA_1D,
    CAMERA_1H,
    DEFAULT_PROBE_INTERVAL_S,
    DISTRICT_1H,
    RP_DAILY,
    RP_HOURLY,
    SENSOR,
    SENSOR_1H,
    SITE,
)

WRITE_CHUNK = 5000  # lines per /write


@dataclass(frozen=True, kw_only=True)
class RollupSpec:
    """What every rollup computation needs to know."""

    days: LocalDays
    default_interval_s: float = DEFAULT_PROBE_INTERVAL_S
    lookback_ns: int = 35 * 24 * HOUR_NS  # how far back a site's probe interval is looked for


def site_filter(sites: Iterable[str] | None) -> str:
    """An InfluxQL condition on the site tag (site ids are [A-Za-z0-9_.-])."""
    if sites is None:
        return ""
    names = sorted(sites)
    return (
        f' AND "site" =~ /^({"|".join(re.escape(s) for s in names)})$/' if names else " AND false"
    )


async def site_intervals(
    influx: InfluxClient, before_ns: int, lookback_ns: int
) -> dict[str, float]:
    """Each site's latest probe interval from its births within ``lookback_ns`` of ``before_ns``."""
    rows = series_rows(
        await influx.query(
            f'SELECT last("probe_interval_s") FROM "{SITE}" '
            f'WHERE time >= {before_ns - lookback_ns} AND time < {before_ns} GROUP BY "site"'
        )
    )
    return {row["site"]: float(row["last"]) for row in rows if row.get("last")}


async def _write(influx: InfluxClient, lines: list[str], rp: str) -> None:
    for i in range(0, len(lines), WRITE_CHUNK):
        await influx.write(join_lines(lines[i : i + WRITE_CHUNK]), rp=rp)


async def roll_hours(
    influx: InfluxClient,
    start_ns: int,
    end_ns: int,
    spec: RollupSpec,
    *,
    sites: Iterable[str] | None = None,
) -> int:
    """Roll up the whole hours in [start_ns, end_ns) (of ``sites``, or all) from raw points:
    cameras, sensors, then the districts of those hours. Returns the points written."""
    where = f"time >= {start_ns} AND time < {end_ns}{site_filter(sites)}"
    group = 'GROUP BY time(1h), "site", "district", "camera" fill(none)'
    counts = series_rows(
        await influx.query(
            f'SELECT count("up") AS "probes", sum("up") AS "up" FROM "{CAMERA}" '
            f"WHERE {where} {group}"
        )
    )
    degraded = {
        (r["time"], r["site"], r["camera"]): int(r["degraded"])
        for r in series_rows(
            await influx.query(
                f'SELECT count("up") AS "degraded" FROM "{CAMERA}" '
                f"WHERE \"state\" = 'degraded' AND {where} {group}"
            )
        )
    }
    intervals = await site_intervals(influx, end_ns, spec.lookback_ns)
    lines = [
        _camera_line(
            CAMERA_1H,
            r,
            degraded=degraded.get((r["time"], r["site"], r["camera"]), 0),
            interval_s=intervals.get(r["site"], spec.default_interval_s),
        )
        for r in counts
        if r.get("probes")
    ]
    lines += await _sensor_lines(influx, where)
    lines += await record_hour_lines(influx, start_ns, end_ns, site_filter(sites))
    await _write(influx, lines, RP_HOURLY)
    return len(lines) + await roll_districts(influx, start_ns, end_ns)


def _camera_line(measurement: str, row: dict[str, Any], *, degraded: int, interval_s: float) -> str:
    """One camera's hour or day: its counts at the period's start."""
    return format_line(
        measurement,
        {"site": row["site"], "district": row["district"], "camera": row["camera"]},
        {
            "probes": int(row["probes"]),
            "up": int(row["up"] or 0),
            "degraded": degraded,
            "interval_s": interval_s,
        },
        int(row["time"]),
    )


async def _sensor_lines(influx: InfluxClient, where: str) -> list[str]:
    rows = series_rows(
        await influx.query(
            'SELECT min("value") AS "min", mean("value") AS "mean", max("value") AS "max", '
            f'count("value") AS "count" FROM "{SENSOR}" WHERE {where} '
            'GROUP BY time(1h), "site", "sensor", "kind" fill(none)'
        )
    )
    return [
        format_line(
            SENSOR_1H,
            {"site": r["site"], "sensor": r["sensor"], "kind": r["kind"]},
            {
                "min": float(r["min"]),
                "mean": float(r["mean"]),
                "max": float(r["max"]),
                "count": int(r["count"]),
            },
            int(r["time"]),
        )
        for r in rows
        if r.get("count")
    ]


async def roll_districts(
    influx: InfluxClient, start_ns: int, end_ns: int, *, live: bool = False
) -> int:
    """District hours in [start_ns, end_ns) summed from camera hours (all sites), or with
    ``live`` straight from raw points: the hours not rolled up yet, refreshed every cycle so
    the wall's long-window panels read only district hours."""
    where = f"time >= {start_ns} AND time < {end_ns}"
    if live:
        probes = f'SELECT count("up") AS "probes", sum("up") AS "up" FROM "{CAMERA}"'
        degraded_sum = (
            f'SELECT count("up") AS "degraded" FROM "{CAMERA}" WHERE "state" = \'degraded\' AND '
        )
    else:
        probes = (
            f'SELECT sum("probes") AS "probes", sum("up") AS "up" FROM "{RP_HOURLY}"."{CAMERA_1H}"'
        )
        degraded_sum = (
            f'SELECT sum("degraded") AS "degraded" FROM "{RP_HOURLY}"."{CAMERA_1H}" WHERE '
        )
    group = 'GROUP BY time(1h), "district" fill(none)'
    rows = series_rows(await influx.query(f"{probes} WHERE {where} {group}"))
    degraded = {
        (r["time"], r["district"]): int(r["degraded"] or 0)
        for r in series_rows(await influx.query(f"{degraded_sum}{where} {group}"))
    }
    lines = [
        format_line(
            DISTRICT_1H,
            {"district": r["district"]},
            {
                "probes": int(r["probes"]),
                "up": int(r["up"] or 0),
                "degraded": degraded.get((r["time"], r["district"]), 0),
            },
            int(r["time"]),
        )
        for r in rows
        if r.get("probes")
    ]
    await _write(influx, lines, RP_HOURLY)
    return len(lines)


async def roll_days(
    influx: InfluxClient,
    start_ns: int,
    end_ns: int,
    spec: RollupSpec,
    *,
    sites: Iterable[str] | None = None,
) -> int:
    """Camera days (local midnight to midnight) in [start_ns, end_ns) summed from camera hours."""
    rows = series_rows(
        await influx.query(
            'SELECT sum("probes") AS "probes", sum("up") AS "up", sum("degraded") AS "degraded", '
            f'last("interval_s") AS "interval_s" FROM "{RP_HOURLY}"."{CAMERA_1H}" '
            f"WHERE time >= {start_ns} AND time < {end_ns}{site_filter(sites)} "
            f'GROUP BY time(1d, {spec.days.group_offset()}), "site", "district", "camera" '
            "fill(none)"
        )
    )
    lines = [
        _camera_line(CAMERA_1D, r, degraded=int(r["degraded"]), interval_s=float(r["interval_s"]))
        for r in rows
        if r.get("probes")
    ]
    await _write(influx, lines, RP_DAILY)
    return len(lines)
