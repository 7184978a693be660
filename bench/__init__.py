"""``pantau bench``: ingest, latency, detection and edge cost, beside the ceilings, in one run.

Everything runs against a mosquitto and an influxd started here on loopback. Results go to
``bench/results/<timestamp>.json`` and a table on the terminal (see bench/README.md). One module
per figure; ``harness`` holds what they share (services, processes, config, results).
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from bench import backlog, ceilings, detection, edge, ingest, latency, stream
from bench.harness import BenchConfig, Harness, Results
from bench.report import render, write_json

__all__ = ["BenchConfig", "Results", "run_bench"]


async def run_all(bench: Harness) -> Results:
    """Run every figure in order on the harness's own services."""
    await asyncio.to_thread(bench.broker.start)
    await asyncio.to_thread(bench.influx.start)
    try:
        bench.results.machine = {
            "cpus": os.cpu_count() or 0,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        }
        await ceilings.influx_ceiling(bench)
        await ceilings.broker_ceiling(bench)
        for collectors in (1, 2):
            await ingest.ingest(bench, collectors)
        await latency.latency(bench)
        await detection.detection(bench)
        await edge.edge_cost(bench)
        await stream.stream_cost(bench)
        await backlog.backlog_drain(bench)
    finally:
        await bench.kill_all()
        await asyncio.to_thread(bench.influx.stop)
        await asyncio.to_thread(bench.broker.stop)
    return bench.results


async def run_bench(config: BenchConfig, out_dir: Path, console: Console) -> Path:
    """Run, print, and write the JSON; return its path."""
    with tempfile.TemporaryDirectory(prefix="pantau-bench-") as tmp:
        results = await run_all(Harness(config, Path(tmp), console))
    render(results, console)
    path = out_dir / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    await asyncio.to_thread(write_json, path, asdict(results))
    console.print(f"results written to {path}")
    return path
