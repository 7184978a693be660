"""The results table beside the targets, and the JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.harness import Results

TARGETS = {
    "ingest": ("1 collector readings/s", 60_000),
    "ratio": ("ratio to InfluxDB ceiling", 0.75),
    "p99": ("latency p99 s", 2.0),
    "edge_cpu": ("edge CPU % of a core", 2.0),
    "edge_rss": ("edge peak RSS MB", 60.0),
    "backlog": ("24 h backlog drain s", 60.0),
}


def render(results: Results, console: Console) -> None:
    """The results beside ceilings and targets."""
    table = Table(title="pantau bench")
    for column in ("figure", "measured", "ceiling / target"):
        table.add_column(column)
    c = results.ceilings
    if c:
        _ceilings(table, c)
    for key, row in results.ingest.items():
        table.add_row(
            f"ingest, {key.replace('_', ' ')} (readings/s)",
            f"{row['readings_s']:,}",
            "≥ 60,000" if key.startswith("1") else "",
        )
        table.add_row("  ratio to InfluxDB ceiling", f"{row['ratio_to_influx_ceiling']}", "≥ 0.75")
        table.add_row("  lost / dup", f"{row['lost']} / {row['dup']}", "0 / 0")
        table.add_row(
            "  collector CPU % / peak RSS MB",
            f"{row['collector_cpu_pct_of_core']} / {row['collector_peak_rss_mb']}",
            "",
        )
    if results.latency:
        table.add_row(
            f"latency p50 / p99 (s) at {results.latency['load_readings_s']:,}/s",
            f"{results.latency['p50_s']} / {results.latency['p99_s']}",
            "p99 ≤ 2",
        )
    if results.detection:
        d = results.detection
        table.add_row("offline detection median (s)", f"{d['median_s']}", f"≤ {d['target_s']}")
    if results.edge:
        e = results.edge
        table.add_row(
            f"edge, {e['cameras']} cameras: CPU % of a core", f"{e['cpu_pct_of_core']}", "≤ 2"
        )
        table.add_row("edge peak RSS (MB)", f"{e['peak_rss_mb']}", "≤ 60")
    for label, row in results.stream.items():
        measured = f"{row['cpu_s_per_probe']} / {row['cameras_per_core_5min']:,}"
        target = ""
        if "demux_cpu_s" in row:
            measured += f" (demux {row['demux_cpu_s']}, x{row['ratio_to_demux']})"
            target = "≤ 3x demux"
        table.add_row(
            f"stream probe {label}, {row['sample_s']:g}s: CPU s / cameras per core (5 min)",
            measured,
            target,
        )
    if results.fleet:
        _fleet(table, results.fleet)
    if results.backlog:
        b = results.backlog
        table.add_row(f"backlog of {b['readings']:,} drained (s)", f"{b['drain_s']}", "≤ 60")
    console.print(table)


def _fleet(table: Table, fleet: dict[str, Any]) -> None:
    raw, large = fleet.get("raw", {}), fleet.get("large", {})
    for label, row in (("raw", raw), ("rollups", large)):
        if not row:
            continue
        size = f"{row['cameras']:,} cameras x {row['days']} d ({label})"
        slowest = max(row["panels_s"].values())
        table.add_row(f"fleet {size}: slowest Command Center panel s", f"{slowest}", "≤ 0.5")
        table.add_row(
            f"fleet {size}: influxd CPU-s per Command Center refresh",
            f"{row['refresh_influx_cpu_s']}",
            "≤ 1",
        )
        table.add_row(
            f"fleet {size}: /api/availability 30 d by camera s",
            f"{row['api_30d_s']['camera']}",
            "≤ 0.5",
        )
        if now := row.get("now"):
            table.add_row(f"fleet {size}: /api/cameras s", f"{now['cameras_api_s']}", "≤ 0.1")
    if raw:
        table.add_row("  same over raw probes only s", f"{raw['availability_30d_raw_s']}", "")
        table.add_row("  rollups = raw (7 d, every grouping)", f"{raw['rollup_equals_raw_7d']}", "")
    if large:
        table.add_row(
            f"fleet report 365 d, {large['cameras']:,} cameras s",
            f"{large['report_365d_s']}",
            "≤ 2",
        )
    if upkeep := fleet.get("upkeep"):
        table.add_row("rollup upkeep, % of a core", f"{upkeep['pct_of_core']}", "≤ 5")
    if disk := fleet.get("disk"):
        table.add_row(
            "hourly rollups MB per camera-year",
            f"{disk.get('rollup_1h_mb_per_camera_year')}",
            "≤ 1",
        )
        table.add_row("raw MB per camera-year", f"{disk.get('autogen_mb_per_camera_year')}", "")
        table.add_row(
            "steady state MB per camera (retention)",
            f"{disk.get('steady_state_mb_per_camera')}",
            "",
        )


def _ceilings(table: Table, c: dict[str, float]) -> None:
    table.add_row(
        "InfluxDB /write, 1 writer (pts/s)",
        f"{c.get('influx_write_1_writer_pts_s', 0):,}",
        "ceiling",
    )
    table.add_row(
        "InfluxDB /write, 2 writers (pts/s)",
        f"{c.get('influx_write_2_writer_pts_s', 0):,}",
        "ceiling",
    )
    table.add_row(
        "mosquitto QoS 1, paho pair (msg/s)", f"{c.get('broker_qos1_msgs_s', 0):,}", "ceiling"
    )


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
