"""Sustained ingest: publishers as fast as the collectors absorb, counted in InfluxDB."""

from __future__ import annotations

import asyncio
import json
import time

from bench.harness import DRAIN_LIMIT_S, LEAD_S, Harness
from bench.procfs import process_usage
from cloud.influx import InfluxClient, InfluxSettings, series_rows


async def ingest(
    bench: Harness,
    collectors: int,
    *,
    rate: float = 0.0,
    duration: float | None = None,
    record: bool = True,
) -> float:
    """Publishers push as fast as the collectors absorb; count what lands in InfluxDB."""
    duration = duration or bench.config.ingest_s
    database = f"ingest{collectors}" if record else "latency"
    async with InfluxClient(InfluxSettings(url=bench.influx.url, database=database)) as influx:
        await influx.query(f'DROP DATABASE "{database}"', database="")
        await influx.create_database()
        procs = [await bench.start_collector(i, database) for i in range(collectors)]
        ports = [port for _, port in procs]
        allowance_files = [bench.workdir / f"allow-{i}" for i in range(bench.config.publishers)]
        lead = int(LEAD_S * 100_000)
        for path in allowance_files:
            path.write_text(str(lead))
        start_ns = time.time_ns() - 600 * 10**9
        started = time.perf_counter()
        publishers = [
            await bench.publisher(f"bench{i}", duration, rate, start_ns, allowance_files[i])
            for i in range(bench.config.publishers)
        ]
        usage_before = [process_usage(p.pid) for p, _ in procs]
        while any(p.returncode is None for p in publishers):
            done = await bench.written(ports)
            share = int((done + lead) / bench.config.publishers)
            for path in allowance_files:
                path.write_text(str(share))
            await asyncio.sleep(0.1)
        published = 0
        for p in publishers:
            out, _ = await p.communicate()
            published += int(json.loads(out)["published"])
        while time.perf_counter() - started < duration + DRAIN_LIMIT_S:  # other processes
            if await bench.written(ports) >= published:
                break
            await asyncio.sleep(0.05)
        landed_at = time.perf_counter()
        usage_after = [process_usage(p.pid) for p, _ in procs]
        rows = series_rows(await influx.query('SELECT count("up") FROM camera'))
        stored = int(rows[0]["count"]) if rows else 0
        # Millions of points left behind keep influxd compacting (CPU) through the next
        # stages, whose latency would then measure that: drop them once counted.
        await influx.query(f'DROP DATABASE "{database}"', database="")
        for p, _ in procs:
            p.terminate()
            await p.wait()
    elapsed = landed_at - started
    landed_rate = stored / elapsed
    if not record:
        return landed_rate
    cpu = sum(a.cpu_s - b.cpu_s for a, b in zip(usage_after, usage_before, strict=True))
    ceiling = bench.results.ceilings.get(f"influx_write_{min(collectors, 2)}_writer_pts_s", 0)
    bench.results.ingest[f"{collectors}_collector"] = {
        "readings_s": round(landed_rate),
        "published": published,
        "stored": stored,
        "lost": max(0, published - stored),
        "dup": max(0, stored - published),
        "collector_cpu_pct_of_core": round(100 * cpu / elapsed, 1),
        "collector_peak_rss_mb": round(max(a.peak_rss_mb for a in usage_after), 1),
        "ratio_to_influx_ceiling": round(landed_rate / ceiling, 3) if ceiling else 0,
    }
    bench.say(
        f"ingest with {collectors} collector(s): {landed_rate:,.0f} readings/s "
        f"(published {published}, stored {stored})"
    )
    return landed_rate
