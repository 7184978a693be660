"""Only a camera that does not answer at all is "hung" for the automatic policy: one that
refuses our credentials answers, and a power-cycle cannot fix a wrong password."""

from __future__ import annotations

import time
from typing import Any

from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.remediation.observe import hung_probes
from cloud.schema import CAMERA, SWITCH_PORT
from devtools.localsvc import InfluxProcess


async def test_only_silent_probes_count_as_hung(influxd: InfluxProcess, database: str) -> None:
    """Three probes each: c1 timed out (hung, 3), c2 refused our credentials (not hung, 0),
    both on ports that are up and powered."""
    now = time.time_ns()
    lines = []
    for camera, cause in (("c1", "timeout"), ("c2", "auth")):
        lines.append(
            f"{SWITCH_PORT},site=s1,camera={camera},switch=sw1 port=1i,powered=1i,"
            f"switch_ok=1i {now - 10**9}"
        )
        for i in range(3):
            ts = now - (3 - i) * 5 * 10**9
            lines.append(f'{CAMERA},site=s1,district=d1,camera={camera} up=0i,cause="{cause}" {ts}')
    async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
        await influx.write("\n".join(lines).encode())

        async def query(q: str) -> list[dict[str, Any]]:
            return series_rows(await influx.query(q))

        hung = await hung_probes(query, now, 3)
    assert hung == {("s1", "d1", "c1"): 3, ("s1", "d1", "c2"): 0}
