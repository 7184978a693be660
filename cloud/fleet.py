"""The fleet's current state, read back from InfluxDB (what the wall and the API show).

Every read is bounded in time, so its cost grows with the fleet, never with its history:

- A camera's state comes from the probes of the freshness window only (``FRESH_S``: the wall's
  ``$fresh``, the API's ``stale_after_s``): a camera with no probe there is ``unknown``. The last
  ``NARROW_S`` are read first for every camera; the rest of the window only for the sites of
  cameras not found there. The cameras to list come from the series index (raw retention),
  which costs no point reads.
- An unknown camera's last probe is looked for ``LAST_SEEN_LOOKBACK_S`` back (cameras of the
  sites with an unknown camera only); older than that, ``last_seen`` is None.
- A site's latest status is read from the last ``SITE_RECENT_S`` (agents publish it again every
  ``publish.birth_refresh_s``, 6 h); only sites silent for longer (offline since their will) are
  looked for back to raw retention, one query for all of them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cloud.influx import InfluxClient, series_rows
from cloud.schema import (
    CAMERA,
    CAMERA_TAG,
    DEFAULT_PROBE_INTERVAL_S,
    DISTRICT_TAG,
    LAST_SITE_FIELDS,
    SITE,
    SITE_TAG,
    Status,
    camera_status_now,
    site_online_now,
    site_sessions,
    site_sessions_query,
)

__all__ = ["CameraState", "SiteState", "Status", "current_cameras", "current_sites"]

S = 1_000_000_000
# Most cameras' latest probe is this recent, and InfluxDB's cost here is per point returned
# (measured at 1,000 cameras: 0.006 s for the last 15 s against 0.06 s for the last 90 s).
NARROW_S = 2 * DEFAULT_PROBE_INTERVAL_S
# An unknown camera's last probe is searched this far back (cost: one field of the unknown
# cameras' sites over this window; longer finds older last probes, at more shards read).
LAST_SEEN_LOOKBACK_S = 86400.0
# Sites' statuses are read from this window first: twice the agents' status refresh (6 h) plus
# margin, so only sites that went silent (a will and nothing since) need the long read.
SITE_RECENT_S = 86400.0
# The long read for silent sites goes back to raw retention (rollup.raw_days, 35 d by default).
SITE_LOOKBACK_S = 35 * 86400.0
# Fields of a camera's latest probe read raw (no selector: InfluxDB 1.x pays per series and field
# for a grouped selector with auxiliary fields, 0.13 s at 1,000 cameras against 0.06 s).
_FRESH_FIELDS = ("up", "state", "cause", "since", "picture")


@dataclass(frozen=True, slots=True)
class CameraState:
    """Latest known state of one camera; ``last_seen_ns`` None: no probe within the lookback."""

    site: str
    district: str
    camera: str
    status: Status
    cause: str
    last_seen_ns: int | None
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


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _site_condition(sites: Iterable[str]) -> str:
    """An InfluxQL condition on the site tag (site ids are [A-Za-z0-9_.-])."""
    names = "|".join(re.escape(s) for s in sorted(set(sites)))
    return f'"{SITE_TAG}" =~ /^({names})$/'


async def _known(client: InfluxClient, measurement: str) -> dict[tuple[str, str], str]:
    """(site, camera or "") -> district of every series of ``measurement`` in the index."""
    found: dict[tuple[str, str], str] = {}
    for result in await client.query(f'SHOW SERIES FROM "{measurement}"'):
        for series in result.get("series", []) or []:
            for (key,) in series.get("values", []):
                tags = dict(part.split("=", 1) for part in str(key).split(",")[1:])
                if SITE_TAG in tags:
                    found[(tags[SITE_TAG], tags.get(CAMERA_TAG, ""))] = tags.get(DISTRICT_TAG, "")
    return found


async def _latest_probes(
    client: InfluxClient, since_ns: int, sites: Iterable[str] | None = None
) -> dict[tuple[str, str], Any]:
    """Each camera's latest probe after ``since_ns`` (of ``sites``, or all), from raw points."""
    tags = (SITE_TAG, DISTRICT_TAG, CAMERA_TAG)
    condition = "" if sites is None else f" AND {_site_condition(sites)}"
    rows = series_rows(
        await client.query(
            f'SELECT {_quoted(_FRESH_FIELDS + tags)} FROM "{CAMERA}" '
            f"WHERE time > {since_ns}{condition}"
        )
    )
    latest: dict[tuple[str, str], Any] = {}
    for row in rows:
        key = (row[SITE_TAG], row[CAMERA_TAG])
        if key not in latest or row["time"] > latest[key]["time"]:
            latest[key] = row
    return latest


