"""Recording availability, retention compliance and the device inventory on a real InfluxDB with
known ground truth, written in the collector's own line format: exact seconds recorded against
seconds expected, a 2-minute gap costing exactly 120 s, maintenance setting a gap aside, a
recorder keeping less than the goal, and the inventory CSV scoped to the caller's district."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from cloud.api.app import create_app
from cloud.auth.principal import Role
from cloud.availability import GroupBy, MaintenanceSpan, compute
from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.lineproto import batch_lines, format_line
from cloud.recording import cut, intersect, merge
from cloud.rollup.retention import Retention, ensure_policies
from cloud.rollup.timegrid import LocalDays, fixed_offset_s, floor_hour
from cloud.rollup.worker import RollupWorker, WorkerSettings
from cloud.rollup.writer import RollupSpec
from devtools.localsvc import InfluxProcess
from pantau.core.contract import DeviceReading, ReadingBatch, RecordGap, RecordingReading
from tests.auth import add_user, bearer
from tests.helpers import serving

S = 1_000_000_000
HOUR = 3600
STEP_S = 300  # the agent's device check interval: each point judges the hour before it
WINDOW_S = 2 * HOUR
GAP_START_S, GAP_S = 30 * 60, 120


def test_span_arithmetic() -> None:
    """Union, cut and intersection of spans, the pieces of the figures."""
    assert merge([(5, 9), (0, 3), (2, 4), (9, 9)]) == [(0, 4), (5, 9)]
    assert cut([(0, 10)], [(2, 3), (5, 7)]) == [(0, 2), (3, 5), (7, 10)]
    assert cut([(0, 10)], [(-5, 20)]) == []
    assert intersect([(0, 4), (6, 10)], [(3, 7)]) == [(3, 4), (6, 7)]


def _start_ns() -> int:
    """A whole hour three to five hours ago whose two hours lie in one Jakarta month."""
    start = (time.time_ns() // (HOUR * S) - 3) * HOUR * S
    zone = ZoneInfo("Asia/Jakarta")
    while True:
        first = dt.datetime.fromtimestamp(start / S, zone)
        last = dt.datetime.fromtimestamp((start + WINDOW_S * S) / S, zone)
        if (first.year, first.month) == (last.year, last.month):
            return start
        start -= HOUR * S


def _recordings(
    t0: int, camera: str, *, gap: bool = False, days: tuple[float, float] = (40.0, 40.0)
) -> list[RecordingReading]:
    """What the agent reports every 5 minutes over the two hours (and just before them)."""
    out = []
    for step in range(0, WINDOW_S + 1, STEP_S):
        ts = t0 + step * S
        start, end = t0 + GAP_START_S * S, t0 + (GAP_START_S + GAP_S) * S
        gaps = (
            [RecordGap(start_ts=start, end_ts=min(end, ts))]
            if gap and start < ts and ts - HOUR * S < end
            else []
        )
        out.append(
            RecordingReading(
                camera=camera, recorder="nvr1", ts=ts, window_s=HOUR,
                recorded_s=float(HOUR) - sum((g.end_ts - g.start_ts) / S for g in gaps),
                gaps=gaps, retention_days=days[0] if step < HOUR else days[1],
                retention_goal_days=30.0,
            )
        )  # fmt: skip
    return out


def _device(camera: str, ts: int, serial: str) -> DeviceReading:
    return DeviceReading(
        device=camera, ts=ts, ok=True, manufacturer="Hikvision", model="DS-2CD2143",
        firmware="V5.7.3", serial=serial, clock_offset_ms=12.0,
    )  # fmt: skip


@dataclass
class World:
    t0: int
    influx: InfluxSettings
    url: str
    tokens: dict[str, dict[str, str]]


@pytest.fixture
async def world(influxd: InfluxProcess, database: str, tmp_path: Path) -> AsyncIterator[World]:
    """s1 (d1): c1 fully recorded, c2 with a 2-minute gap, c3 kept 12 days of a 30-day goal,
    c4 40 days then 20; s2 (d2): c9. Device identities for c1 (serial changed) and c9."""
    t0 = _start_ns()
    d1 = ReadingBatch(
        site="s1",
        district="d1",
        recordings=[
            *_recordings(t0, "c1"),
            *_recordings(t0, "c2", gap=True),
            *_recordings(t0, "c3", days=(12.0, 12.0)),
            *_recordings(t0, "c4", days=(40.0, 20.0)),
        ],
        devices=[_device("c1", t0, "OLD-1"), _device("c1", t0 + HOUR * S, "NEW-1")],
    )
    d2 = ReadingBatch(
        site="s2",
        district="d2",
        recordings=_recordings(t0, "c9"),
        devices=[_device("c9", t0, "SER-9")],
    )
    settings = InfluxSettings(url=influxd.url, database=database)
    async with InfluxClient(settings) as client:
        await client.write("\n".join(batch_lines(d1) + batch_lines(d2)).encode())
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    tokens = {
        "tech1": bearer(add_user(state_url, "tech1", Role.TECHNICIAN, ["d1"])),
        "admin": bearer(add_user(state_url, "admin", Role.ADMIN)),
    }
    app = create_app(influx=settings, state_url=state_url, default_probe_interval_s=10.0)
    async with serving(app) as url:
        yield World(t0, settings, url, tokens)


async def test_recording_availability_and_retention(world: World) -> None:
    """Seconds expected and recorded exactly; the gap costs exactly 120 s; retention below goal
    shows as compliance below 1, time-weighted; sites add their cameras' seconds."""
    start = dt.datetime.fromtimestamp(world.t0 / S, dt.UTC)
    params = {"from": start.isoformat(), "to": (start + dt.timedelta(hours=2)).isoformat()}
    async with httpx.AsyncClient(
        base_url=world.url, headers=world.tokens["admin"], timeout=30
    ) as admin:
        answer = await admin.get("/api/availability", params=params)
        assert answer.status_code == 200, answer.text
        rows = {(r["site"], r["camera"]): r for r in answer.json()}
        sites = (await admin.get("/api/availability", params={**params, "group_by": "site"})).json()
        table = (await admin.get("/api/availability", params={**params, "format": "csv"})).text
    c1, c2, c3, c4 = (rows["s1", c] for c in ("c1", "c2", "c3", "c4"))
    assert c1["record_expected_seconds"] == WINDOW_S
    assert c1["recorded_seconds"] == WINDOW_S
    assert c1["recording_availability"] == 1.0
    assert c2["record_expected_seconds"] == WINDOW_S
    assert c2["recorded_seconds"] == WINDOW_S - GAP_S
    assert c2["recording_availability"] == round((WINDOW_S - GAP_S) / WINDOW_S, 6)
    assert c1["recording_availability"] - c2["recording_availability"] == pytest.approx(
        GAP_S / WINDOW_S, abs=1e-6
    )
    assert c1["retention_compliance"] == 1.0
    assert c3["retention_compliance"] == 0.0  # 12 days kept, 30 due
    # 40 days for the first hour's checks (incl. the one at its start), 20 for the second's.
    assert c4["retention_compliance"] == round(12 / 24, 6)
    assert c3["recording_availability"] == 1.0  # retention is not recording
    s1 = next(s for s in sites if s["site"] == "s1")
    assert s1["recorded_seconds"] == 4 * WINDOW_S - GAP_S
    assert s1["recording_availability"] == round((4 * WINDOW_S - GAP_S) / (4 * WINDOW_S), 6)
    assert s1["retention_compliance"] == round((24 + 0 + 12 + 24) / 96, 6)
    head = next(csv.reader(io.StringIO(table)))
    assert {"recording_availability", "retention_compliance", "recorded_seconds"} <= set(head)


