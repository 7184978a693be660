"""One camera: state over time, why it failed, how fast it answers."""

from __future__ import annotations

from grafanalib import core as g

from cloud.schema import CAMERA, SITE
from dashboards.panels import (
    DATASOURCE,
    dashboard,
    pos,
    q,
    query_variable,
    state_timeline,
    timeseries,
)

UID = "pantau-camera"
WHERE = '"site" =~ /^$site$/ AND "camera" =~ /^$camera$/'

STATE = (
    f'SELECT last("up") FROM "{CAMERA}" WHERE {WHERE} AND $timeFilter '
    "GROUP BY time($__interval) fill(none)"
)
CAUSES = (
    f'SELECT count("up") AS "failed probes" FROM "{CAMERA}" WHERE {WHERE} AND "up" = 0 '
    'AND $timeFilter GROUP BY "cause"'
)
LATENCY = (
    'SELECT mean("tcp_ms") AS "tcp", mean("rtsp_ms") AS "rtsp", mean("snapshot_ms") AS "snapshot" '
    f'FROM "{CAMERA}" WHERE {WHERE} AND $timeFilter GROUP BY time($__interval) fill(none)'
)
SITE_VALUES = f'SHOW TAG VALUES FROM "{SITE}" WITH KEY = "site"'
CAMERA_VALUES = f'SHOW TAG VALUES FROM "{CAMERA}" WITH KEY = "camera" WHERE "site" =~ /^$site$/'


def build() -> g.Dashboard:
    """The Camera dashboard (variables ``site`` and ``camera``)."""
    panels: list[g.Panel] = [
        state_timeline("State", STATE, pos(0, 0, 24, 6)),
        g.PieChartv2(
            title="Causes of failure",
            dataSource=DATASOURCE,
            targets=[q(CAUSES)],
            gridPos=pos(0, 6, 8, 10),
            pieType="donut",
        ),
        timeseries("Probe stages latency", [q(LATENCY)], pos(8, 6, 16, 10), unit="ms"),
    ]
    return dashboard(
        "Pantau — Camera",
        UID,
        panels,
        variables=[query_variable("site", SITE_VALUES), query_variable("camera", CAMERA_VALUES)],
        tags=["camera"],
    )
