"""Disk per camera-year and per point for the fleet benchmark, once influxd compacted it."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

from bench.fleet_data import raw_lines, write_all
from bench.harness import Harness
from cloud.influx import InfluxClient, InfluxSettings
from cloud.rollup.retention import Retention
from cloud.rollup.timegrid import DAY_NS, floor_hour


async def _settled_tsm(bench: Harness, database: str) -> dict[str, int]:
    """TSM bytes per retention policy of ``database`` once its WAL was snapshotted."""
    base = Path(bench.influx.workdir) / "data" / database
    wal = Path(bench.influx.workdir) / "wal" / database
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # influxd snapshots cold caches into compressed TSM
        if sum(f.stat().st_size for f in wal.rglob("*.wal")) < 100_000:
            break
        await asyncio.sleep(0.5)
    return {
        rp.name: sum(f.stat().st_size for f in rp.rglob("*.tsm"))
        for rp in base.iterdir()
        if rp.is_dir() and not rp.name.startswith("_")
    }


async def _timestamp_cost(bench: Harness) -> dict[str, float]:
    """Bytes per raw camera point with jittered nanosecond stamps (as before) and with whole
    milliseconds (as agents stamp now): the same points otherwise."""
    cameras, days = bench.config.timestamp_cameras, bench.config.timestamp_days
    now = time.time_ns()
    start = floor_hour(now) - days * DAY_NS
    found = {}
    for name, jitter in (("ns", True), ("ms", False)):
        settings = InfluxSettings(url=bench.influx.url, database=f"ts_{name}", timeout_s=600)
        async with InfluxClient(settings) as client:
            await client.create_database()

            def make(i: int, jitter: bool = jitter) -> list[str]:
                lines = raw_lines(i, start, now, random.Random(i))
                if not jitter:
                    return lines
                rng = random.Random(-i)
                return [
                    f"{head} {int(ts) + rng.randrange(1, 999_999)}"
                    for head, ts in (line.rsplit(" ", 1) for line in lines)
                ]

            points = await write_all(client, make, cameras)
        size = sum((await _settled_tsm(bench, f"ts_{name}")).values())
        found[f"bytes_per_point_{name}"] = round(size / points, 1)
    bench.say(
        f"fleet: raw camera point on disk: {found['bytes_per_point_ns']} B with jittered "
        f"nanosecond stamps, {found['bytes_per_point_ms']} B with whole milliseconds"
    )
    return found


async def disk_cost(bench: Harness, points: int) -> dict[str, Any]:
    """Bytes per camera-year in each retention policy of the raw fleet, once compacted, and the
    steady state per camera (raw for its retention, rollups for theirs)."""
    sizes = await _settled_tsm(bench, "fleet_raw")
    camera_years = bench.config.fleet_cameras * bench.config.fleet_days / 365
    per_year = {rp: size / camera_years / 1e6 for rp, size in sizes.items()}
    retention = Retention()
    steady = (
        per_year.get("autogen", 0) * retention.raw_days / 365
        + per_year.get("rollup_1h", 0) * retention.hourly_days / 365
        + per_year.get("rollup_1d", 0) * retention.daily_days / 365
    )
    row: dict[str, Any] = {f"{rp}_mb_per_camera_year": round(v, 3) for rp, v in per_year.items()}
    row["raw_bytes_per_point"] = round(sizes.get("autogen", 0) / points, 1) if points else None
    row["steady_state_mb_per_camera"] = round(steady, 1)
    bench.say(
        f"fleet: disk per camera-year {row}; steady state with retention "
        f"{steady:.1f} MB per camera (raw stops growing after {retention.raw_days} days)"
    )
    return row | await _timestamp_cost(bench)