async def _last_seen(
    client: InfluxClient, cameras: Iterable[tuple[str, str]], since_ns: int
) -> dict[tuple[str, str], int]:
    """When each of ``cameras`` was last probed after ``since_ns`` (absent: not since)."""
    wanted = set(cameras)
    if not wanted:
        return {}
    rows = series_rows(
        await client.query(
            f'SELECT last("up") FROM "{CAMERA}" WHERE time > {since_ns} AND '
            f'{_site_condition(site for site, _ in wanted)} GROUP BY "{SITE_TAG}", "{CAMERA_TAG}"'
        )
    )
    return {
        (row[SITE_TAG], row[CAMERA_TAG]): int(row["time"])
        for row in rows
        if (row[SITE_TAG], row[CAMERA_TAG]) in wanted
    }


async def current_cameras(
    client: InfluxClient, *, stale_after_s: float, now_ns: int | None = None
) -> list[CameraState]:
    """Each camera's state now: its latest probe within ``stale_after_s``, else unknown."""
    now = time.time_ns() if now_ns is None else now_ns
    horizon = now - int(stale_after_s * S)
    narrow = max(horizon, now - int(NARROW_S * S))
    fresh, known = await asyncio.gather(_latest_probes(client, narrow), _known(client, CAMERA))
    missing = {site for site, camera in known if (site, camera) not in fresh}
    if missing and narrow > horizon:  # the rest of the window, for those sites only
        older = await _latest_probes(client, horizon, missing)
        fresh |= {key: row for key, row in older.items() if key not in fresh}
    stale = [key for key in known if key not in fresh]
    seen = await _last_seen(client, stale, now - int(LAST_SEEN_LOOKBACK_S * S))
    states = []
    for (site, camera), row in fresh.items():
        status = camera_status_now(row, stale_before_ns=horizon)
        cause = str(row.get("cause") or "")
        if status is Status.DEGRADED:
            cause = f"picture {row.get('picture')}"
        since = row.get("since")
        states.append(
            CameraState(
                site,
                row.get(DISTRICT_TAG) or known.get((site, camera), ""),
                camera,
                status,
                cause,
                int(row["time"]),
                int(since) if since is not None else None,
            )
        )
    for key in stale:
        site, camera = key
        states.append(
            CameraState(site, known[key], camera, Status.UNKNOWN, "no fresh probe", seen.get(key))
        )
    return sorted(states, key=lambda s: (s.site, s.camera))


async def _site_states(client: InfluxClient, since_ns: int, condition: str = "") -> list[SiteState]:
    """Sites' latest statuses after ``since_ns``; a late will of an older connection than the
    latest birth does not make a site offline (``site_online_now``)."""
    where = f"time > {since_ns}{condition}"
    rows = series_rows(
        await client.query(
            f'SELECT {LAST_SITE_FIELDS} FROM "{SITE}" WHERE {where} '
            f'GROUP BY "{SITE_TAG}", "{DISTRICT_TAG}"'
        )
    )
    sessions = site_sessions(series_rows(await client.query(site_sessions_query(where))))
    return [
        SiteState(
            row[SITE_TAG],
            row.get(DISTRICT_TAG) or "",
            site_online_now(row, sessions.get(row[SITE_TAG])),
            int(row["time"]),
            row.get("lat"),
            row.get("lon"),
        )
        for row in rows
    ]


async def current_sites(client: InfluxClient, *, now_ns: int | None = None) -> list[SiteState]:
    """Each site's latest online/offline transition within raw retention."""
    now = time.time_ns() if now_ns is None else now_ns
    states = await _site_states(client, now - int(SITE_RECENT_S * S))
    recent = {state.site for state in states}
    silent = {site for site, _ in await _known(client, SITE)} - recent
    if silent:
        states += await _site_states(
            client, now - int(SITE_LOOKBACK_S * S), f" AND {_site_condition(silent)}"
        )
    return sorted(states, key=lambda s: s.site)
