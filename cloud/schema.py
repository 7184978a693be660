"""The read side's one schema: measurement, tag and field names in InfluxDB, and the two rules
every reader shares: what state a camera is in now, and whether a site is online now.

The collector writes with these names (``lineproto``), and the fleet view, the problem rules and
the API read with them; the dashboards' InfluxQL uses the same names and the same rules
(``$fresh`` is ``stale_after``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
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

# Rollups (cloud/rollup): whole hours and days, each in its own retention policy.
RP_RAW = "autogen"  # the database's default policy: raw points, kept raw_days
RP_HOURLY = "rollup_1h"
RP_DAILY = "rollup_1d"
CAMERA_1H = "camera_1h"  # per camera and hour: probes, up, degraded (counts), interval_s
CAMERA_1D = "camera_1d"  # per camera and local day: the same, summed from hours
DISTRICT_1H = "district_1h"  # per district and hour: probes, up (the wall's long windows)
SENSOR_1H = "sensor_1h"  # per sensor and hour: min, mean, max, count
ROLLUP_STATE = "rollup_state"  # the hourly watermark: every hour before it is rolled up
ROLLUP_DIRTY = "rollup_dirty"  # per site and hour (at the hour): late data marked, done

# Tags.
SITE_TAG, DISTRICT_TAG, CAMERA_TAG = "site", "district", "camera"

# The latest camera point with what "state now" needs (a selector beside plain fields returns
# those fields from the selected point).
LAST_CAMERA_FIELDS = 'last("up") AS "up", "cause", "stage", "since", "state", "picture"'
LAST_SITE_FIELDS = 'last("online") AS "online", "lat", "lon"'


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


def site_online_now(row: Mapping[str, Any]) -> bool:
    """A site's latest status point (``LAST_SITE_FIELDS``) says online."""
    return bool(row["online"] == 1)
