"""One site: its cameras over time, probe latency, cabinet sensors, uplink, agent online."""

from __future__ import annotations

from grafanalib import core as g

from cloud.schema import AGENT, CAMERA, GAP, REMEDIATION, SENSOR, STREAM, SWITCH_PORT
from cloud.schema import SITE as SITE_STATUS
from dashboards.panels import (
    dashboard,
    pos,
    q,
    query_variable,
    state_timeline,
    table,
    timeseries,
)

UID = "pantau-site"
SITE = '"site" =~ /^$site$/'

CAMERA_STATES = (
    f'SELECT last("up") FROM "{CAMERA}" WHERE {SITE} AND $timeFilter '
    'GROUP BY time($__interval), "camera" fill(none)'
)
PROBE_LATENCY = (
    f'SELECT mean("latency_ms") FROM "{CAMERA}" WHERE {SITE} AND $timeFilter '
    'GROUP BY time($__interval), "camera" fill(none)'
)
CABINET = (
    f'SELECT mean("value") FROM "{SENSOR}" WHERE {SITE} AND '
    '"kind" =~ /^(temperature|humidity|mains_voltage|ups_battery_pct)$/ AND $timeFilter '
    'GROUP BY time($__interval), "sensor", "kind" fill(none)'
)
UPLINK_RTT = (
    f'SELECT mean("value") AS "uplink_rtt_ms" FROM "{SENSOR}" WHERE {SITE} AND '
    "\"kind\" = 'uplink_rtt_ms' AND $timeFilter GROUP BY time($__interval) fill(none)"
)
BACKLOG = (
    f'SELECT max("backlog") AS "queued readings" FROM "{AGENT}" WHERE {SITE} AND $timeFilter '
    "GROUP BY time($__interval) fill(none)"
)
AGENT_ONLINE = (
    f'SELECT last("online") AS "agent online" FROM "{SITE_STATUS}" WHERE {SITE} AND $timeFilter '
    "GROUP BY time($__interval) fill(previous)"
)
PICTURE = (
    f'SELECT last("fault") AS "picture" FROM "{STREAM}" WHERE {SITE} AND $timeFilter '
    'GROUP BY time($__interval), "camera" fill(previous)'
)
UPS = (
    f'SELECT last("value") FROM "{SENSOR}" WHERE {SITE} AND '
    '"kind" =~ /^(ups_on_battery|ups_battery_pct|ups_minutes_remaining)$/ AND $timeFilter '
    'GROUP BY time($__interval), "kind" fill(previous)'
)
GAPS = (
    f'SELECT "count" AS "readings lost", "start_ts" / 1000000 AS "from", '
    f'"end_ts" / 1000000 AS "to" FROM "{GAP}" WHERE {SITE} AND $timeFilter'
)
QUEUE_ERRORS = (
    f'SELECT "queue_error" FROM "{AGENT}" WHERE {SITE} AND "queue_error" =~ /.+/ AND $timeFilter'
)
PORTS = (
    f'SELECT last("port") AS "link", last("powered") AS "PoE" FROM "{SWITCH_PORT}" '
    f'WHERE {SITE} AND $timeFilter GROUP BY time($__interval), "camera" fill(previous)'
)
PORTS_NOW = (
    f'SELECT last("port") AS "link", "powered", "poe", "poe_w", "errors", "switch_ok", "error" '
    f'FROM "{SWITCH_PORT}" WHERE {SITE} AND $timeFilter GROUP BY "camera", "switch", "ifindex"'
)
ACTIONS = (
    f'SELECT "action", "trigger", "result", "up_after", "recovery_s", "reason" '
    f'FROM "{REMEDIATION}" WHERE {SITE} AND $timeFilter GROUP BY "camera"'
)
SITE_VALUES = f'SHOW TAG VALUES FROM "{SITE_STATUS}" WITH KEY = "site"'


def build() -> g.Dashboard:
    """The Site dashboard (variable ``site``)."""
    panels: list[g.Panel] = [
        state_timeline("Cameras up/down", CAMERA_STATES, pos(0, 0, 12, 9)),
        state_timeline(
            "Switch ports (link, PoE)",
            PORTS,
            pos(12, 0, 12, 9),
            description="beside each camera its port: link and PoE down = down: link (cable, "
            "power); both up while the camera is down = hung",
        ),
        state_timeline(
            "Agent online",
            AGENT_ONLINE,
            pos(0, 9, 24, 4),
            description="birth/Last Will of the site's agent",
        ),
        timeseries("Probe latency", [q(PROBE_LATENCY)], pos(0, 13, 12, 8), unit="ms"),
        timeseries("Cabinet sensors", [q(CABINET)], pos(12, 13, 12, 8)),
        timeseries("Uplink round trip", [q(UPLINK_RTT)], pos(0, 21, 12, 8), unit="ms"),
        timeseries(
            "Store-and-forward backlog",
            [q(BACKLOG)],
            pos(12, 21, 12, 8),
            description="readings waiting in the agent's disk queue (uplink trouble)",
        ),
        timeseries(
            "UPS (on battery, charge %, minutes left)",
            [q(UPS)],
            pos(0, 37, 24, 8),
            description="ups_on_battery is 1 while the cabinet runs on battery",
        ),
        table(
            "Readings lost at the edge (gaps)",
            GAPS,
            pos(0, 45, 12, 8),
            description="spans whose readings the agent had to drop (queue full, too old, disk "
            "trouble): unknown in availability, never up or down; times are epoch ms",
        ),
        table(
            "Disk queue trouble",
            QUEUE_ERRORS,
            pos(12, 45, 12, 8),
            description="the agent's queue could not write (disk full, file lost or corrupt); "
            "readings were held in memory meanwhile",
        ),
        state_timeline(
            "Picture checks (stream probe)",
            PICTURE,
            pos(0, 29, 24, 8),
            description="none = healthy picture; frozen, dark, blurred (covered / out of focus), "
            "no_video or open_failed make an answering camera degraded",
        ),
        table(
            "Ports now",
            PORTS_NOW,
            pos(0, 53, 12, 8),
            description="each camera's port: link 1/0, PoE state and watts, error counters; "
            "switch_ok 0: the switch did not answer",
        ),
        table(
            "Remediation (power-cycle, reboot)",
            ACTIONS,
            pos(12, 53, 12, 8),
            description="each command the agent answered: trigger (policy or user:NAME), result, "
            "camera up after, seconds to recovery",
        ),
    ]
    return dashboard(
        "Pantau — Site", UID, panels, variables=[query_variable("site", SITE_VALUES)], tags=["site"]
    )
