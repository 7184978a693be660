"""The read side's one schema: measurement, tag and field names in InfluxDB, and the rules every
reader shares: how fresh "now" is, what state a camera is in now, whether a site is online now.

The collector writes with these names (``lineproto``), and the fleet view, availability, the
problem rules, the API and the dashboards read with them (``tests/test_names.py`` finds any
measurement name spelled out elsewhere in ``cloud/`` or ``dashboards/``). The freshness rule is
``fresh_within_s``: the API's ``stale_after_s``, the problem rules' ``site.stale_after`` and the
Command Center's ``$fresh`` all default to ``FRESH_S``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pantau.core.contract import CameraReading, StreamFault

# Measurements.
CAMERA = "camera"
STREAM = "stream"
SENSOR = "sensor"
AGENT = "agent"
GAP = "gap"
SITE = "site"
COLLECTOR = "pantau_collector"
REJECTED = "pantau_rejected"
FUTURE_REJECTED = "pantau_future_rejected"  # per site: batches stamped in the future
SITE_CLOCK = "pantau_site_clock"  # sites' clock offsets, written at the collector's time
DISTRICT_MISMATCH = "pantau_district_mismatch"  # a site claimed another district than registered
# Recorders (NVRs) and device identity (docs/data-model.md).
RECORD = "record"  # per camera and recorder: recorded seconds, gaps and retention of a window
RECORD_GAP = "record_gap"  # one point per gap, stamped at its start (a longer gap overwrites)
RECORD_DISK = "record_disk"  # per recorder disk: status, capacity, free space
DEVICE = "device"  # per camera: ONVIF identity (serial, firmware) and clock offset
SWITCH_PORT = "switch_port"  # per switch port of a camera: link, PoE state and power, errors
REMEDIATION = "remediation"  # per command an agent answered: action, trigger, result, recovery
SERVICE = "service"  # per e-government service and probing site (or "cloud"): one probe

# Rollups (cloud/rollup): whole hours and days, each in its own retention policy.
RP_RAW = "autogen"  # the database's default policy: raw points, kept raw_days
RP_HOURLY = "rollup_1h"
RP_DAILY = "rollup_1d"
CAMERA_1H = "camera_1h"  # per camera and hour: probes, up, degraded (counts), interval_s
CAMERA_1D = "camera_1d"  # per camera and local day: the same, summed from hours
DISTRICT_1H = "district_1h"  # per district and hour: probes, up (the wall's long windows)
SENSOR_1H = "sensor_1h"  # per sensor and hour: min, mean, max, count
RECORD_1H = "record_1h"  # per camera, recorder and hour: expected and gap seconds, checks
ROLLUP_STATE = "rollup_state"  # the hourly watermark: every hour before it is rolled up
ROLLUP_DIRTY = "rollup_dirty"  # per site and hour (at the hour): late data marked, done

# Tags (a site, a camera and a sensor share their names with measurements).
SITE_TAG, DISTRICT_TAG, CAMERA_TAG = "site", "district", "camera"
SENSOR_TAG, KIND_TAG = "sensor", "kind"
INSTANCE_TAG, REASON_TAG = "instance", "reason"  # the collector's own measurements
RECORDER_TAG, DISK_TAG = "recorder", "disk"
SWITCH_TAG, IFINDEX_TAG = "switch", "ifindex"
SERVICE_TAG = "service"

# Fields of each measurement, as the collector and the rollup worker write them (the dashboards'
# queries and docs/data-model.md are checked against these by tests/test_names.py).
FIELDS: Mapping[str, frozenset[str]] = {
    CAMERA: frozenset(
        {
            "up", "cause", "stage", "latency_ms", "tcp_ms", "rtsp_ms", "snapshot_ms",
            "snapshot_bytes", "rtsp_status", "since", "picture", "state",
        }
    ),
    STREAM: frozenset(
        {
            "fault", "faults", "ok", "detail", "codec", "width", "height", "frames", "fps",
            "bitrate_kbps", "first_frame_ms", "luma", "sharpness", "motion", "frozen_ratio",
            "view_score", "cpu_ms",
        }
    ),
    SENSOR: frozenset({"value"}),
    AGENT: frozenset(
        {
            "backlog",
            "dropped_total",
            "oldest_age_s",
            "queue_error",
            "clock_offset_ms",
            "clock_correction_ms",
            "rejected_total",
            "services_version",
        }
    ),
    GAP: frozenset({"start_ts", "end_ts", "count"}),
    SITE: frozenset(
        {"online", "lat", "lon", "session", "seq", "probe_interval_s", "clock_ahead_s"}
    ),
    COLLECTOR: frozenset(
        {
            "received", "written", "pending_messages", "pending_points", "write_latency_ms",
            "influx_ok",
        }
    ),
    REJECTED: frozenset({"count"}),
    FUTURE_REJECTED: frozenset({"count"}),
    SITE_CLOCK: frozenset({"offset_ms"}),
    DISTRICT_MISMATCH: frozenset({"claimed", "registered"}),
    RECORD: frozenset(
        {
            "window_s", "recorded_s", "record_ratio", "record_gaps", "record_gap_s", "oldest_ts",
            "retention_days", "retention_goal_days", "record_error",
        }
    ),
    RECORD_GAP: frozenset({"start_ts", "end_ts", "record_gap_s"}),
    RECORD_DISK: frozenset({"status", "detail", "ok", "capacity_mb", "free_mb"}),
    DEVICE: frozenset(
        {
            "ok", "error", "manufacturer", "model", "firmware", "serial", "hardware",
            "clock_offset_ms", "services", "events", "events_ok", "events_error", "events_held",
            "rebooted_ns",
        }
    ),
    SWITCH_PORT: frozenset({"port", "poe", "powered", "poe_w", "errors", "switch_ok", "error"}),
    REMEDIATION: frozenset(
        {
            "action", "trigger", "result", "reason", "detail", "nonce", "problem", "up_after",
            "recovery_s", "ok",
        }
    ),
    SERVICE: frozenset(
        {
            "ok", "stage", "detail", "status", "dns_ms", "connect_ms", "tls_ms", "ttfb_ms",
            "total_ms", "cert_days", "tls_version", "redirects", "body_bytes",
        }
    ),
    CAMERA_1H: frozenset({"probes", "up", "degraded", "interval_s"}),
    CAMERA_1D: frozenset({"probes", "up", "degraded", "interval_s"}),
    DISTRICT_1H: frozenset({"probes", "up", "degraded"}),
    SENSOR_1H: frozenset({"min", "mean", "max", "count"}),
    RECORD_1H: frozenset({"expected_s", "gap_s", "checks", "met"}),
    ROLLUP_STATE: frozenset({"hours_done", "day_offset_s"}),
    ROLLUP_DIRTY: frozenset({"marked", "done"}),
}  # fmt: skip

# How fresh "now" is. A camera's latest probe, a site's latest agent report, counts as "now"
# while it is younger than this; older, the camera is unknown (the API, the wall) and the site
# is out of contact (problems). Three probe periods let two probes go missing; the floor rides
# out an uplink blip and the agent's reconnect, so the wall does not flicker to unknown and no
# "site offline" problem opens for a few seconds of silence.
DEFAULT_PROBE_INTERVAL_S = 10.0  # the agents' default; assumed for a site whose birth has none
FRESH_PROBE_PERIODS = 3
FRESH_FLOOR_S = 90.0


def fresh_within_s(probe_interval_s: float = DEFAULT_PROBE_INTERVAL_S) -> float:
    """How young a measurement must be to count as "now" for sites probing at this period."""
    return max(FRESH_FLOOR_S, FRESH_PROBE_PERIODS * probe_interval_s)


FRESH_S = fresh_within_s()  # 90 s: the API, the problem rules and the Command Center's $fresh

# The latest camera point with what "state now" needs (a selector beside plain fields returns
# those fields from the selected point).
LAST_CAMERA_FIELDS = 'last("up") AS "up", "cause", "stage", "since", "state", "picture"'
LAST_SITE_FIELDS = 'last("online") AS "online", "lat", "lon", "seq"'


class Status(enum.StrEnum):
    """A camera's state now: ``unknown`` when no fresh measurement exists (site unreachable)."""

    UP = "up"
    DEGRADED = "degraded"  # answering, but the picture is frozen, dark, blurred or absent
    DOWN = "down"
    UNKNOWN = "unknown"


