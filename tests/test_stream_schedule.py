"""Stream probes at a site run under its CPU budget: never more decodes at once than allowed,
spread over the interval, and every camera's verdict reaches InfluxDB."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from pathlib import Path

from cloud.influx import InfluxClient, InfluxSettings, series_rows
from devtools.localsvc import InfluxProcess, MosquittoProcess
from simulators.scenario import Scenario, SimSite
from simulators.video import Picture
from tests.helpers import BUILD_AN_AGENT, running_simulation

INTERVAL_S = 8.0


async def test_stream_probes_keep_to_the_budget_and_reach_influxdb(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """4 cameras, one decode at a time, every 8 s each: at most 1 stream plays at once, each
    camera is probed twice in ~18 s, first probes 2 s apart, and the frozen one is degraded."""
    scenario = Scenario(
        seed=1,
        probe_interval=1.0,
        probe_timeout=0.5,
        keepalive=2,
        stream_interval=INTERVAL_S,
        stream_sample=0.5,
        stream_concurrency=1,
        sites=[SimSite(id="s1", district="d1", lat=-3.8, lon=102.2, cameras=4)],
    )
    async with running_simulation(
        scenario,
        mqtt_url=broker.url,
        influx_url=influxd.url,
        database=database,
        workdir=tmp_path / "sim",
    ) as sim:
        cameras = sim.sites["s1"].cameras
        cameras["c4"].set_picture(Picture.FROZEN)
        most = 0
        deadline = time.monotonic() + 2 * INTERVAL_S + 2
        while time.monotonic() < deadline:
            most = max(most, sum(c.playing for c in cameras.values()))
            await asyncio.sleep(0.02)
        assert most == 1  # probes ran, one at a time

    async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
        probes = series_rows(
            await influx.query(
                'SELECT "fault", "fps", "codec", "detail" FROM "stream" GROUP BY "camera"'
            )
        )
        states = series_rows(
            await influx.query('SELECT last("state") AS "state" FROM "camera" GROUP BY "camera"')
        )
    by_camera: dict[str, list[dict[str, object]]] = {}
    for row in probes:
        by_camera.setdefault(str(row["camera"]), []).append(row)
    assert sorted(by_camera) == ["c1", "c2", "c3", "c4"]
    assert all(len(rows) >= 2 for rows in by_camera.values()), by_camera
    assert all(r["codec"] == "h264" for rows in by_camera.values() for r in rows)
    firsts = sorted(int(str(rows[0]["time"])) for rows in by_camera.values())
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(firsts)]
    assert all(gap >= INTERVAL_S / 4 * 0.8 for gap in gaps), gaps  # spread, not a burst
    assert by_camera["c4"][-1]["fault"] == "frozen"
    assert {r["camera"]: r["state"] for r in states} == {
        "c1": "up",
        "c2": "up",
        "c3": "up",
        "c4": "degraded",
    }


def test_heavy_libraries_load_only_where_configured() -> None:
    """An agent started through the CLI, without stream probes, UPS or Modbus, never imports
    PyAV, NumPy, pysnmp, pymodbus or cryptography (MBs each on a small cabinet computer)."""
    code = (
        "import sys\n"
        "import pantau.cli\n"
        + BUILD_AN_AGENT
        + "heavy = ('av', 'numpy', 'pysnmp', 'pymodbus', 'cryptography')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
