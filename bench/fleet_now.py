"""The fleet view now (`/api/cameras`, `/api/sites`) with the fleet live, beside the unbounded
read it replaced: its cost must grow with cameras, never with the history kept."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx

from bench.fleet_data import CAMERAS_PER_SITE, PROBE_S, S, raw_lines, site_lines, write_all
from bench.harness import Harness
from bench.procfs import process_usage
from cloud.api.app import create_app
from cloud.auth.settings import AuthSettings
from cloud.influx import InfluxClient, InfluxSettings
from cloud.rollup.timegrid import DAY_NS, HOUR_NS
from cloud.schema import CAMERA, LAST_CAMERA_FIELDS
from cloud.webserver import bind_socket, serve_app

SILENT_EVERY = 20  # every 20th site went offline (its will): its cameras are silent, unknown
RUNS = 5
# What /api/cameras read before: the latest probe over 30 days of raw points.
UNBOUNDED = (
    f'SELECT {LAST_CAMERA_FIELDS} FROM "{CAMERA}" WHERE time > now() - 30d '
    'GROUP BY "site", "district", "camera"'
)


def silent(site: int) -> bool:
    """One site in ``SILENT_EVERY`` is offline."""
    return site % SILENT_EVERY == SILENT_EVERY - 1


async def write_sites(client: InfluxClient, cameras: int, days: int) -> int:
    """Statuses of the fleet's sites over ``days`` (up to raw retention); every
    ``SILENT_EVERY``-th site went offline 3 days ago. Returns the points written."""
    now = time.time_ns()
    start = now - min(days, 35) * DAY_NS + HOUR_NS
    offline = now - 3 * DAY_NS

    def make(site: int) -> list[str]:
        return site_lines(site, start, now, offline_from_ns=offline if silent(site) else None)

    return await write_all(client, make, max(1, cameras // CAMERAS_PER_SITE))


async def _influx_cpu(bench: Harness, action: Any) -> tuple[float, float]:
    """(median wall s, median influxd CPU s) of ``RUNS`` calls of ``action``."""
    pid = bench.influx.process.pid if bench.influx.process else 0
    walls, cpus = [], []
    for _ in range(RUNS):
        cpu, started = process_usage(pid).cpu_s, time.perf_counter()
        await action()
        walls.append(time.perf_counter() - started)
        cpus.append(process_usage(pid).cpu_s - cpu)
    return sorted(walls)[RUNS // 2], sorted(cpus)[RUNS // 2]


async def fleet_now(
    bench: Harness, settings: InfluxSettings, client: InfluxClient, cameras: int
) -> dict[str, Any]:
    """Time `/api/cameras` and `/api/sites` right after every camera but the silent ones sent
    its latest probes (as the collector keeps writing them), then the unbounded read."""
    sock = bind_socket("127.0.0.1", 0)
    state = f"sqlite:///{bench.workdir / f'state-now-{settings.database}.sqlite'}"
    task = asyncio.create_task(
        serve_app(
            create_app(influx=settings, state_url=state, auth=AuthSettings(public_read=True)), sock
        )
    )
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    row: dict[str, Any] = {"cameras": cameras}
    try:
        async with httpx.AsyncClient(base_url=base, timeout=600) as http:
            for _ in range(100):
                try:
                    await http.get("/openapi.json")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
            now = time.time_ns()
            await write_all(
                client,
                lambda i: (
                    []
                    if silent(i // CAMERAS_PER_SITE)
                    else raw_lines(i, now - 2 * PROBE_S * S, now, random.Random(i))
                ),
                cameras,
            )
            answers: dict[str, list[Any]] = {}

            async def get(path: str) -> None:
                response = await http.get(path)
                response.raise_for_status()
                answers[path] = response.json()

            wall, cpu = await _influx_cpu(bench, lambda: get("/api/cameras"))
            row["cameras_api_s"], row["cameras_influx_cpu_s"] = round(wall, 3), round(cpu, 3)
            statuses = [c["status"] for c in answers["/api/cameras"]]
            row["cameras_listed"] = len(statuses)
            row["cameras_unknown"] = statuses.count("unknown")
            wall, cpu = await _influx_cpu(bench, lambda: get("/api/sites"))
            row["sites_api_s"], row["sites_influx_cpu_s"] = round(wall, 3), round(cpu, 3)
            row["sites_listed"] = len(answers["/api/sites"])
            row["sites_offline"] = sum(not s["online"] for s in answers["/api/sites"])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    wall, cpu = await _influx_cpu(bench, lambda: client.query(UNBOUNDED))
    row["unbounded_query_s"], row["unbounded_influx_cpu_s"] = round(wall, 3), round(cpu, 3)
    bench.say(
        f"fleet now, {cameras:,} cameras: /api/cameras {row['cameras_api_s']} s "
        f"({row['cameras_influx_cpu_s']} CPU-s of influxd; {row['cameras_unknown']} of "
        f"{row['cameras_listed']} unknown), /api/sites {row['sites_api_s']} s "
        f"({row['sites_offline']} of {row['sites_listed']} offline); the unbounded 30 d read it "
        f"replaced: {row['unbounded_query_s']} s, {row['unbounded_influx_cpu_s']} CPU-s"
    )
    return row
