"""Offline detection: how long from a killed agent to the site shown offline."""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.harness import Harness
from cloud.influx import InfluxClient, InfluxSettings, series_rows


async def detection(bench: Harness) -> None:
    """SIGKILL an agent; seconds until its site shows online=0 in InfluxDB."""
    keepalive = 5
    database = "detection"
    times: list[float] = []
    async with InfluxClient(InfluxSettings(url=bench.influx.url, database=database)) as influx:
        await influx.create_database()
        collector, _ = await bench.start_collector(8, database)
        for run in range(bench.config.detection_runs):
            config = bench.agent_config(
                f"det{run}", [], keepalive, 2.0, bench.workdir / f"det{run}.sqlite"
            )
            agent = await bench.start_agent(config)
            site = f"det{run}"
            await until(functools.partial(_online, influx, site, 1), 30)
            killed = time.time()
            agent.kill()
            await agent.wait()
            await until(functools.partial(_online, influx, site, 0), 3 * keepalive + 5)
            times.append(time.time() - killed)
        collector.terminate()
        await collector.wait()
    bench.results.detection = {
        "keepalive_s": keepalive,
        "runs": len(times),
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "target_s": 1.5 * keepalive + 1,
    }
    bench.say(f"offline detection: median {statistics.median(times):.3f}s over {len(times)}")


async def until(condition: Callable[[], Any], timeout_s: float, interval: float = 0.05) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(interval)


async def _online(influx: InfluxClient, site: str, value: int) -> bool:
    rows = series_rows(await influx.query(f"SELECT last(\"online\") FROM site WHERE site='{site}'"))
    return bool(rows) and rows[0]["last"] == value
