"""The Command Center: the wall. What is down now, which sites we lost, availability."""

from __future__ import annotations

from grafanalib import core as g

from cloud.schema import (
    CAMERA,
    COLLECTOR,
    DEVICE,
    DISTRICT_1H,
    RECORD,
    RP_HOURLY,
    SENSOR,
    SERVICE,
    SITE,
)
from dashboards.panels import (
    AMBER,
    GREEN,
    RED,
    bar_gauge,
    big_stat,
    dashboard,
    fresh_variable,
    geomap,
    pos,
    q,
    table,
    timeseries,
)

UID = "pantau-command-center"
HIDE_TIME = {
    "matcher": {"id": "byName", "options": "Time"},
    "properties": [{"id": "custom.hidden", "value": True}],
}

LATEST_CAMERA = (
    f'SELECT last("up") AS "up", "cause", "since" FROM "{CAMERA}" '
    'WHERE time > now() - $fresh GROUP BY "site", "district", "camera"'
)
LATEST_SITE = (
    f'SELECT last("online") AS "online", "lat", "lon" FROM "{SITE}" WHERE time > now() - 35d '
    'GROUP BY "site"'
)  # agents publish their status again every few hours (publish.birth_refresh_s)

# The outer query repeats the inner one's time bound: without it InfluxDB 1.x reads every shard
# for the subquery (measured: 0.43 s instead of 0.03 s at 100 cameras x 30 days).
FRESH_BOUND = "time > now() - $fresh"
CAMERAS_ONLINE = f'SELECT sum("up") AS "online" FROM ({LATEST_CAMERA}) WHERE {FRESH_BOUND}'
CAMERAS_ONLINE_PCT = (
    'SELECT 100 * sum("up") / count("up") AS "online_pct" '
    f"FROM ({LATEST_CAMERA}) WHERE {FRESH_BOUND}"
)
SITES_OFFLINE = (
    f'SELECT count("online") - sum("online") AS "offline" FROM ({LATEST_SITE}) '
    "WHERE time > now() - 35d"
)
CAMERAS_DOWN = (
    'SELECT "cause", "since" / 1000000 AS "down_since" '
    f'FROM ({LATEST_CAMERA}) WHERE "up" = 0 AND {FRESH_BOUND} GROUP BY "site", "district", "camera"'
)

LATEST_STATE = (
    f'SELECT last("state") AS "state", "picture" FROM "{CAMERA}" '
    'WHERE time > now() - $fresh GROUP BY "site", "district", "camera"'
)
CAMERAS_DEGRADED = (
    f'SELECT "picture" FROM ({LATEST_STATE}) WHERE "state" = \'degraded\' AND {FRESH_BOUND} '
    'GROUP BY "site", "district", "camera"'
)

SITES_ON_BATTERY = (
    f'SELECT "on_battery" FROM (SELECT last("value") AS "on_battery" FROM "{SENSOR}" '
    'WHERE "kind" = \'ups_on_battery\' AND time > now() - $fresh GROUP BY "site") '
    f'WHERE "on_battery" = 1 AND {FRESH_BOUND} GROUP BY "site"'
)


# Long windows read the district hours that the rollup worker keeps (the current hour is
# refreshed every 30 s), so their cost grows with districts and hours, never with probes.
DISTRICT_HOURS = f'"{RP_HOURLY}"."{DISTRICT_1H}"'


def availability(window: str) -> str:
    """Fleet availability (% of up probes) over the hours of the last ``window``."""
    return (
        'SELECT 100 * sum("up") / sum("probes") AS "availability" '
        f"FROM {DISTRICT_HOURS} WHERE time > now() - {window}"
    )


AVAILABILITY_PER_DISTRICT = (
    'SELECT 100 * sum("up") / sum("probes") AS "availability" '
    f"FROM {DISTRICT_HOURS} WHERE time > ${{__from}}ms - 1h AND time <= ${{__to}}ms "
    'GROUP BY "district"'
)  # the hours that overlap the dashboard's range
SITES_MAP = LATEST_SITE

# Recording: the agent checks recorders every few minutes (device_checks.interval_s, 300 s), so
# "now" for recording is the last three checks.
RECORD_NOW = "time > now() - 15m"
LATEST_RECORD = (
    'SELECT last("record_ratio") AS "record_ratio", "record_gap_s", "retention_days", '
    f'"retention_goal_days" FROM "{RECORD}" WHERE {RECORD_NOW} '
    'GROUP BY "site", "district", "camera", "recorder"'
)
RECORDED_24H = (
    'SELECT 100 * sum("recorded_s") / sum("window_s") AS "recorded" '
    f'FROM "{RECORD}" WHERE time > now() - 24h'
)  # the checks' windows overlap: a mean over them, to the check (the API's figure is exact)
RECORDING_GAPS_NOW = (
    'SELECT "record_gap_s", 100 * "record_ratio" AS "recorded %" '
    f'FROM ({LATEST_RECORD}) WHERE "record_gap_s" > 0 AND {RECORD_NOW} '
    'GROUP BY "site", "district", "camera", "recorder"'
)
RETENTION_BELOW_NOW = (
    'SELECT "retention_days", "retention_goal_days" '
    f'FROM ({LATEST_RECORD}) WHERE "retention_days" < "retention_goal_days" AND {RECORD_NOW} '
    'GROUP BY "site", "district", "camera", "recorder"'
)
CAMERAS_REPLACED = (
    'SELECT "serials" FROM (SELECT count(distinct("serial")) AS "serials" '
    f'FROM "{DEVICE}" WHERE time > now() - 7d GROUP BY "site", "district", "camera") '
    'WHERE "serials" > 1 AND time > now() - 7d GROUP BY "site", "district", "camera"'
)
SERVICES_FAILING = (
    'SELECT "ok", "stage" FROM (SELECT last("ok") AS "ok", "stage" '
    f'FROM "{SERVICE}" WHERE time > now() - $fresh GROUP BY "service", "site") '
    'WHERE "ok" = 0 AND time > now() - $fresh GROUP BY "service", "site"'
)
CERTIFICATES_EXPIRING = (
    'SELECT "days" FROM (SELECT min("cert_days") AS "days" '
    f'FROM "{SERVICE}" WHERE time > now() - $fresh GROUP BY "service") '
    'WHERE "days" < 14 AND time > now() - $fresh GROUP BY "service"'
)
INGEST_RATE = (
    f'SELECT non_negative_derivative(last("written"), 1s) AS "readings/s" FROM "{COLLECTOR}" '
    'WHERE $timeFilter GROUP BY time($__interval), "instance" fill(none)'
)


