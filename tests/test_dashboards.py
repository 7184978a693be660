"""Dashboards: structure of the built JSON, and every panel query run against real data with
Grafana's macros expanded, the Command Center's numbers checked against ground truth."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.lineproto import batch_lines, service_line
from dashboards import camera as camera_dashboard
from dashboards import command_center, health
from dashboards import services as services_dashboard
from dashboards import site as site_dashboard
from dashboards.build import all_dashboards, build_all
from dashboards.panels import DATASOURCE_UID, SCHEMA_VERSION
from devtools.localsvc import InfluxProcess, MosquittoProcess
from pantau.core.commands import Action, CommandResult
from pantau.core.contract import (
    CommandReading,
    DeviceReading,
    PoeState,
    PortReading,
    ReadingBatch,
    RecordGap,
    RecordingReading,
)
from pantau.core.readings import ServiceReading, ServiceStage
from simulators.cabinet import UpsState
from simulators.cameras import CameraMode
from simulators.ledger import read_ledger
from simulators.runner import MALFORMED_PAYLOAD, Simulation, edge_fault_reports
from simulators.scenario import PowerEvent, Scenario, SimSite
from simulators.video import Picture
from tests.helpers import async_wait_for, running_simulation
from tests.macros import expand

FRESH = "5s"


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return list(board["panels"])


def test_build_writes_four_dashboards_and_provisioning(tmp_path: Path) -> None:
    """`build_all` writes the JSON and provisioning files Grafana reads."""
    files = build_all(
        tmp_path,
        influx_url="http://influx:8086",
        database="pantau",
        user="grafana",
        password="secret",
    )
    names = sorted(p.name for p in files if p.suffix == ".json")
    assert names == [
        "camera.json",
        "command-center.json",
        "health.json",
        "services.json",
        "site.json",
    ]
    ds = yaml.safe_load((tmp_path / "provisioning/datasources/pantau.yaml").read_text())
    source = ds["datasources"][0]
    assert (source["uid"], source["type"], source["jsonData"]["dbName"]) == (
        DATASOURCE_UID,
        "influxdb",
        "pantau",
    )
    assert source["secureJsonData"] == {"password": "secret"}
    provider = yaml.safe_load((tmp_path / "provisioning/dashboards/pantau.yaml").read_text())
    assert provider["providers"][0]["folder"] == "Pantau"


@pytest.mark.parametrize("name", ["command-center", "site", "camera", "health", "services"])
def test_structure(name: str) -> None:
    """Unique ids, no overlapping panels, every panel on the provisioned datasource, raw InfluxQL,
    Grafana 11 schema, base thresholds null."""
    board = all_dashboards()[name]
    assert board["schemaVersion"] == SCHEMA_VERSION
    assert board["style"] == "dark"
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels(board):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
        assert panel["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}
        assert panel["targets"]
        for target in panel["targets"]:
            assert target["rawQuery"] is True
            assert target["datasource"]["uid"] == DATASOURCE_UID
            assert target["query"].startswith("SELECT")
        steps = (
            panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
        )
        assert all(s["value"] is not None for s in steps[1:])
        assert not steps or steps[0]["value"] is None
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == DATASOURCE_UID
            assert variable["query"].startswith("SHOW TAG VALUES")


# --- against real data -------------------------------------------------------------------------


@pytest.fixture
async def sim(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> AsyncIterator[Simulation]:
    scenario = Scenario(
        seed=3,
        probe_interval=1.0,
        probe_timeout=0.5,
        keepalive=2,
        stream_interval=4.0,
        stream_sample=1.0,
        sites=[
            SimSite(
                id=f"s{i}",
                district=f"d{1 if i < 3 else 2}",
                lat=-3.8 - i / 10,
                lon=102.3,
                cameras=4,
                ups=i == 1,
            )
            for i in (1, 2, 3)
        ],
    )
    async with running_simulation(
        scenario,
        mqtt_url=broker.url,
        influx_url=influxd.url,
        database=database,
        workdir=tmp_path / "sim",
        ledger=True,
    ) as simulation:
        yield simulation


async def rows(influx: InfluxClient, query: str) -> list[dict[str, Any]]:
    return series_rows(await influx.query(query))


def expanded(query: str) -> str:
    now_ms = int(time.time() * 1000)
    return expand(
        query,
        from_ms=now_ms - 15 * 60_000,
        to_ms=now_ms,
        interval_ms=1000,
        variables={"site": "s1", "camera": "c2", "fresh": FRESH},
    )


def ledger_availability(sim: Simulation) -> float:
    states = [
        value[0]
        for site, runtime in sim.sites.items()
        for key, value in read_ledger(runtime.queue_path, site)[0].items()
        if key[0] == "camera"
    ]
    return 100.0 * sum(states) / len(states)


async def test_every_panel_against_ground_truth(
    sim: Simulation, influxd: InfluxProcess, database: str
) -> None:
    """A camera down, one hung, one site powered off, one malformed message: every query of
    every dashboard returns data, and the Command Center shows exactly that state."""
    async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
        await async_wait_for(
            lambda: _count(influx, 'SELECT count("up") FROM camera GROUP BY site, camera', 12),
            timeout_s=30,
            what="12 cameras",
        )
        await sim.sites["s1"].cameras["c2"].set_mode(CameraMode.DOWN)
        await sim.sites["s2"].cameras["c3"].set_mode(CameraMode.HUNG)
        sim.sites["s1"].cameras["c1"].set_picture(Picture.FROZEN)
        sim.sites["s2"].cameras["c1"].set_picture(Picture.BLURRED)
        ups = sim.sites["s1"].ups
        assert ups is not None
        ups.set_state(UpsState.ON_BATTERY)
        await sim.publish_raw("pantau/v1/sites/s1/readings", MALFORMED_PAYLOAD)
        # What an agent sends after a queue fault, and a batch from a clock an hour ahead.
        for payload in edge_fault_reports("s1", "d1", time.time_ns()):
            await sim.publish_raw("pantau/v1/sites/s1/readings", payload)
        await sim.apply(
            PowerEvent.model_validate({"at": 0, "site": "s3", "power": "down", "for": 60}), "start"
        )
        powered_off = time.monotonic()

        async def settled() -> bool:
            down = await rows(influx, expanded(command_center.CAMERAS_DOWN))
            collector_points = await rows(influx, 'SELECT count("written") FROM pantau_collector')
            degraded = await rows(influx, expanded(command_center.CAMERAS_DEGRADED))
            return (
                {(r["site"], r["camera"], r["cause"]) for r in down}
                == {("s1", "c2", "refused"), ("s2", "c3", "timeout")}
                and {(r["site"], r["camera"], r["picture"]) for r in degraded}
                == {("s1", "c1", "frozen"), ("s2", "c1", "blurred")}
                and [
                    r["site"] for r in await rows(influx, expanded(command_center.SITES_ON_BATTERY))
                ]
                == ["s1"]
                and time.monotonic() - powered_off > 6
                and bool(collector_points)
                and collector_points[0]["count"] >= 2
                and bool(await rows(influx, expanded(health.FUTURE)))
            )

        await async_wait_for(
            settled, timeout_s=40, what="down and degraded cameras and self-metrics"
        )

        # The long-window panels read the rollup worker's district hours (refreshed every cycle).
        await async_wait_for(
            lambda: _count(influx, expanded(command_center.AVAILABILITY_PER_DISTRICT), 2),
            timeout_s=60,
            what="district hours from the collectors' rollup workers",
        )
        # Recorders and identities, as the collector stores them (ground truth for the wall's
        # recording panels and the Camera dashboard's, whose $camera is s1/c2).
        await influx.write("\n".join(_recording_truth(time.time_ns())).encode())
        await influx.write("\n".join(_port_truth(time.time_ns())).encode())
        await influx.write("\n".join(_service_truth(time.time_ns())).encode())
        # Every panel and variable query runs and returns data.
        for name, board in all_dashboards().items():
            for panel in panels(board):
                for target in panel["targets"]:
                    result = await rows(influx, expanded(target["query"]))
                    assert result, f"{name}/{panel['title']}: no data for {target['query']}"
            for variable in board["templating"]["list"]:
                if variable["type"] == "query":
                    values = await rows(influx, expanded(variable["query"]))
                    assert values, f"{name}: variable {variable['name']} has no values"

        status = await rows(influx, expanded(services_dashboard.STATUS_NOW))
        assert {(r["site"], r["service"], r["ok"], r["stage"]) for r in status} == {
            ("cloud", "simpeg", 0, "status"), ("s1", "simpeg", 0, "status"),
            ("cloud", "sipd", 1, None), ("s1", "sipd", 1, None),
        }  # fmt: skip
        failing = await rows(influx, expanded(command_center.SERVICES_FAILING))
        assert {(r["service"], r["site"], r["stage"]) for r in failing} == {
            ("simpeg", "cloud", "status"),
            ("simpeg", "s1", "status"),
        }
        expiring = await rows(influx, expanded(command_center.CERTIFICATES_EXPIRING))
        assert [(r["service"], r["days"]) for r in expiring] == [("simpeg", 10.0)]
        certs = await rows(influx, expanded(services_dashboard.CERT_DAYS))
        assert {(r["service"], r["days"]) for r in certs} == {("simpeg", 10.0), ("sipd", 300.0)}
        ports = await rows(influx, expanded(site_dashboard.PORTS_NOW))
        assert {(r["camera"], r["link"], r["powered"], r["switch_ok"]) for r in ports} == {
            ("c1", 1, 1, 1),
            ("c2", 0, 0, 1),
        }
        actions = await rows(influx, expanded(site_dashboard.ACTIONS))
        assert [(r["camera"], r["trigger"], r["result"], r["up_after"]) for r in actions] == [
            ("c1", "policy", "done", 1)
        ]
        gaps = await rows(influx, expanded(site_dashboard.GAPS))
        assert [(r["readings lost"], r["to"] - r["from"]) for r in gaps] == [(30, 30_000)]
        queue_errors = await rows(influx, expanded(site_dashboard.QUEUE_ERRORS))
        assert [r["queue_error"] for r in queue_errors] == [
            "queue write failed: database or disk is full"
        ]
        refused = await rows(influx, expanded(health.FUTURE))
        assert [(r["site"], r["refused"]) for r in refused] == [("s1", 1)]
        lost = await rows(influx, expanded(health.GAPS))
        assert [(r["site"], r["readings lost"]) for r in lost] == [("s1", 30)]
        edge_refused = await rows(influx, expanded(health.EDGE_REFUSED))
        assert [(r["site"], r["refused"]) for r in edge_refused] == [("s1", 4)]

        # The Command Center's numbers are the ground truth.
        online = await rows(influx, expanded(command_center.CAMERAS_ONLINE))
        assert online[0]["online"] == 6  # 8 measured (s3 unknown), s1/c2 down, s2/c3 hung
        pct = await rows(influx, expanded(command_center.CAMERAS_ONLINE_PCT))
        assert pct[0]["online_pct"] == pytest.approx(75.0)
        offline = await rows(influx, expanded(command_center.SITES_OFFLINE))
        assert offline[0]["offline"] == 1
        down = await rows(influx, expanded(command_center.CAMERAS_DOWN))
        for row in down:
            assert row["down_since"] <= time.time() * 1000
        sites = await rows(influx, expanded(command_center.SITES_MAP))
        assert {(r["site"], r["online"]) for r in sites} == {("s1", 1), ("s2", 1), ("s3", 0)}
        assert all(r["lat"] < -3.8 and r["lon"] == 102.3 for r in sites)

        # Recording: s1/c2 missed 150 s of its hour and keeps 12 of 30 days; it was replaced.
        recorded = await rows(influx, expanded(command_center.RECORDED_24H))
        assert recorded[0]["recorded"] == pytest.approx(100 * (7200 - 150) / 7200)
        gaps_now = await rows(influx, expanded(command_center.RECORDING_GAPS_NOW))
        assert [(r["site"], r["camera"], r["record_gap_s"]) for r in gaps_now] == [
            ("s1", "c2", 150.0)
        ]
        short = await rows(influx, expanded(command_center.RETENTION_BELOW_NOW))
        assert [(r["site"], r["camera"], r["retention_days"]) for r in short] == [
            ("s1", "c2", 12.0)
        ]
        replaced = await rows(influx, expanded(command_center.CAMERAS_REPLACED))
        assert [(r["site"], r["camera"], r["serials"]) for r in replaced] == [("s1", "c2", 2)]
        camera_gaps = await rows(influx, expanded(camera_dashboard.RECORD_GAPS))
        assert [r["record_gap_s"] for r in camera_gaps] == [150.0]
        identity = await rows(influx, expanded(camera_dashboard.IDENTITY))
        assert [r["serial"] for r in identity] == ["NEW-2"]

        # Availability: stop the agents (they flush), then compare with the agents' ledgers.
        for runtime in sim.sites.values():
            await sim.stop_process(runtime.process)
        await sim.wait_collectors_idle()
        expected = ledger_availability(sim)

        async def availability_is(window: str) -> bool:
            measured = await rows(influx, expanded(command_center.availability(window)))
            return bool(measured) and measured[0]["availability"] == pytest.approx(
                expected, abs=0.1
            )

        for window in ("24h", "7d", "30d"):  # the next worker cycle has the last readings
            await async_wait_for(
                lambda w=window: availability_is(w),  # type: ignore[misc]
                timeout_s=60,  # the worker refreshes the current hour every 30 s
                what=f"availability {window} = the ledgers' {expected:.2f} %",
            )
        per_district = await rows(influx, expanded(command_center.AVAILABILITY_PER_DISTRICT))
        assert {r["district"] for r in per_district} == {"d1", "d2"}


def _recording_truth(now: int) -> list[str]:
    """s1/c2: 150 s not recorded, 12 of 30 days kept, serial changed; s2/c1 all recorded."""
    s = 1_000_000_000
    checked = now - 120 * s
    gap = RecordGap(start_ts=checked - 600 * s, end_ts=checked - 450 * s)

    def check(camera: str, gaps: list[RecordGap], days: float) -> RecordingReading:
        return RecordingReading(
            camera=camera, recorder="nvr1", ts=checked, window_s=3600,
            recorded_s=3600.0 - sum((g.end_ts - g.start_ts) / s for g in gaps), gaps=gaps,
            retention_days=days, retention_goal_days=30.0,
        )  # fmt: skip

    def identity(camera: str, ts: int, serial: str) -> DeviceReading:
        return DeviceReading(device=camera, ts=ts, ok=True, model="DS-2CD", serial=serial)

    s1 = ReadingBatch(
        site="s1",
        district="d1",
        recordings=[check("c2", [gap], 12.0)],
        devices=[identity("c2", now - 600 * s, "OLD-2"), identity("c2", checked, "NEW-2")],
    )
    s2 = ReadingBatch(
        site="s2",
        district="d1",
        recordings=[check("c1", [], 40.0)],
        devices=[identity("c1", checked, "SER-21")],
    )
    return batch_lines(s1) + batch_lines(s2)


def _port_truth(now: int) -> list[str]:
    """s1/c1 hung (port up, powered) and power-cycled by the policy; s1/c2 down: link."""
    s = 1_000_000_000
    up = PortReading(switch="sw1", port=1, camera="c1", ts=now - 60 * s, link_up=True,
                     poe=PoeState.DELIVERING, poe_w=4.2, errors=0)  # fmt: skip
    down = PortReading(switch="sw1", port=2, camera="c2", ts=now - 60 * s, link_up=False,
                       poe=PoeState.SEARCHING, poe_w=0.0, errors=3)  # fmt: skip
    cycled = CommandReading(device="c1", ts=now - 30 * s, result=CommandResult.DONE,
                            action=Action.POWER_CYCLE, trigger="policy", nonce="a" * 32,
                            up_after=True, recovery_s=42.0)  # fmt: skip
    batch = ReadingBatch(site="s1", district="d1", ports=[up, down], commands=[cycled])
    return batch_lines(batch)


def _service_truth(now: int) -> list[str]:
    """simpeg failing (503) from the cloud and s1 with a certificate 10 days from expiry (the
    nearer of the two seen), sipd fine: the Services dashboard's status and certificate panels."""
    s = 1_000_000_000
    lines = []
    for site, district in (("cloud", "cloud"), ("s1", "d1")):
        down = ServiceReading(service="simpeg", ts=now - s, ok=False,
                              stage=ServiceStage.STATUS, status=503, total_ms=40.0,
                              cert_days=10.0 if site == "s1" else 11.0)  # fmt: skip
        up = ServiceReading(service="sipd", ts=now - s, ok=True, status=200, total_ms=80.0,
                            cert_days=300.0)  # fmt: skip
        lines += [service_line(down, site, district), service_line(up, site, district)]
    return lines


async def _count(influx: InfluxClient, query: str, expected: int) -> bool:
    return len(await rows(influx, query)) == expected


def test_macro_expansion() -> None:
    """Macros expand as Grafana expands them."""
    text = expand(
        'SELECT x FROM m WHERE "site" =~ /^$site$/ AND $timeFilter GROUP BY time($__interval) '
        "LIMIT $__interval_ms",
        from_ms=1000,
        to_ms=2000,
        interval_ms=60_000,
        variables={"site": "s.1"},
    )
    assert text == (
        'SELECT x FROM m WHERE "site" =~ /^s\\.1$/ AND time >= 1000ms and '
        "time <= 2000ms GROUP BY time(1m) LIMIT 60000"
    )
