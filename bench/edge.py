"""The edge agent's own cost: CPU and memory probing cameras."""

from __future__ import annotations

import asyncio
import time

from bench.harness import Harness
from bench.procfs import process_usage
from simulators.cameras import FakeCamera


async def edge_cost(bench: Harness) -> None:
    """One agent probing N fake cameras every 10 s plus sensors: CPU and peak RSS."""
    cameras = [FakeCamera(f"e{i}") for i in range(bench.config.edge_cameras)]
    for cam in cameras:
        await cam.start()
    config = bench.agent_config("edge", cameras, 10, 10.0, bench.workdir / "edge.sqlite")
    agent = await bench.start_agent(config)
    await asyncio.sleep(3)  # start-up (imports) is not the steady state we measure
    before = process_usage(agent.pid)
    started = time.perf_counter()
    await asyncio.sleep(bench.config.edge_s)
    after = process_usage(agent.pid)
    elapsed = time.perf_counter() - started
    agent.terminate()
    await agent.wait()
    for cam in cameras:
        await cam.stop()
    cpu_pct = 100 * (after.cpu_s - before.cpu_s) / elapsed
    bench.results.edge = {
        "cameras": len(cameras),
        "seconds": round(elapsed, 1),
        "cpu_pct_of_core": round(cpu_pct, 2),
        "peak_rss_mb": round(after.peak_rss_mb, 1),
    }
    bench.say(
        f"edge cost, {len(cameras)} cameras every 10 s: {cpu_pct:.2f}% of a core, "
        f"peak RSS {after.peak_rss_mb:.1f} MB"
    )
