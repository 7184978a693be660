"""Stream-probe cost: CPU seconds per probe and cameras per core."""

from __future__ import annotations

import asyncio
import statistics
import time

from bench.harness import Harness
from edge_agent.probes.stream import StreamThresholds, probe_stream
from pantau.core.contract import StreamFault
from simulators.cameras import FakeCamera

STREAM_SIZES = ((640, 360), (1280, 720))  # typical sub-stream and HD main stream
STREAM_CYCLE_S = 300.0


async def stream_cost(bench: Harness) -> None:
    """CPU seconds per stream probe (H.264, 10 fps) at two sizes, and how many cameras one
    core keeps under a 5-minute stream-probe cycle."""
    for width, height in STREAM_SIZES:
        camera = FakeCamera("stream-bench", video_size=(width, height))
        await camera.start()
        url = f"rtsp://admin:pantau@127.0.0.1:{camera.rtsp_port}/stream1"
        cpu, wall = [], []
        try:
            for _ in range(bench.config.stream_runs):
                started = time.perf_counter()
                result = await asyncio.to_thread(
                    probe_stream,
                    url,
                    sample_s=bench.config.stream_sample_s,
                    timeout_s=10.0,
                    thresholds=StreamThresholds(),
                )
                wall.append(time.perf_counter() - started)
                cpu.append(result.cpu_s)
                if result.fault is not StreamFault.NONE:
                    raise RuntimeError(f"stream bench probe failed: {result.detail}")
        finally:
            await camera.stop()
        per_probe = statistics.median(cpu)
        bench.results.stream[f"{width}x{height}"] = {
            "sample_s": bench.config.stream_sample_s,
            "cpu_s_per_probe": round(per_probe, 4),
            "wall_s_per_probe": round(statistics.median(wall), 2),
            "cameras_per_core_5min": int(STREAM_CYCLE_S / per_probe),
        }
        bench.say(
            f"stream probe {width}x{height}, {bench.config.stream_sample_s:g}s of video: "
            f"{per_probe:.3f} CPU s each -> {int(STREAM_CYCLE_S / per_probe)} cameras per "
            "core every 5 min"
        )
