"""`pantau bench --tiny` runs every part end to end, so the benchmark cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_pantau

pytestmark = pytest.mark.services  # the bench starts its own services and processes


def test_tiny_bench_produces_every_figure(tmp_path: Path) -> None:
    """Every section is present with plausible values and ingest loses nothing."""
    result = run_pantau(
        "bench",
        "--tiny",
        "--out",
        str(tmp_path),
        timeout_s=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (path,) = tmp_path.glob("*.json")
    data = json.loads(path.read_text())
    ceilings = data["ceilings"]
    assert ceilings["influx_write_1_writer_pts_s"] > 0
    assert ceilings["influx_write_2_writer_pts_s"] > 0
    assert ceilings["broker_qos1_msgs_s"] > 0
    for key in ("1_collector", "2_collector"):
        ingest = data["ingest"][key]
        assert ingest["stored"] == ingest["published"] > 0
        assert (ingest["lost"], ingest["dup"]) == (0, 0)
        assert ingest["readings_s"] > 0
    assert data["latency"]["markers"] > 0
    assert data["latency"]["unseen_markers"] == 0
    assert 0 < data["detection"]["median_s"] <= data["detection"]["target_s"]
    assert data["edge"]["peak_rss_mb"] > 0
    assert data["backlog"]["readings"] == 4992
    assert data["backlog"]["drain_s"] > 0
    assert set(data["stream"]) == {
        "h264 320x180 25fps natural",
        "h265 320x180 25fps natural",
        "synthetic 640x360 10fps",
        "synthetic 1280x720 10fps",
    }
    for row in data["stream"].values():
        assert row["cpu_s_per_probe"] > 0 and row["cameras_per_core_5min"] > 0
    for codec in ("h264", "h265"):
        assert data["stream"][f"{codec} 320x180 25fps natural"]["demux_cpu_s"] > 0
    fleet = data["fleet"]
    assert fleet["raw"]["rollup_equals_raw_7d"] is True
    # 2 days from a whole hour to now - 30 s, every 10 s, 6 cameras
    assert 6 * 2 * 8640 <= fleet["raw"]["points"] <= 6 * (2 * 8640 + 360)
    assert set(fleet["raw"]["api_30d_s"]) == {"camera", "site", "district", "csv"}
    assert fleet["large"]["hour_points"] > 0 and fleet["upkeep"]["pct_of_core"] > 0
    assert fleet["disk"]["autogen_mb_per_camera_year"] > 0
    assert fleet["large"]["now"]["cameras_listed"] == 20 and fleet["large"]["now"]["cameras_api_s"]
    assert "pantau bench" in result.stdout
