"""The fleet view reads a bounded recent window: a camera with no probe within the freshness
window is unknown, its last probe is looked for a day back only, and a site's status is found
within raw retention however long ago the site went silent."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cloud.api.app import create_app
from cloud.auth.settings import AuthSettings
from cloud.fleet import (
    LAST_SEEN_LOOKBACK_S,
    NARROW_S,
    SITE_LOOKBACK_S,
    Status,
    current_cameras,
    current_sites,
)
from cloud.influx import InfluxClient, InfluxSettings
from cloud.lineproto import format_line
from cloud.schema import CAMERA, FRESH_S, SITE
from devtools.localsvc import InfluxProcess
from tests.helpers import serving

S = 1_000_000_000


def _probe(site: str, camera: str, ts: int, *, up: bool = True, picture: str | None = None) -> str:
    state = "down" if not up else "degraded" if picture else "up"
    fields: dict[str, int | str | None] = {
        "up": int(up),
        "cause": "ok" if up else "refused",
        "since": ts - 600 * S,
        "picture": picture,
        "state": state,
    }
    return format_line(CAMERA, {"site": site, "district": "d1", "camera": camera}, fields, ts)


def _status(site: str, ts: int, *, online: bool) -> str:
    return format_line(SITE, {"site": site, "district": "d1"}, {"online": int(online)}, ts)


@pytest.fixture
async def influx(influxd: InfluxProcess, database: str) -> AsyncIterator[InfluxClient]:
    async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as client:
        yield client


async def test_cameras_now_from_the_freshness_window(influx: InfluxClient) -> None:
    """Probed just now: its state; probed within the window but before the narrow read: found by
    the second read, still fresh; silent for an hour: unknown, last seen when it was; silent
    for two days: unknown, last seen not looked for; every camera in the index is listed."""
    now = time.time_ns()
    assert NARROW_S < FRESH_S < LAST_SEEN_LOOKBACK_S
    slow = now - int((NARROW_S + FRESH_S) / 2 * S)  # between the narrow read and the horizon
    lines = [
        _probe("s1", "up", now - 5 * S),
        _probe("s1", "down", now - 3 * S, up=False),
        _probe("s1", "frozen", now - 4 * S, picture="frozen"),
        _probe("s2", "slow", slow, up=False),
        _probe("s2", "fast", now - 2 * S),
        _probe("s3", "hour", now - 3600 * S),
        _probe("s3", "hour", now - 3610 * S, up=False),
        _probe("s4", "gone", now - 2 * 86400 * S),
    ]
    await influx.write("\n".join(lines).encode())
    found = {c.camera: c for c in await current_cameras(influx, stale_after_s=FRESH_S, now_ns=now)}
    assert {name: c.status for name, c in found.items()} == {
        "up": Status.UP,
        "down": Status.DOWN,
        "frozen": Status.DEGRADED,
        "slow": Status.DOWN,
        "fast": Status.UP,
        "hour": Status.UNKNOWN,
        "gone": Status.UNKNOWN,
    }
    assert found["down"].cause == "refused" and found["frozen"].cause == "picture frozen"
    assert found["slow"].last_seen_ns == slow and found["up"].since_ns == now - 605 * S
    assert found["hour"].last_seen_ns == now - 3600 * S and found["hour"].site == "s3"
    assert found["gone"].last_seen_ns is None and found["gone"].district == "d1"
    # The same probes seen from two minutes later: nothing is fresh any more.
    later = await current_cameras(influx, stale_after_s=FRESH_S, now_ns=now + 120 * S)
    assert {c.status for c in later} == {Status.UNKNOWN}
    assert {c.camera: c.last_seen_ns for c in later}["slow"] == slow


async def test_sites_found_back_to_raw_retention_only(influx: InfluxClient) -> None:
    """A site that reports its status: its latest; a site offline for ten days (its will, then
    nothing): still offline, since its will; a site silent beyond raw retention: not listed."""
    now = time.time_ns()
    will = now - 10 * 86400 * S
    lines = [
        _status("live", now - 7 * 3600 * S, online=False),
        _status("live", now - 6 * 3600 * S, online=True),
        _status("away", will - 3600 * S, online=True),
        _status("away", will, online=False),
        _status("ancient", now - int(SITE_LOOKBACK_S * S) - 86400 * S, online=True),
    ]
    await influx.write("\n".join(lines).encode())
    sites = {s.site: s for s in await current_sites(influx, now_ns=now)}
    assert set(sites) == {"live", "away"}
    assert sites["live"].online and sites["live"].since_ns == now - 6 * 3600 * S
    assert not sites["away"].online and sites["away"].since_ns == will


async def test_api_cameras_lists_unknown_with_null_last_seen(
    influx: InfluxClient, influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """/api/cameras: a fresh camera with its last probe, a long-silent one as unknown with
    ``last_seen`` null; the status filter applies to both."""
    now = time.time_ns()
    lines = [_probe("s1", "c1", now - 2 * S), _probe("s1", "c2", now - 3 * 86400 * S)]
    await influx.write("\n".join(lines).encode())
    app = create_app(
        influx=InfluxSettings(url=influxd.url, database=database),
        state_url=f"sqlite:///{tmp_path / 'state.sqlite'}",
        auth=AuthSettings(public_read=True),
    )
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        cameras = (await http.get("/api/cameras")).json()
        unknown = (await http.get("/api/cameras", params={"status": "unknown"})).json()
    assert [(c["camera"], c["status"]) for c in cameras] == [("c1", "up"), ("c2", "unknown")]
    assert cameras[0]["last_seen"] is not None and cameras[1]["last_seen"] is None
    assert [c["camera"] for c in unknown] == ["c2"]
