"""Availability through the API on real data: down, uplink cut (still measured), power cut
(unknown) and a maintenance window posted through the API over another camera's downtime."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.api.app import create_app
from cloud.auth.principal import Role
from cloud.availability import camera_seconds, merge_spans
from cloud.influx import InfluxClient, InfluxSettings, series_rows
from dashboards import command_center
from devtools.localsvc import InfluxProcess, MosquittoProcess
from simulators.cameras import CameraMode
from simulators.ledger import read_ledger
from simulators.scenario import PowerEvent, Scenario, SimSite
from tests.auth import add_user, bearer
from tests.helpers import async_wait_for, running_simulation, serving
from tests.macros import expand

TOLERANCE_S = 2.5  # one probe interval (1 s) per transition, plus the window's edges


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat()


def test_seconds_from_counts() -> None:
    """Each probe holds one interval; what no probe covers is unknown."""
    row = camera_seconds(window_s=100, maintenance_s=10, probes=80, up_probes=70, interval_s=1)
    assert (row.up_seconds, row.down_seconds, row.unknown_seconds, row.maintenance_seconds) == (
        70,
        10,
        10,
        10,
    )
    capped = camera_seconds(window_s=10, maintenance_s=0, probes=12, up_probes=12, interval_s=1)
    assert (capped.up_seconds, capped.unknown_seconds) == (10, 0)
    assert merge_spans([(5, 9), (1, 3), (2, 6), (10, 11)]) == [(1, 9), (10, 11)]


@pytest.fixture
def auth(tmp_path: Path) -> dict[str, str]:
    """A supervisor of every district, budi, by personal token."""
    return bearer(add_user(f"sqlite:///{tmp_path / 'state.sqlite'}", "budi", Role.SUPERVISOR))


@pytest.fixture
async def api(
    influxd: InfluxProcess, database: str, tmp_path: Path, auth: dict[str, str]
) -> AsyncIterator[str]:
    app = create_app(
        influx=InfluxSettings(url=influxd.url, database=database),
        state_url=f"sqlite:///{tmp_path / 'state.sqlite'}",
        default_probe_interval_s=1.0,
    )
    async with serving(app) as url:
        yield url


async def _answers(http: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await http.get(f"{url}/openapi.json")).status_code == 200
    except httpx.HTTPError:
        return False


def ledger_probe_times(queue: Path, site: str, camera: str) -> list[int]:
    truth, _ = read_ledger(queue, site)
    return sorted(key[3] for key in truth if key[0] == "camera" and key[2] == camera)


async def test_availability_matches_the_scenario(
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
    api: str,
    auth: dict[str, str],
) -> None:
    """Per camera, site and district, JSON and CSV, within one probe interval per transition."""
    scenario = Scenario(
        seed=2,
        probe_interval=1.0,
        probe_timeout=0.4,
        keepalive=2,
        sites=[
            SimSite(id="s1", district="d1", lat=-3.8, lon=102.2, cameras=2),
            SimSite(id="s2", district="d1", lat=-3.9, lon=102.3, cameras=2),
            SimSite(id="s3", district="d2", lat=-4.0, lon=102.4, cameras=2),
        ],
    )
    async with (
        running_simulation(
            scenario,
            mqtt_url=broker.url,
            influx_url=influxd.url,
            database=database,
            workdir=tmp_path / "sim",
            ledger=True,
        ) as sim,
        httpx.AsyncClient(base_url=api, timeout=10, headers=auth) as http,
        httpx.AsyncClient(base_url=api, timeout=10) as nobody,
    ):
        await async_wait_for(lambda: _all_up(http), timeout_s=30, what="6 cameras up")
        window_start = time.time()
        await asyncio.sleep(2)
        # Camera down 8 s; s2's uplink cut 10 s; s3's power cut 8 s.
        await sim.sites["s1"].cameras["c1"].set_mode(CameraMode.DOWN)
        sim.sites["s2"].uplink.cut()
        power = PowerEvent.model_validate({"at": 0, "site": "s3", "power": "down", "for": 8})
        await sim.apply(power, "start")
        await asyncio.sleep(8)
        await sim.sites["s1"].cameras["c1"].set_mode(CameraMode.UP)
        await sim.apply(power, "end")
        await asyncio.sleep(2)
        sim.sites["s2"].uplink.restore()
        # s1/c2 down 5 s inside a 9 s maintenance window posted through the API.
        maint_start = time.time()
        denied = await nobody.post(
            "/api/maintenance",
            json={
                "site": "s1",
                "camera": "c2",
                "start": iso(maint_start),
                "end": iso(maint_start + 9),
                "reason": "lens cleaning",
            },
        )
        assert denied.status_code == 401
        assert denied.headers["content-type"] == "application/problem+json"
        created = await http.post(
            "/api/maintenance",
            json={
                "site": "s1",
                "camera": "c2",
                "start": iso(maint_start),
                "end": iso(maint_start + 9),
                "reason": "lens cleaning",
            },
        )
        assert created.status_code == 201, created.text
        await asyncio.sleep(1)
        await sim.sites["s1"].cameras["c2"].set_mode(CameraMode.DOWN)
        await asyncio.sleep(5)
        await sim.sites["s1"].cameras["c2"].set_mode(CameraMode.UP)
        await asyncio.sleep(4)
        window_end = time.time() - 1
        assert await sim.wait_queues_below(20, timeout_s=30)
        await asyncio.sleep(1.5)  # the collector's last batch (0.2 s) and InfluxDB flush
        params = {"from": iso(window_start), "to": iso(window_end)}
        rows = {
            (r["site"], r["camera"]): r
            for r in (
                await http.get("/api/availability", params={**params, "group_by": "camera"})
            ).json()
        }
        csv_text = (
            await http.get(
                "/api/availability", params={**params, "group_by": "camera", "format": "csv"}
            )
        ).text
        by_site = {
            r["site"]: r
            for r in (
                await http.get("/api/availability", params={**params, "group_by": "site"})
            ).json()
        }
        by_district = {
            r["district"]: r
            for r in (
                await http.get("/api/availability", params={**params, "group_by": "district"})
            ).json()
        }
        listed = (await http.get("/api/maintenance")).json()
        # The Command Center's per-district panel (share of up probes) on the same window: it
        # reads the district hours that the collector's rollup worker refreshes every 30 s.
        panel_query = expand(
            command_center.AVAILABILITY_PER_DISTRICT,
            from_ms=int(window_start * 1000),
            to_ms=int(window_end * 1000),
            interval_ms=1000,
            variables={},
        )
        panel: dict[str, float] = {}
        async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as ix:

            async def districts_rolled() -> bool:
                rows = series_rows(await ix.query(panel_query))
                panel.update({r["district"]: r["availability"] for r in rows})
                return {"d1", "d2"} <= panel.keys()

            await async_wait_for(districts_rolled, timeout_s=60, what="district hours")

    window = window_end - window_start
    # s3's unknown span from the ground-truth ledger: from its last probe before the cut to its
    # first probe after the restart, minus the interval the last probe holds.
    s3_times = ledger_probe_times(sim.sites["s3"].queue_path, "s3", "c1")
    gap = max(b - a for a, b in itertools.pairwise(s3_times)) / 1e9 - 1.0
    expected: dict[tuple[str, str], dict[str, float]] = {
        ("s1", "c1"): {"down_seconds": 8, "unknown_seconds": 0, "maintenance_seconds": 0},
        ("s1", "c2"): {"down_seconds": 0, "unknown_seconds": 0, "maintenance_seconds": 9},
        ("s2", "c1"): {"down_seconds": 0, "unknown_seconds": 0, "maintenance_seconds": 0},
        ("s2", "c2"): {"down_seconds": 0, "unknown_seconds": 0, "maintenance_seconds": 0},
        ("s3", "c1"): {"down_seconds": 0, "unknown_seconds": gap, "maintenance_seconds": 0},
        ("s3", "c2"): {"down_seconds": 0, "unknown_seconds": gap, "maintenance_seconds": 0},
    }
    assert set(rows) == set(expected)
    for key, figures in expected.items():
        row = rows[key]
        for name, value in figures.items():
            assert row[name] == pytest.approx(value, abs=TOLERANCE_S), (key, name, row)
        up = (
            window
            - figures["down_seconds"]
            - figures["unknown_seconds"]
            - figures["maintenance_seconds"]
        )
        assert row["up_seconds"] == pytest.approx(up, abs=TOLERANCE_S), (key, row)
        # The API rounds seconds to the millisecond and the share to 6 decimals.
        assert row["availability"] == pytest.approx(
            row["up_seconds"] / (row["up_seconds"] + row["down_seconds"]), abs=1e-4
        )
    assert rows[("s3", "c1")]["unknown_seconds"] > 5  # the power cut is unknown, not down
    assert rows[("s2", "c1")]["unknown_seconds"] < TOLERANCE_S  # the uplink cut was measured

    # Sites and districts sum their cameras; CSV carries the same columns and values.
    for site in ("s1", "s2", "s3"):
        for name in ("up_seconds", "down_seconds", "unknown_seconds", "maintenance_seconds"):
            assert by_site[site][name] == pytest.approx(
                sum(r[name] for (s, _), r in rows.items() if s == site), abs=0.01
            )
    assert by_district["d1"]["down_seconds"] == pytest.approx(
        rows[("s1", "c1")]["down_seconds"]
        + rows[("s1", "c2")]["down_seconds"]
        + rows[("s2", "c1")]["down_seconds"]
        + rows[("s2", "c2")]["down_seconds"],
        abs=0.01,
    )
    parsed = list(csv.DictReader(io.StringIO(csv_text)))
    assert list(parsed[0]) == [
        "site",
        "district",
        "camera",
        "up_seconds",
        "down_seconds",
        "unknown_seconds",
        "maintenance_seconds",
        "availability",
        "availability_strict",
        "recorded_seconds",
        "record_expected_seconds",
        "recording_availability",
        "retention_compliance",
    ]
    for item in parsed:
        assert float(item["up_seconds"]) == rows[(item["site"], item["camera"])]["up_seconds"]
    assert [(m["site"], m["camera"], m["created_by"]) for m in listed] == [("s1", "c2", "budi")]
    # Dashboard and API agree where no maintenance applies (district d2); in d1 the API also
    # sets the maintenance window aside, which InfluxQL alone cannot.
    assert panel["d2"] == pytest.approx(100 * by_district["d2"]["availability"], abs=0.1)


async def _all_up(http: httpx.AsyncClient) -> bool:
    cameras = (await http.get("/api/cameras", params={"status": "up"})).json()
    return len(cameras) == 6


async def test_maintenance_api_rules(api: str, tmp_path: Path, auth: dict[str, str]) -> None:
    """Writes need identity; bad input and unknown ids are problem+json; windows persist."""
    window: dict[str, Any] = {
        "site": "s9",
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-01-01T02:00:00Z",
        "reason": "pole repair",
        "retroactive_reason": "entered from the paper work order",  # it began in the past
    }
    async with httpx.AsyncClient(base_url=api) as http:
        wrong = await http.post(
            "/api/maintenance", json=window, headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
        backwards = await http.post(
            "/api/maintenance", headers=auth, json={**window, "end": "2025-12-31T00:00:00Z"}
        )
        assert backwards.status_code == 422
        assert backwards.headers["content-type"] == "application/problem+json"
        assert "end must be after start" in backwards.json()["detail"]
        created = (await http.post("/api/maintenance", json=window, headers=auth)).json()
        assert (
            await http.delete(f"/api/maintenance/{created['id'] + 100}", headers=auth)
        ).status_code == 404
        bad_range = await http.get(
            "/api/availability",
            params={"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
            headers=auth,
        )
        assert bad_range.status_code == 400
        assert bad_range.json()["title"] == "bad request"
    # The state database survives a restart of the API.
    again = create_app(
        influx=InfluxSettings(url="http://127.0.0.1:9", database="x"),
        state_url=f"sqlite:///{tmp_path / 'state.sqlite'}",
    )
    async with serving(again) as second, httpx.AsyncClient(base_url=second, headers=auth) as h:
        listed = (await h.get("/api/maintenance", params={"site": "s9"})).json()
        assert [m["reason"] for m in listed] == ["pole repair"]
        deleted = await h.delete(f"/api/maintenance/{created['id']}")
        assert deleted.status_code == 204
        down = await h.get("/api/sites")
        assert down.status_code == 503
        assert down.json()["title"] == "InfluxDB unavailable"
