"""Synthetic fleet history for the fleet benchmark: raw probes in the collector's line format
and camera hours in the rollup writer's, written with two concurrent writers."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from bench.harness import Harness
from bench.procfs import process_usage
from cloud.influx import InfluxClient
from cloud.lineproto import format_line, join_lines
from cloud.rollup.timegrid import HOUR_NS
from cloud.schema import CAMERA_1H, SITE

S = 1_000_000_000
PROBE_S = 10
CAMERAS_PER_SITE = 10
SITES_PER_DISTRICT = 5


def names(index: int) -> tuple[str, str, str]:
    site = index // CAMERAS_PER_SITE
    return f"s{site}", f"d{site // SITES_PER_DISTRICT}", f"c{index % CAMERAS_PER_SITE}"


def raw_lines(camera: int, start_ns: int, end_ns: int, rng: random.Random) -> list[str]:
    """One camera's probes as the collector writes them: up/down with a daily outage, ms
    timestamps with a little jitter."""
    site, district, name = names(camera)
    head = f"camera,camera={name},district={district},site={site} "
    outage = rng.randrange(0, 86400 - 1800)
    lines, since, was_up = [], start_ns, True
    for ts in range(start_ns, end_ns, PROBE_S * S):
        up = not outage <= (ts // S) % 86400 < outage + 1200
        if up != was_up:
            since, was_up = ts, up
        stamp = ts + rng.randrange(0, 40) * 1_000_000
        latency = 20.0 + rng.random() * 30
        if up:
            fields = f'up=1i,cause="ok",latency_ms={latency:.3f},since={since}i,state="up"'
        else:
            fields = f'up=0i,cause="refused",stage="rtsp",since={since}i,state="down"'
        lines.append(f"{head}{fields} {stamp}")
    return lines


async def write_all(
    client: InfluxClient, make: Callable[[int], list[str]], count: int, rp: str | None = None
) -> int:
    """Write ``make(i)`` for every i with two writers; return the points written."""
    queue: asyncio.Queue[list[str] | None] = asyncio.Queue(maxsize=4)
    written = 0

    async def writer() -> None:
        nonlocal written
        while (chunk := await queue.get()) is not None:
            await client.write(join_lines(chunk), rp=rp)
            written += len(chunk)

    tasks = [asyncio.create_task(writer()) for _ in range(2)]
    for index in range(count):
        lines = await asyncio.to_thread(make, index)
        for i in range(0, len(lines), 20_000):
            await queue.put(lines[i : i + 20_000])
    for _ in tasks:
        await queue.put(None)
    await asyncio.gather(*tasks)
    return written


async def quiet_influx(bench: Harness, limit_s: float = 300.0) -> float:
    """Wait until influxd is idle (its compactions after a bulk write would otherwise be counted
    as query cost); return the seconds waited."""
    pid = bench.influx.process.pid if bench.influx.process else 0
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        before = process_usage(pid).cpu_s
        await asyncio.sleep(1)
        if process_usage(pid).cpu_s - before < 0.05:  # < 5 % of a core
            break
    waited = time.monotonic() - started
    bench.say(f"fleet: influxd idle after {waited:.0f} s of compaction")
    return waited


def hour_lines(camera: int, start_ns: int, hours: int) -> list[str]:
    """One camera's hours in the rollup writer's format (``format_line`` of ``roll_hours``)."""
    site, district, name = names(camera)
    sample = format_line(
        CAMERA_1H,
        {"site": site, "district": district, "camera": name},
        {"probes": 360, "up": 360, "degraded": 0, "interval_s": float(PROBE_S)},
        start_ns,
    )
    head = sample.split(" ", 1)[0]
    down = camera % 24
    return [
        f"{head} probes=360i,up={340 if (start_ns // HOUR_NS + h) % 24 == down else 360}i,"
        f"degraded=0i,interval_s={float(PROBE_S)!r} {start_ns + h * HOUR_NS}"
        for h in range(hours)
    ]


def site_lines(
    site_index: int, start_ns: int, end_ns: int, *, offline_from_ns: int | None
) -> list[str]:
    """One site's statuses as the collector stores them: a birth every 6 h (the agents' status
    refresh), and from ``offline_from_ns`` on its Last Will and nothing after."""
    site, district, _ = names(site_index * CAMERAS_PER_SITE)
    stop = end_ns if offline_from_ns is None else offline_from_ns
    lines = [
        format_line(
            SITE,
            {"site": site, "district": district},
            {"online": 1, "probe_interval_s": float(PROBE_S), "lat": -3.8, "lon": 102.2},
            ts,
        )
        for ts in range(start_ns, stop, 6 * HOUR_NS)
    ]
    if offline_from_ns is not None:
        lines.append(format_line(SITE, {"site": site, "district": district}, {"online": 0}, stop))
    return lines
