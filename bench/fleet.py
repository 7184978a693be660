"""Fleet-scale history: rollups against raw scans, on a real InfluxDB.

1. Raw history for N cameras x D days in the collector's own line format (10 s probes, ms
   timestamps, outages), rolled up by the project's own worker; rollup-equals-raw is checked
   on it. Every Command Center panel, /api/availability (camera, site, district, CSV), the
   monthly report and one problems evaluation are timed, each beside the raw-scan equivalent.
2. A large fleet (1,000 cameras x 365 days) synthesized at the rollup level (camera hours in
   the rollup writer's format; district hours and days by the project's own code): the same
   reads, which must grow with cameras, not with the window.
3. Rollup upkeep: the worker's cycles over a live hour of the large fleet (influxd + worker CPU).
4. Disk per camera-year, raw and rolled up, after InfluxDB compacted it.
5. The fleet view now (``fleet_now``): /api/cameras and /api/sites on both fleets, live.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bench.fleet_data import PROBE_S, S, hour_lines, quiet_influx, raw_lines, write_all
from bench.fleet_disk import disk_cost
from bench.fleet_now import fleet_now, write_sites
from bench.harness import Harness
from bench.procfs import process_usage
from cloud.api.app import create_app
from cloud.auth.settings import AuthSettings
from cloud.availability import GroupBy, compute
from cloud.influx import InfluxClient, InfluxSettings
from cloud.problems.config import RulesConfig
from cloud.problems.observe import Observer
from cloud.rollup.retention import Retention, ensure_policies
from cloud.rollup.timegrid import DAY_NS, HOUR_NS, LocalDays, fixed_offset_s, floor_hour
from cloud.rollup.worker import RollupWorker, WorkerSettings
from cloud.rollup.writer import RollupSpec, roll_days, roll_districts
from cloud.schema import RP_HOURLY
from cloud.webserver import bind_socket, serve_app
from dashboards import command_center
from dashboards.build import dashboard_json

SPEC = RollupSpec(days=LocalDays(fixed_offset_s("Asia/Jakarta")))
RAW_AVAILABILITY = {  # the panels as they were: mean("up") over raw probes
    "Availability 24 h": 'SELECT mean("up") * 100 FROM "camera" WHERE time > now() - 24h',
    "Availability 7 d": 'SELECT mean("up") * 100 FROM "camera" WHERE time > now() - 7d',
    "Availability 30 d": 'SELECT mean("up") * 100 FROM "camera" WHERE time > now() - 30d',
    "Availability per district [window]": 'SELECT mean("up") * 100 FROM "camera" '
    'WHERE time > now() - 30d GROUP BY "district"',
}


async def _timed(action: Callable[[], Awaitable[Any]], runs: int = 3) -> float:
    """Median wall seconds of ``runs`` calls."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _expand(query: str, now_ms: int) -> str:
    return (
        query.replace("$fresh", "1h")  # the synthetic history ends when it was written
        .replace("$timeFilter", f"time >= {now_ms - 30 * 86400_000}ms and time <= {now_ms}ms")
        .replace("${__from}", str(now_ms - 30 * 86400_000))
        .replace("${__to}", str(now_ms))
        .replace("$__interval", "1h")
    )


def command_center_queries() -> dict[str, str]:
    """Every Command Center panel query, by title."""
    board = dashboard_json(command_center.build())
    return {
        f"{panel['title']}{f' #{number}' if number else ''}": target["query"]
        for panel in board["panels"]
        for number, target in enumerate(panel["targets"])
    }