async def test_maintenance_sets_the_gap_aside(world: World) -> None:
    """A maintenance window over c2's gap takes its seconds out of both expected and missed."""
    async with InfluxClient(world.influx) as client:
        window = MaintenanceSpan(
            world.t0 + (GAP_START_S - 60) * S, world.t0 + (GAP_START_S + 540) * S, camera="c2"
        )
        rows = await compute(
            client,
            start_ns=world.t0,
            end_ns=world.t0 + WINDOW_S * S,
            maintenance=[window],
            group_by=GroupBy.CAMERA,
        )
    c2 = next(r for r in rows if r.camera == "c2")
    assert c2.record_expected_seconds == WINDOW_S - 600
    assert c2.recorded_seconds == WINDOW_S - 600
    assert c2.recording_availability == 1.0


async def test_report_csv_has_recording_columns(world: World) -> None:
    """The monthly report's CSV carries recording availability and retention compliance."""
    month = dt.datetime.fromtimestamp(world.t0 / S, ZoneInfo("Asia/Jakarta")).strftime("%Y-%m")
    async with httpx.AsyncClient(
        base_url=world.url, headers=world.tokens["admin"], timeout=60
    ) as admin:
        answer = await admin.get("/api/report", params={"month": month, "format": "csv"})
        page = await admin.get("/api/report", params={"month": month, "format": "html"})
    assert answer.status_code == 200, answer.text
    assert "ketersediaan rekaman %" in page.text  # the page's column, in Indonesian
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    cams = {r["camera"]: r for r in rows if r["level"] == "camera"}
    # The month holds exactly the two hours judged (plus the hour before t0 the first point
    # judges, which lies in the month too unless t0 starts it).
    judged = float(WINDOW_S + HOUR)
    first = dt.datetime.fromtimestamp(world.t0 / S, ZoneInfo("Asia/Jakarta"))
    if first.day == 1 and first.hour == 0:
        judged = float(WINDOW_S)
    assert float(cams["c2"]["recording_availability_pct"]) == pytest.approx(
        100 * (judged - GAP_S) / judged, abs=1e-3
    )
    assert cams["c1"]["recording_availability_pct"] == "100.000"
    assert cams["c3"]["retention_compliance_pct"] == "0.000"


