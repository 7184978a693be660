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

from bench import backlog, ceilings, detection, edge, fleet, ingest, latency, stream
from bench.harness import BenchConfig, Harness, Results
from bench.report import render, write_json

__all__ = ["PARTS", "BenchConfig", "Results", "run_bench"]


PARTS = ("ceilings", "ingest", "latency", "detection", "edge", "stream", "backlog", "fleet")


async def run_all(bench: Harness, parts: frozenset[str] = frozenset(PARTS)) -> Results:
    """Run every figure of ``parts`` in order on the harness's own services."""
    await asyncio.to_thread(bench.broker.start)
    await asyncio.to_thread(bench.influx.start)
    try:
        bench.results.machine = {
            "cpus": os.cpu_count() or 0,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        }
        if "ceilings" in parts or "ingest" in parts:
            await ceilings.influx_ceiling(bench)
            await ceilings.broker_ceiling(bench)
        if "ingest" in parts:
            for collectors in (1, 2):
                await ingest.ingest(bench, collectors)
        if "latency" in parts:
            await latency.latency(bench)
        if "detection" in parts:
            await detection.detection(bench)
        if "edge" in parts:
            await edge.edge_cost(bench)
        if "stream" in parts:
            await stream.real_stream_cost(bench)
            await stream.synthetic_stream_cost(bench)
        if "backlog" in parts:
            await backlog.backlog_drain(bench)
        if "fleet" in parts:
            await fleet.fleet_history(bench)
    finally:
        await bench.kill_all()
        await asyncio.to_thread(bench.influx.stop)
        await asyncio.to_thread(bench.broker.stop)
    return bench.results


async def run_bench(
    config: BenchConfig,
    out_dir: Path,
    console: Console,
    parts: frozenset[str] = frozenset(PARTS),
) -> Path:
    """Run ``parts``, print, and write the JSON; return its path."""
    with tempfile.TemporaryDirectory(prefix="pantau-bench-") as tmp:
        results = await run_all(Harness(config, Path(tmp), console), parts)
    render(results, console)
    path = out_dir / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    await asyncio.to_thread(write_json, path, asdict(results))
    console.print(f"results written to {path}")
    return path
