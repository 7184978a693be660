"""Backlog drain: how fast an agent empties a day-long queue after an outage."""

from __future__ import annotations

import time
from pathlib import Path

from bench.detection import until
from bench.harness import Harness
from cloud.influx import InfluxClient, InfluxSettings, series_rows
from edge_agent.queue import ReadingQueue, count_queued
from pantau.core.contract import CameraReading, Cause
from simulators.cameras import FakeCamera


async def backlog_drain(bench: Harness) -> None:
    """An agent whose queue holds a day of a 32-camera site reconnects: seconds to drain."""
    database = "backlog"
    queue_path = bench.workdir / "backlog.sqlite"
    queue = ReadingQueue(queue_path, max_readings=10**7, max_age_s=3 * 86400)
    day_start = time.time_ns() - 86400 * 10**9
    per_camera = max(1, bench.config.backlog_readings // 32)
    step = 86400 * 10**9 // per_camera
    items = []
    for n in range(per_camera):
        for cam in range(32):
            ts = day_start + n * step + cam
            body = (
                CameraReading(camera=f"c{cam + 1}", ts=ts, up=True, cause=Cause.OK, latency_ms=12.3)
                .model_dump_json(exclude_none=True)
                .encode()
            )
            items.append(("cameras", ts, body))
    for chunk in range(0, len(items), 50_000):
        queue.append(items[chunk : chunk + 50_000], now_ns=time.time_ns())
    queue.close()
    fakes = [FakeCamera(f"b{i}") for i in range(4)]
    for fake in fakes:
        await fake.start()
    async with InfluxClient(InfluxSettings(url=bench.influx.url, database=database)) as influx:
        await influx.create_database()
        collector, port = await bench.start_collector(7, database)
        config = bench.agent_config("backlog", fakes, 10, 2.0, queue_path)
        started = time.perf_counter()
        agent = await bench.start_agent(config)
        await until(lambda: _queue_empty(queue_path), 600, interval=0.2)
        drained = time.perf_counter() - started
        live = series_rows(
            await influx.query(
                "SELECT last(\"up\") FROM camera WHERE site='backlog' AND camera='c1' AND "
                f"time > {time.time_ns() - 3600 * 10**9}"
            )
        )
        lag = time.time() - int(live[0]["time"]) / 1e9 if live else float("nan")
        agent.terminate()
        await agent.wait()
        collector.terminate()
        await collector.wait()
        del port
    for fake in fakes:
        await fake.stop()
    bench.results.backlog = {
        "readings": len(items),
        "drain_s": round(drained, 2),
        "readings_s": round(len(items) / drained),
        "live_lag_at_end_s": round(lag, 2),
    }
    bench.say(
        f"backlog of {len(items):,} readings drained in {drained:.1f}s; live reading "
        f"{lag:.1f}s old at the end"
    )


def _queue_empty(path: Path) -> bool:
    return count_queued(path) < 200