async def test_inventory_is_scoped(world: World) -> None:
    """The inventory lists each camera's latest identity; a d1 technician sees no d2 camera."""
    async with (
        httpx.AsyncClient(base_url=world.url, headers=world.tokens["admin"], timeout=30) as admin,
        httpx.AsyncClient(base_url=world.url, headers=world.tokens["tech1"], timeout=30) as tech,
        httpx.AsyncClient(base_url=world.url, timeout=30) as nobody,
    ):
        everything = (await admin.get("/api/inventory")).json()
        scoped = await tech.get("/api/inventory", params={"format": "csv"})
        asked_for_d2 = (await tech.get("/api/inventory", params={"site": "s2"})).json()
        refused = await nobody.get("/api/inventory")
    assert [(r["site"], r["camera"], r["serial"]) for r in everything] == [
        ("s1", "c1", "NEW-1"),
        ("s2", "c9", "SER-9"),
    ]
    c1 = everything[0]
    assert (c1["manufacturer"], c1["model"], c1["firmware"]) == (
        "Hikvision",
        "DS-2CD2143",
        "V5.7.3",
    )
    assert dt.datetime.fromisoformat(c1["last_seen"]).timestamp() == (world.t0 / S) + HOUR
    assert scoped.status_code == 200
    assert scoped.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(scoped.text)))
    assert [(r["district"], r["camera"], r["serial"]) for r in rows] == [("d1", "c1", "NEW-1")]
    assert asked_for_d2 == []
    assert refused.status_code == 401