def build() -> g.Dashboard:
    """The Command Center dashboard."""
    availability_steps = ((None, RED), (95.0, AMBER), (99.0, GREEN))
    panels: list[g.Panel] = [
        big_stat(
            "Cameras online",
            CAMERAS_ONLINE,
            pos(0, 0, 4, 5),
            description="cameras whose latest probe (within $fresh) is up",
        ),
        big_stat(
            "Cameras online %",
            CAMERAS_ONLINE_PCT,
            pos(4, 0, 4, 5),
            unit="percent",
            decimals=1,
            steps=availability_steps,
            description="of the cameras probed within $fresh",
        ),
        big_stat(
            "Sites offline",
            SITES_OFFLINE,
            pos(8, 0, 4, 5),
            steps=((None, GREEN), (1.0, RED)),
            description="sites whose agent is unreachable (Last Will): their cameras are "
            "unknown, not down",
        ),
        big_stat(
            "Availability 24 h",
            availability("24h"),
            pos(12, 0, 4, 5),
            unit="percent",
            decimals=2,
            steps=availability_steps,
        ),
        big_stat(
            "Availability 7 d",
            availability("7d"),
            pos(16, 0, 4, 5),
            unit="percent",
            decimals=2,
            steps=availability_steps,
        ),
        big_stat(
            "Availability 30 d",
            availability("30d"),
            pos(20, 0, 4, 5),
            unit="percent",
            decimals=2,
            steps=availability_steps,
        ),
        table(
            "Cameras down now",
            CAMERAS_DOWN,
            pos(0, 5, 12, 12),
            description="latest probe failed; cause from the failing stage",
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "down_since"},
                    "properties": [{"id": "unit", "value": "dateTimeAsIso"}],
                },
                HIDE_TIME,
            ],
        ),
        geomap("Sites", SITES_MAP, pos(12, 5, 12, 12)),
        table(
            "Cameras degraded now (picture faults)",
            CAMERAS_DEGRADED,
            pos(0, 17, 12, 8),
            description="answering, but the stream probe found the picture frozen, dark, "
            "blurred/covered or without video",
            overrides=[HIDE_TIME],
        ),
        table(
            "Sites on battery now (mains lost)",
            SITES_ON_BATTERY,
            pos(12, 17, 12, 8),
            description="the UPS (SNMP UPS-MIB) runs the cabinet from its battery: cameras there "
            "will go down when it is empty",
            overrides=[HIDE_TIME],
        ),
        bar_gauge("Availability per district", AVAILABILITY_PER_DISTRICT, pos(0, 25, 12, 8)),
        timeseries(
            "Readings ingested per second", [q(INGEST_RATE)], pos(12, 25, 12, 8), unit="short"
        ),
        big_stat(
            "Recorded 24 h",
            RECORDED_24H,
            pos(0, 33, 4, 8),
            unit="percent",
            decimals=2,
            steps=availability_steps,
            description="share of the checked seconds the recorders kept (a camera can answer "
            "and not be recorded)",
        ),
        table(
            "Recording gaps now",
            RECORDING_GAPS_NOW,
            pos(4, 33, 7, 8),
            description="the latest recorder check (15 min) found seconds not recorded in its hour",
            overrides=[HIDE_TIME],
        ),
        table(
            "Retention below goal now",
            RETENTION_BELOW_NOW,
            pos(11, 33, 7, 8),
            description="the oldest recording kept is younger than the camera's goal (days)",
            overrides=[HIDE_TIME],
        ),
        table(
            "Cameras replaced (7 d)",
            CAMERAS_REPLACED,
            pos(18, 33, 6, 8),
            description="more than one serial number answered at this camera's address",
            overrides=[HIDE_TIME],
        ),
        table(
            "E-government services failing now (service, vantage)",
            SERVICES_FAILING,
            pos(0, 41, 16, 7),
            description="each vantage's latest probe that failed and the step; whether a "
            "service is down or one district lost its path is the problems' verdict (Services "
            "dashboard, docs/services.md)",
            overrides=[HIDE_TIME],
        ),
        table(
            "Certificates expiring within 14 days",
            CERTIFICATES_EXPIRING,
            pos(16, 41, 8, 7),
            description="days to expiry, the soonest any vantage saw",
            overrides=[HIDE_TIME],
        ),
    ]
    return dashboard(
        "Pantau — Command Center",
        UID,
        panels,
        refresh="10s",
        time_from="now-24h",
        tags=["wall"],
        variables=[fresh_variable()],
    )
