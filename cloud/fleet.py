"""The fleet's current state, read back from InfluxDB (what the wall and the API show)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from cloud.influx import InfluxClient, series_rows
from cloud.schema import (
    CAMERA,
    LAST_CAMERA_FIELDS,
    LAST_SITE_FIELDS,
    SITE,
    Status,
    camera_status_now,
    site_online_now,
)

__all__ = ["CameraState", "SiteState", "Status", "current_cameras", "current_sites"]


@dataclass(frozen=True, slots=True)
class CameraState:
    """Latest known state of one camera."""

    site: str
    district: str
    camera: str
    status: Status
    cause: str
    last_seen_ns: int
    since_ns: int | None = None


@dataclass(frozen=True, slots=True)
class SiteState:
    """Latest birth/will of one site."""

    site: str
    district: str
    online: bool
    since_ns: int
    lat: float | None
    lon: float | None


async def current_cameras(client: InfluxClient, *, stale_after_s: float) -> list[CameraState]:
    """Each camera's last probe; older than ``stale_after_s`` counts as unknown."""
    # A selector (last) beside a plain field returns that field from the selected point.
    results = await client.query(
        f'SELECT {LAST_CAMERA_FIELDS} FROM "{CAMERA}" '
        'WHERE time > now() - 30d GROUP BY "site", "district", "camera"'
    )
    horizon = time.time_ns() - int(stale_after_s * 1e9)
    states = []
    for row in series_rows(results):
        last_seen = int(row["time"])
        status = camera_status_now(row, stale_before_ns=horizon)
        cause = str(row["cause"])
        if status is Status.DEGRADED:
            cause = f"picture {row.get('picture')}"
        states.append(
            CameraState(
                row["site"],
                row.get("district", ""),
                row["camera"],
                status,
                cause,
                last_seen,
                int(row["since"]) if row.get("since") is not None else None,
            )
        )
    return sorted(states, key=lambda s: (s.site, s.camera))


async def current_sites(client: InfluxClient) -> list[SiteState]:
    """Each site's latest online/offline transition."""
    results = await client.query(
        f'SELECT {LAST_SITE_FIELDS} FROM "{SITE}" WHERE time > now() - 35d '
        'GROUP BY "site", "district"'
    )
    return sorted(
        (
            SiteState(
                row["site"],
                row.get("district", ""),
                site_online_now(row),
                int(row["time"]),
                row.get("lat"),
                row.get("lon"),
            )
            for row in series_rows(results)
        ),
        key=lambda s: s.site,
    )