async def test_recording_rollup_equals_the_raw_computation(
    influxd: InfluxProcess, database: str
) -> None:
    """Six hours of checks rolled up by the worker: windows with partial hours at the edges and
    whole hours, with a maintenance window over an hour boundary and a gap across one, give the
    raw answer exactly; with raw checks deleted afterwards, the whole hours still come from
    ``record_1h`` while the raw computation changes."""
    now = time.time_ns()
    t0 = floor_hour(now) - 7 * HOUR * S
    gap = RecordGap(start_ts=t0 + (2 * HOUR - 100) * S, end_ts=t0 + (2 * HOUR + 200) * S)
    checks = []
    for step in range(STEP_S, 6 * HOUR + 1, STEP_S):
        ts = t0 + step * S
        seen = [
            RecordGap(start_ts=gap.start_ts, end_ts=min(gap.end_ts, ts))
            for _ in [0]
            if gap.start_ts < ts and ts - HOUR * S < gap.end_ts
        ]
        for camera, days in (("c1", 40.0), ("c2", 10.0 if step > 3 * HOUR else 40.0)):
            checks.append(
                RecordingReading(
                    camera=camera, recorder="nvr1", ts=ts, window_s=HOUR,
                    recorded_s=HOUR - sum((g.end_ts - g.start_ts) / S for g in seen),
                    gaps=seen if camera == "c1" else [], retention_days=days,
                    retention_goal_days=30.0,
                )
            )  # fmt: skip
    batch = ReadingBatch(site="s1", district="d1", recordings=checks)
    probe = format_line("camera", {"site": "s1", "district": "d1", "camera": "c1"}, {"up": 1}, t0)
    windows = [(t0 + 1234 * S, t0 + (6 * HOUR + 300) * S), (t0 + HOUR * S, t0 + 5 * HOUR * S)]
    aside = [MaintenanceSpan(t0 + (2 * HOUR - 50) * S, t0 + (3 * HOUR + 17) * S, camera="c1")]

    async def answers(use_rollups: bool) -> list[list[dict[str, object]]]:
        found = []
        for window in windows:
            for maintenance in ([], aside):
                rows = await compute(
                    influx, start_ns=window[0], end_ns=window[1], maintenance=maintenance,
                    use_rollups=use_rollups, now_ns=now,
                )  # fmt: skip
                found.append([_recording(r.as_dict()) for r in rows])
        return found

    async with InfluxClient(
        InfluxSettings(url=influxd.url, database=database, timeout_s=60)
    ) as influx:
        assert await ensure_policies(influx, Retention())
        await influx.write("\n".join([probe, *batch_lines(batch)]).encode())
        raw = await answers(use_rollups=False)
        spec = RollupSpec(days=LocalDays(fixed_offset_s("Asia/Jakarta")))
        await RollupWorker(influx, spec, WorkerSettings(settle_s=60)).step(now)
        hours = series_rows(
            await influx.query('SELECT count("expected_s") FROM rollup_1h.record_1h')
        )
        assert hours and hours[0]["count"] >= 12  # two cameras x six hours
        assert await answers(use_rollups=True) == raw
        c1 = raw[0][0]
        assert c1["record_expected_seconds"] == 6 * HOUR - 1234  # judged up to the last check
        assert c1["recorded_seconds"] == 6 * HOUR - 1234 - 300
        # Maintenance takes 3,667 s, and 250 s of the 300-s gap with it.
        assert raw[1][0]["recorded_seconds"] == 6 * HOUR - 1234 - (HOUR + 67) - 50

        await influx.query(
            f'DELETE FROM "record" WHERE time >= {t0 + 3 * HOUR * S} AND time < {t0 + 4 * HOUR * S}'
        )
        rolled_after, raw_after = await answers(use_rollups=True), await answers(use_rollups=False)
    assert rolled_after[2] == raw[2]  # [t0+1h, t0+5h): every hour from the rollup
    assert raw_after[2] != raw[2]


def _recording(row: dict[str, object]) -> dict[str, object]:
    names = ("camera", "record_expected_seconds", "recorded_seconds", "recording_availability",
             "retention_compliance")  # fmt: skip
    return {name: row[name] for name in names}