class Fleet:
    """One database of fleet history and the reads timed on it."""

    def __init__(self, bench: Harness, database: str) -> None:
        self.bench = bench
        self.settings = InfluxSettings(url=bench.influx.url, database=database, timeout_s=600)

    async def panels(self, client: InfluxClient, *, raw: bool) -> dict[str, float]:
        """Seconds per Command Center panel (raw: the availability panels as raw scans)."""
        now_ms = int(time.time() * 1000)
        queries = RAW_AVAILABILITY if raw else command_center_queries()
        timings = {}
        for title, query in queries.items():
            expanded = _expand(query, now_ms)

            async def run(q: str = expanded) -> None:
                await client.query(q)

            timings[title] = round(await _timed(run), 3)
        return timings

    async def refresh_influx_cpu(self, client: InfluxClient) -> float:
        """influxd CPU seconds for one refresh of every Command Center panel."""
        pid = self.bench.influx.process.pid if self.bench.influx.process else 0
        now_ms = int(time.time() * 1000)
        before = process_usage(pid).cpu_s
        for query in command_center_queries().values():
            await client.query(_expand(query, now_ms))
        return round(process_usage(pid).cpu_s - before, 2)

    async def api(self, days: int) -> dict[str, float]:
        """/api/availability over the last ``days`` by camera, site, district and as CSV."""
        sock = bind_socket("127.0.0.1", 0)
        state = f"sqlite:///{self.bench.workdir / f'state-{self.settings.database}.sqlite'}"
        app = create_app(influx=self.settings, state_url=state, auth=AuthSettings(public_read=True))
        task = asyncio.create_task(serve_app(app, sock))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/api/availability"
        now = time.time()
        window = {
            "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - days * 86400)),
            "to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        }
        timings = {}
        try:
            async with httpx.AsyncClient(timeout=600) as http:
                for _ in range(100):
                    try:
                        await http.get(url.replace("/api/availability", "/openapi.json"))
                        break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.05)
                for label, extra in (
                    ("camera", {"group_by": "camera"}),
                    ("site", {"group_by": "site"}),
                    ("district", {"group_by": "district"}),
                    ("csv", {"group_by": "camera", "format": "csv"}),
                ):

                    async def get(extra: dict[str, str] = extra) -> None:
                        response = await http.get(url, params=window | extra)
                        response.raise_for_status()

                    timings[label] = round(await _timed(get), 3)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return timings

    async def availability(self, client: InfluxClient, days: int, *, raw: bool) -> float:
        """Seconds of one camera-level availability computation over the last ``days``."""
        now = time.time_ns()

        async def run() -> None:
            await compute(
                client,
                start_ns=now - days * DAY_NS,
                end_ns=now,
                maintenance=[],
                use_rollups=not raw,
                now_ns=now,
            )

        return round(await _timed(run, runs=1 if raw else 3), 3)


async def fleet_history(bench: Harness) -> None:
    """The fleet-scale figures (module docstring)."""
    results = bench.results.fleet
    small = Fleet(bench, "fleet_raw")
    async with InfluxClient(small.settings) as client:
        await client.create_database()
        await ensure_policies(client, Retention())
        results["raw"] = await _raw_fleet(bench, small, client, results)
    large = Fleet(bench, "fleet_large")
    async with InfluxClient(large.settings) as client:
        await client.create_database()
        await ensure_policies(client, Retention())
        results["large"] = await _large_fleet(bench, large, client)
    results["disk"] = await disk_cost(bench, results["raw"]["points"])


async def _raw_fleet(
    bench: Harness, fleet: Fleet, client: InfluxClient, results: dict[str, Any]
) -> dict[str, Any]:
    cameras, days = bench.config.fleet_cameras, bench.config.fleet_days
    now = time.time_ns()
    start = floor_hour(now) - days * DAY_NS
    bench.say(f"fleet: writing {cameras} cameras x {days} days of raw probes (every {PROBE_S} s)")
    started = time.perf_counter()
    points = await write_all(
        client, lambda i: raw_lines(i, start, now - 30 * S, random.Random(i)), cameras
    )
    await write_sites(client, cameras, days)
    bench.say(f"fleet: {points:,} points in {time.perf_counter() - started:.0f} s; rolling up")
    started = time.perf_counter()
    report = await RollupWorker(client, SPEC, WorkerSettings()).step(now)
    roll_s = time.perf_counter() - started
    week = (now - 7 * DAY_NS + 1234 * S, now - 60 * S)
    equal = True
    for group_by in GroupBy:
        answers = [
            [
                r.as_dict()
                for r in await compute(
                    client,
                    start_ns=week[0],
                    end_ns=week[1],
                    maintenance=[],
                    group_by=group_by,
                    use_rollups=use,
                )
            ]
            for use in (True, False)
        ]
        equal = equal and answers[0] == answers[1]
    bench.say(f"fleet: {report.hours} hours rolled up in {roll_s:.1f} s; rollups = raw: {equal}")
    await quiet_influx(bench)
    observer = Observer(client, RulesConfig())
    row: dict[str, Any] = {
        "cameras": cameras,
        "days": days,
        "points": points,
        "rollup_s": round(roll_s, 1),
        "rollup_equals_raw_7d": equal,
        "panels_s": await fleet.panels(client, raw=False),
        "panels_raw_s": await fleet.panels(client, raw=True),
        "refresh_influx_cpu_s": await fleet.refresh_influx_cpu(client),
        "api_30d_s": await fleet.api(min(30, days)),
        "availability_30d_s": await fleet.availability(client, min(30, days), raw=False),
        "availability_30d_raw_s": await fleet.availability(client, min(30, days), raw=True),
        "problems_s": round(await _timed(lambda: observer.observe(time.time_ns())), 3),
        "now": await fleet_now(bench, fleet.settings, client, cameras),
    }
    _say_pairs(bench, f"{cameras} cameras x {days} d", row)
    return row