def camera_state(reading: CameraReading) -> Status:
    """The state a probe shows, stored with it: down (not answering), degraded (answering, the
    latest stream probe found the picture at fault) or up."""
    if not reading.up:
        return Status.DOWN
    if reading.picture is not None and reading.picture is not StreamFault.NONE:
        return Status.DEGRADED
    return Status.UP


def camera_status_now(row: Mapping[str, Any], *, stale_before_ns: int) -> Status:
    """A camera's state now from its latest point (``LAST_CAMERA_FIELDS``): unknown when that
    point is older than ``stale_before_ns``."""
    if int(row["time"]) < stale_before_ns:
        return Status.UNKNOWN
    if row["up"] != 1:
        return Status.DOWN
    if row.get("state") == Status.DEGRADED:
        return Status.DEGRADED
    return Status.UP


@dataclass(frozen=True, slots=True)
class SiteSessions:
    """A site's connection numbers (``seq``, contract minor 1): its latest birth's (None if
    that birth has none) and the highest of its wills' (``site_sessions_query``)."""

    birth_seq: int | None = None
    will_seq: int | None = None


def site_sessions_query(where: str) -> str:
    """The query of ``SiteSessions`` (two statements, rows grouped by site) over the status
    points matching ``where`` (a time bound, perhaps with a site condition)."""
    head = f'FROM "{SITE}" WHERE {where} AND "online" ='
    return (
        f'SELECT last("online"), "seq" AS "birth_seq" {head} 1 GROUP BY "{SITE_TAG}"; '
        f'SELECT max("seq") AS "will_seq" {head} 0 GROUP BY "{SITE_TAG}"'
    )


