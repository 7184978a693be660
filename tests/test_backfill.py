"""History that reaches InfluxDB behind the rollup worker's watermark without the collector (an
import, a restore) is marked by nothing: `pantau rollups rebuild` recomputes its hours and days,
after which rollups equal raw again, and running it again changes nothing."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cloud.availability import GroupBy
from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.rollup.rebuild import rebuild_plan
from cloud.rollup.retention import Retention, ensure_policies
from cloud.rollup.timegrid import DAY_NS, HOUR_NS, ceil_hour, floor_hour
from cloud.rollup.worker import RollupWorker, WorkerSettings
from cloud.schema import CAMERA_1D, CAMERA_1H, DISTRICT_1H, RP_DAILY, RP_HOURLY, SENSOR_1H
from devtools.localsvc import InfluxProcess
from tests.helpers import run_pantau
from tests.test_rollups import SPEC, _both, _fleet_history, _ts

S = 1_000_000_000
ROLLUPS = ((RP_HOURLY, CAMERA_1H), (RP_HOURLY, DISTRICT_1H), (RP_HOURLY, SENSOR_1H))


@pytest.fixture
async def influx(influxd: InfluxProcess, database: str) -> AsyncIterator[InfluxClient]:
    async with InfluxClient(
        InfluxSettings(url=influxd.url, database=database, timeout_s=60)
    ) as client:
        assert await ensure_policies(client, Retention())
        yield client


def _iso(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / S, dt.UTC).isoformat()


async def _rollup_points(client: InfluxClient, since_ns: int) -> list[dict[str, Any]]:
    """Every rollup point since ``since_ns``, tags included, in a stable order."""
    points = []
    for rp, measurement in (*ROLLUPS, (RP_DAILY, CAMERA_1D)):
        answer = await client.query(
            f'SELECT * FROM "{rp}"."{measurement}" WHERE time >= {since_ns} GROUP BY *'
        )
        points += series_rows(answer)
    return sorted(points, key=lambda p: sorted((k, str(v)) for k, v in p.items()))


def _rebuild(*args: str) -> str:
    result = run_pantau("rollups", "rebuild", *args, timeout_s=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _collector_yaml(path: Path, influxd: InfluxProcess, database: str, timezone: str) -> Path:
    path.write_text(
        f"influx: {{url: '{influxd.url}', database: '{database}'}}\n"
        f"rollup: {{timezone: '{timezone}'}}\n"
    )
    return path


async def test_import_behind_the_watermark_is_rolled_up_by_rebuild(
    influx: InfluxClient, influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """30 hours of a fleet rolled up by the worker while site s1's hours 3 to 11 were missing;
    then those hours are imported straight into InfluxDB: the rollups are wrong (nothing marked
    them) until `pantau rollups rebuild --site s1` over the imported range, then equal raw for
    every window and grouping; a second rebuild over whole days (all sites, settings from the
    collector's config) writes the same points; a config whose timezone differs from the stored
    rollups' is refused."""
    now = time.time_ns()
    t0 = floor_hour(now) - 30 * HOUR_NS
    history = _fleet_history(t0, 30)
    gap = (t0 + 3 * HOUR_NS, t0 + 11 * HOUR_NS)

    def imported(line: str) -> bool:
        return ",site=s1 " in line and gap[0] <= _ts(line) < gap[1]

    live = [line for line in history.lines if not imported(line)]
    later = [line for line in history.lines if imported(line)]
    assert later and any(line.startswith("sensor,") for line in later)
    for i in range(0, len(live), 5000):
        await influx.write("\n".join(live[i : i + 5000]).encode())
    report = await RollupWorker(influx, SPEC, WorkerSettings(settle_s=0)).step(now)
    assert report.hours == 30

    for i in range(0, len(later), 5000):  # the import: no collector, no marks
        await influx.write("\n".join(later[i : i + 5000]).encode())
    whole = (t0 + 1234 * S, now - 95 * S)
    rolled, raw = await _both(influx, *whole, GroupBy.CAMERA, [])
    assert rolled != raw  # what the operator saw: availability wrong until rollup_state dropped
    again = await RollupWorker(influx, SPEC, WorkerSettings(settle_s=0)).step(time.time_ns())
    assert (again.hours, again.dirty) == (0, 0)  # the worker alone never finds it

    at = ("--influx", influxd.url, "--database", database, "--site", "s1")
    out = _rebuild(*at, "--from", _iso(gap[0] + 600 * S), "--to", _iso(gap[1] - S))
    assert "rebuilt 8 hours" in out
    day = SPEC.days.ceil(t0)
    windows = [whole, (gap[0] - 17 * S, gap[1] + 3 * S), (day - 5 * HOUR_NS, day + DAY_NS)]
    for window in windows:
        for group_by in GroupBy:
            rolled, raw = await _both(influx, *window, group_by, [])
            assert rolled == raw, (window, group_by)
    sensor = series_rows(
        await influx.query(
            f'SELECT "count" FROM "{RP_HOURLY}"."{SENSOR_1H}" WHERE time = {gap[0] + HOUR_NS}'
        )
    )
    assert [row["count"] for row in sensor] == [360]

    before = await _rollup_points(influx, t0)
    days = [dt.datetime.fromtimestamp((t + SPEC.days.offset_ns) / S, dt.UTC) for t in gap]
    whole_days = ("--from", days[0].date().isoformat(), "--to", days[1].date().isoformat())
    config = _collector_yaml(tmp_path / "c.yaml", influxd, database, "Asia/Jakarta")
    out = _rebuild("--config", str(config), *whole_days)
    assert "local days" in out
    assert await _rollup_points(influx, t0) == before
    utc = _collector_yaml(tmp_path / "utc.yaml", influxd, database, "UTC")
    refused = run_pantau("rollups", "rebuild", "--config", str(utc), *whole_days, timeout_s=60)
    assert refused.returncode == 2 and "local days at UTC+7h" in refused.stderr, refused.stderr


def test_rebuild_plan_covers_whole_hours_that_are_over_and_retained() -> None:
    """Partial hours at the edges are widened to whole hours; the hour in progress and hours
    beyond raw retention are left out; days are the local days holding those hours that are
    over; work comes in day-sized chunks."""
    now = SPEC.days.floor(time.time_ns()) + 10 * HOUR_NS + 1234 * S  # 10:20 local
    plan = rebuild_plan(now - 3 * DAY_NS - 600 * S, now + HOUR_NS, SPEC, now_ns=now)
    assert plan.hours[0][0] == floor_hour(now - 3 * DAY_NS - 600 * S)
    assert plan.hours[-1][1] == floor_hour(now)
    assert all(end - start <= DAY_NS for start, end in plan.hours)
    assert plan.days == [(SPEC.days.floor(now) - 3 * DAY_NS, SPEC.days.floor(now))]
    old = rebuild_plan(now - 90 * DAY_NS, now - 80 * DAY_NS, SPEC, now_ns=now)
    assert old.hours == [] and old.days == []
    clipped = rebuild_plan(now - 40 * DAY_NS, now - 30 * DAY_NS, SPEC, now_ns=now)
    assert clipped.hours[0][0] == ceil_hour(now - SPEC.lookback_ns)


def test_rebuild_refuses_bad_dates_and_explains_itself() -> None:
    """A date that is not one, a range that ends before it starts and one in the future are
    refused with exit code 2 and the option named; --help says when to run it."""
    bad = run_pantau(
        "rollups", "rebuild", "--from", "2026-13-01", "--to", "2026-11-02", timeout_s=60
    )
    assert bad.returncode == 2 and "--from '2026-13-01': not a date" in bad.stderr
    backwards = run_pantau(
        "rollups", "rebuild", "--from", "2026-11-03", "--to", "2026-11-01T10:00", timeout_s=60
    )
    assert backwards.returncode == 2 and "is not after --from" in backwards.stderr
    future = run_pantau(
        "rollups", "rebuild", "--from", "2999-01-01", "--to", "2999-01-02", timeout_s=60
    )
    assert future.returncode == 2 and "in the future" in future.stderr
    helped = run_pantau("rollups", "rebuild", "--help", timeout_s=60)
    assert helped.returncode == 0 and "import" in helped.stdout and "restore" in helped.stdout


def test_rebuild_names_missing_retention_policies(influxd: InfluxProcess, database: str) -> None:
    """A database no collector has set up (no rollup policies): told what to do, exit code 2."""
    result = run_pantau(
        "rollups", "rebuild", "--from", _iso(time.time_ns() - DAY_NS), "--to",
        _iso(time.time_ns()), "--influx", influxd.url, "--database", database, timeout_s=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no rollup retention policies" in result.stderr, result.stderr
