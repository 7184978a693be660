"""One camera: state over time, why it failed, how fast it answers."""

from __future__ import annotations

from grafanalib import core as g

from cloud.schema import CAMERA, DEVICE, RECORD, RECORD_GAP, SITE
from dashboards.panels import (
    DATASOURCE,
    dashboard,
    pos,
    q,
    query_variable,
    state_timeline,
    table,
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
# Recording (the device checks, every few minutes, each judging the last hour).
RECORDED = (
    'SELECT 100 * mean("record_ratio") AS "recorded %" '
    f'FROM "{RECORD}" WHERE {WHERE} AND $timeFilter GROUP BY time($__interval), "recorder" '
    "fill(none)"
)
RECORD_GAPS = (
    'SELECT "start_ts" / 1000000 AS "from", "end_ts" / 1000000 AS "to", "record_gap_s" '
    f'FROM "{RECORD_GAP}" WHERE {WHERE} AND $timeFilter GROUP BY "recorder"'
)
RETENTION = (
    'SELECT last("retention_days") AS "days kept", "retention_goal_days" AS "goal (days)", '
    f'"record_error" FROM "{RECORD}" WHERE {WHERE} AND $timeFilter GROUP BY "recorder"'
)
IDENTITY = (
    'SELECT last("serial") AS "serial", "manufacturer", "model", "firmware", "clock_offset_ms" '
    f'FROM "{DEVICE}" WHERE {WHERE} AND $timeFilter'
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
        timeseries(
            "Recorded (% of the last hour, per check)",
            [q(RECORDED)],
            pos(0, 16, 12, 8),
            unit="percent",
            description="what the recorder kept of each check's window (an hour by default)",
        ),
        table(
            "Recording gaps",
            RECORD_GAPS,
            pos(12, 16, 12, 8),
            description="spans the recorder kept nothing (10 s or longer); a gap still "
            "lasting ends at its latest check",
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": "^(from|to)$"},
                    "properties": [{"id": "unit", "value": "dateTimeAsIso"}],
                },
            ],
        ),
        table(
            "Retention",
            RETENTION,
            pos(0, 24, 12, 5),
            description="days of recording the recorder still keeps, against this camera's goal",
        ),
        table(
            "Identity (ONVIF)",
            IDENTITY,
            pos(12, 24, 12, 5),
            description="the latest identity the camera gave and its clock's offset",
        ),
    ]
    return dashboard(
        "Pantau — Camera",
        UID,
        panels,
        variables=[query_variable("site", SITE_VALUES), query_variable("camera", CAMERA_VALUES)],
        tags=["camera"],
    )