def site_sessions(rows: Iterable[Mapping[str, Any]]) -> dict[str, SiteSessions]:
    """Each site's ``SiteSessions`` from the rows of ``site_sessions_query``."""
    born: dict[str, int] = {}
    died: dict[str, int] = {}
    for row in rows:
        if row.get("birth_seq") is not None:
            born[row[SITE_TAG]] = int(row["birth_seq"])
        if row.get("will_seq") is not None:
            died[row[SITE_TAG]] = int(row["will_seq"])
    return {
        site: SiteSessions(born.get(site), died.get(site)) for site in born.keys() | died.keys()
    }


def site_online_now(row: Mapping[str, Any], sessions: SiteSessions | None = None) -> bool:
    """A site's latest status point (``LAST_SITE_FIELDS``) says online, or it is a will of an
    older connection than the site's latest birth: a Last Will delivered late (e.g. after a
    broker restart) after the birth of the connection now up.

    An agent numbers a birth only if it numbered the will of the same connection. So while the
    latest birth is numbered, a will without a number is an older connection's, and so is
    every will numbered below it: the site is online unless a will numbered at or above that
    birth exists. Without a numbered birth (agents before contract minor 1) or with a count
    that went back (an agent's state lost on a box whose clock is wrong), the newest point
    decides, as it always did.
    """
    if row["online"] == 1:
        return True
    if sessions is None or sessions.birth_seq is None:
        return False
    return sessions.will_seq is None or sessions.will_seq < sessions.birth_seq