async def _large_fleet(bench: Harness, fleet: Fleet, client: InfluxClient) -> dict[str, Any]:
    cameras, days = bench.config.large_cameras, bench.config.large_days
    now = time.time_ns()
    end = floor_hour(now) - HOUR_NS
    start = SPEC.days.floor(end - days * DAY_NS)
    hours = (end - start) // HOUR_NS
    bench.say(f"fleet: writing {cameras} cameras x {days} days of camera hours")
    points = await write_all(client, lambda i: hour_lines(i, start, hours), cameras, RP_HOURLY)
    bench.say(f"fleet: {points:,} camera hours; district hours and days by the rollup writer")
    for chunk in range(start, end, 30 * DAY_NS):
        await roll_districts(client, chunk, min(end, chunk + 30 * DAY_NS))
    await roll_days(client, start, SPEC.days.floor(end), SPEC)
    worker = RollupWorker(client, SPEC, WorkerSettings())
    await worker._store_watermark(end)  # the bench plays the worker's past
    # The last hour and this one live (raw), for the "now" panels and the worker's upkeep.
    await write_all(client, lambda i: raw_lines(i, end, now, random.Random(i)), cameras)
    await write_sites(client, cameras, days)
    await quiet_influx(bench)
    # The worker catches up the last hour, as it does once an hour: reads below are steady state
    # (raw only for this hour so far and the partial hour at a window's start).
    bench.results.fleet["upkeep"] = await _upkeep(bench, client)
    observer = Observer(client, RulesConfig())
    row: dict[str, Any] = {
        "cameras": cameras,
        "days": days,
        "hour_points": points,
        "panels_s": await fleet.panels(client, raw=False),
        "refresh_influx_cpu_s": await fleet.refresh_influx_cpu(client),
        "api_30d_s": await fleet.api(30),
        "report_365d_s": await fleet.availability(client, min(365, days), raw=False),
        "report_30d_s": await fleet.availability(client, 30, raw=False),
        "problems_s": round(await _timed(lambda: observer.observe(time.time_ns())), 3),
        "now": await fleet_now(bench, fleet.settings, client, cameras),
    }
    _say_pairs(bench, f"{cameras} cameras x {days} d (rollups)", row)
    return row


async def _upkeep(bench: Harness, client: InfluxClient) -> dict[str, Any]:
    """The worker's cost with the large fleet live (``_large_fleet`` wrote the last hour and this
    one raw): the hour before rolled up (once an hour), then a minute of 10 s cycles (the
    district refresh runs every ``live_every_s`` of them); influxd's CPU and the worker's own."""
    cameras = bench.config.large_cameras
    worker = RollupWorker(client, SPEC, WorkerSettings())
    pid = bench.influx.process.pid if bench.influx.process else 0

    def cpu() -> float:
        return process_usage(pid).cpu_s + time.process_time()

    now = time.time_ns()
    before = cpu()
    await worker.step(now)  # rolls up the hour before: what happens once an hour
    hourly = cpu() - before
    cycles = 6  # one minute of cycles, at their own times
    before, wall0 = cpu(), time.perf_counter()
    for k in range(1, cycles + 1):
        await worker.step(now + k * 10 * S)
    cycle = (cpu() - before) / cycles
    per_cycle = cycle + hourly / 360  # 360 cycles of 10 s per hour
    pct = 100 * per_cycle / 10.0
    bench.say(
        f"fleet: rollup upkeep at {cameras} cameras: {hourly:.2f} CPU-s to roll up an hour "
        f"(once an hour), {cycle:.3f} CPU-s per 10 s cycle on average (influxd + worker; "
        f"{(time.perf_counter() - wall0) / cycles:.2f} s wall) = {pct:.2f} % of a core "
        "(target 5 %)"
    )
    return {
        "cameras": cameras,
        "hour_rollup_cpu_s": round(hourly, 3),
        "cycle_cpu_s": round(cycle, 3),
        "pct_of_core": round(pct, 2),
    }


def _say_pairs(bench: Harness, label: str, row: dict[str, Any]) -> None:
    for title, seconds in row["panels_s"].items():
        raw = row.get("panels_raw_s", {}).get(title)
        bench.say(
            f"fleet {label}: panel {title}: {seconds:.3f} s"
            + (f" (raw scan {raw:.3f} s)" if raw else "")
        )
    bench.say(
        f"fleet {label}: one Command Center refresh costs "
        f"{row['refresh_influx_cpu_s']} CPU-s of influxd"
    )
    bench.say(f"fleet {label}: /api/availability 30 d: {row['api_30d_s']}")
    for key in (
        "availability_30d_s",
        "availability_30d_raw_s",
        "report_30d_s",
        "report_365d_s",
        "problems_s",
    ):
        if key in row:
            bench.say(f"fleet {label}: {key.removesuffix('_s').replace('_', ' ')}: {row[key]} s")
