"""The ZoneMinder adapter against a real ZoneMinder 1.36 (devtools/zoneminder.py) recording three
gst-rtsp-server cameras, through a real agent, mosquitto, collector and InfluxDB: a camera's
stream stopped for 2 minutes is a 2-minute gap, a problem and a lower recording availability;
a storage area filled up is ZoneMinder purging its oldest events, and retention below goal.
Plus the adapter's parsing of hostile answers (canned bodies)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.api.app import create_app
from cloud.auth.principal import Role
from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.problems.config import RulesConfig
from cloud.problems.model import Observation, Verdict
from cloud.problems.observe import Observer
from devtools.localsvc import InfluxProcess, MosquittoProcess, free_port
from devtools.processes import (
    agent_argv,
    collector_argv,
    start_logged,
    stop_process,
    wait_collector_connected,
)
from devtools.zoneminder import PASSWORD, USER, ZoneMinder
from edge_agent.devices.settings import DeviceChecksConfig, ZoneminderRecorder
from edge_agent.recorders import zm_json
from edge_agent.recorders.zm_json import ZmError
from edge_agent.recorders.zoneminder import ZoneminderAdapter
from pantau.core.contract import RecordingReading
from simulators.loopback_http import LoopbackHttpServer
from tests.auth import add_user, bearer
from tests.helpers import async_wait_for, serving

S = 1_000_000_000
# The agent's recorder check interval, the tolerance of a gap's length. ZoneMinder retries a lost
# camera 1, 3, 6, 10 ... s after losing it (zmc waits one second longer each time), so after 120 s
# it resumes 5 to 21 s late (its next try plus opening the stream; measured: 141 s); the gap
# pantau reports is ZoneMinder's, to the second.
CHECK_S = 30
STOP_S = 120  # how long camera 2's stream is stopped
WINDOW_S = 600  # the span each check judges


@pytest.fixture
def zoneminder() -> Iterator[ZoneMinder]:
    """ZoneMinder in a short temp folder (its storage paths must fit 64 characters)."""
    base = Path(tempfile.mkdtemp(prefix="pantau-zm-"))
    zm = ZoneMinder(base, cameras=4)
    started = time.monotonic()
    zm.start()
    print(f"ZoneMinder started in {time.monotonic() - started:.1f} s")
    try:
        yield zm
    finally:
        zm.stop()
        shutil.rmtree(base, ignore_errors=True)


def agent_config(zm: ZoneMinder, broker: MosquittoProcess, tmp: Path) -> dict[str, Any]:
    cameras = [
        {"id": f"c{i}", "rtsp_url": f"rtsp://127.0.0.1:{s.port}/cam"}
        for i, s in enumerate(zm.servers, start=1)
    ]
    return {
        "site": {"id": "s1", "district": "d1", "lat": -3.8, "lon": 102.3},
        "broker": {"url": broker.url, "keepalive_s": 5},
        "queue": {"path": str(tmp / "queue.sqlite")},
        "probe": {"interval_s": 10},
        "cameras": cameras,
        "devices": {"interval_s": CHECK_S, "timeout_s": 5, "window_s": WINDOW_S},
        "recorders": [
            {
                "type": "zoneminder", "id": "zm1", "url": zm.url,
                "username": USER, "password": PASSWORD,
                "cameras": [
                    {"camera": c["id"], "channel": i, "retention_goal_days": 30}
                    for i, c in enumerate(cameras, start=1)
                ],
            }
        ],
    }  # fmt: skip


@pytest.fixture
async def site(
    zoneminder: ZoneMinder,
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
) -> AsyncIterator[InfluxClient]:
    """A collector and the site's agent, whose recorder is the ZoneMinder."""
    config = tmp_path / "agent.yaml"
    config.write_text(json.dumps(agent_config(zoneminder, broker, tmp_path)))  # JSON is YAML
    port = free_port()
    collector = await start_logged(
        collector_argv(
            mqtt=broker.url, influx=influxd.url, database=database, http_port=port,
            client_id="zm-collector", instance="zm", dead_letter=tmp_path / "dl.sqlite",
        ),
        tmp_path / "collector.log",
        new_session=True,
    )  # fmt: skip
    agent = None
    try:
        await wait_collector_connected(port)
        agent = await start_logged(
            agent_argv(config, log_level="INFO"), tmp_path / "agent.log", new_session=True
        )
        async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
            yield influx
    finally:
        await stop_process(agent)
        await stop_process(collector)


async def rows(influx: InfluxClient, query: str) -> list[dict[str, Any]]:
    return series_rows(await influx.query(query))


async def observe(influx: InfluxClient) -> dict[str, Observation]:
    observations = await Observer(influx, RulesConfig()).observe(time.time_ns())
    return {o.key: o for o in observations}


async def test_stopped_stream_is_a_gap_and_a_full_storage_shortens_retention(
    zoneminder: ZoneMinder, site: InfluxClient, influxd: InfluxProcess, database: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """c2's stream stops for 120 s: one gap in InfluxDB of 120 s ± one check interval, exactly
    the pause between ZoneMinder's events, the recording-gap problem for c2 alone, c2's recording
    availability below c1's and c3's. Meanwhile storage area 2 (c4's) fills, ZoneMinder purges
    its oldest events and c4's retention falls below its 30-day goal."""
    influx = site
    await async_wait_for(
        lambda: _recorded(influx, 4), timeout_s=60, what="a recording check of 4 cameras"
    )
    first = {r["camera"]: r for r in await rows(
        influx, 'SELECT last("retention_days") AS "days" FROM record GROUP BY "camera"'
    )}  # fmt: skip
    assert all(39.9 < r["days"] < 40.1 for r in first.values()), first

    stopped_ns = time.time_ns()
    await asyncio.to_thread(zoneminder.stop_camera, 2)
    await asyncio.to_thread(zoneminder.fill_storage)
    outage_ends = time.monotonic() + STOP_S
    await _login_paths(zoneminder)  # meanwhile, against the same server
    await _paging(zoneminder)
    # The outage itself: the span under test, not a wait for a result.
    await asyncio.sleep(max(0.0, outage_ends - time.monotonic()))
    await asyncio.to_thread(zoneminder.start_camera, 2)

    async def short_retention() -> list[float]:
        found = await rows(
            influx,
            "SELECT last(retention_days) AS days FROM record WHERE camera = 'c4' "
            f"AND time > {stopped_ns}",
        )
        return [found[0]["days"]] if found and found[0]["days"] < 1 else []

    days = await async_wait_for(short_retention, timeout_s=2 * CHECK_S, what="c4's retention")
    assert days[0] < 1, "ZoneMinder purged the 40-day-old event when the storage filled"

    async def closed_gap() -> dict[str, Any]:
        found = await rows(
            influx,
            "SELECT start_ts, end_ts, record_gap_s FROM record_gap WHERE camera = 'c2' "
            f"AND time >= {stopped_ns - 30 * S}",
        )
        latest = await rows(influx, "SELECT last(recorded_s) FROM record WHERE camera = 'c2'")
        # Closed once a later check saw recording again: an open gap ends at its check's time.
        done = [g for g in found if latest and g["end_ts"] < latest[0]["time"] - 2 * S]
        return done[0] if done else {}

    gap = await async_wait_for(closed_gap, timeout_s=3 * CHECK_S, what="c2's gap, ended")
    began_s = (gap["start_ts"] - stopped_ns) / S
    print(f"c2's gap: {gap['record_gap_s']} s, began {began_s:+.1f} s after the stop")
    assert abs(gap["record_gap_s"] - STOP_S) <= CHECK_S, gap
    assert abs(gap["start_ts"] - stopped_ns) <= 5 * S, (gap, stopped_ns)
    # Exactly the pause between ZoneMinder's own events (its database, to the second).
    spans = zoneminder.sql(
        "SELECT UNIX_TIMESTAMP(StartDateTime), COALESCE(UNIX_TIMESTAMP(EndDateTime), 0)"
        " FROM Events WHERE MonitorId = 2"
        f" AND StartDateTime >= FROM_UNIXTIME({stopped_ns // S - 600})"
        " ORDER BY StartDateTime"
    ).splitlines()
    events = [[int(float(t)) for t in line.split()] for line in spans]
    pause = max(([a[1], b[0]] for a, b in itertools.pairwise(events)), key=lambda p: p[1] - p[0])
    assert [gap["start_ts"] // S, gap["end_ts"] // S] == pause, events
    others = await rows(influx, "SELECT * FROM record_gap WHERE camera = 'c1' OR camera = 'c3'")
    assert others == [], "c1 and c3 recorded throughout"

    problems = await observe(influx)
    assert problems["recording_gap:s1/c2@zm1"].verdict is Verdict.BAD
    assert "s not recorded" in problems["recording_gap:s1/c2@zm1"].cause
    assert problems["recording_gap:s1/c1@zm1"].verdict is Verdict.GOOD
    assert problems["recording_gap:s1/c3@zm1"].verdict is Verdict.GOOD
    assert problems["retention:s1/c4@zm1"].verdict is Verdict.BAD
    assert "days kept, goal 30" in problems["retention:s1/c4@zm1"].cause
    assert problems["retention:s1/c1@zm1"].verdict is Verdict.GOOD

    availability = await _availability(influxd, database, tmp_path, stopped_ns)
    c1, c2, c3 = (availability[c] for c in ("c1", "c2", "c3"))
    assert c2 < c1 and c2 < c3, availability
    assert c1 == c3 == 1.0


def _adapter(url: str, *, timeout_s: float = 1.0, **login: str) -> ZoneminderAdapter:
    config = ZoneminderRecorder.model_validate(
        {"type": "zoneminder", "id": "zm1", "url": url, **login,
         "cameras": [{"camera": "c1", "channel": 1}, {"camera": "c9", "channel": 9}]}
    )  # fmt: skip
    return ZoneminderAdapter(config, DeviceChecksConfig.model_validate({"timeout_s": timeout_s}))


def _recordings(readings: list[Any]) -> dict[str, RecordingReading]:
    return {r.camera: r for kind, _, r in readings if kind == "recordings"}


async def _login_paths(zm: ZoneMinder) -> None:
    """Against the real server: no credentials while auth is on, a wrong password, auth off."""
    recs = _recordings(await _adapter(zm.url).check(time.time_ns()))
    assert "wants a login" in (recs["c1"].error or ""), recs
    wrong = _adapter(zm.url, username=USER, password="wrong")
    recs = _recordings(await wrong.check(time.time_ns()))
    assert "login refused: HTTP 401" in (recs["c1"].error or ""), recs
    await asyncio.to_thread(zm.sql, "UPDATE Config SET Value='0' WHERE Name='ZM_OPT_USE_AUTH'")
    try:
        recs = _recordings(await _adapter(zm.url).check(time.time_ns()))
    finally:
        await asyncio.to_thread(zm.sql, "UPDATE Config SET Value='1' WHERE Name='ZM_OPT_USE_AUTH'")
    assert recs["c1"].error is None and (recs["c1"].recorded_s or 0) > 0, recs
    assert recs["c9"].error == "the server has no monitor 9"  # yet


async def _paging(zm: ZoneMinder) -> None:
    """A monitor with 250 events of 8 s in the last hour (ZoneMinder pages by 100): every page
    is read, so exactly 2000 s are recorded."""
    events = ",".join(
        f"(9, 1, 'P{i}', 'Continuous', NOW() - INTERVAL {3000 - 10 * i} SECOND,"
        f" NOW() - INTERVAL {2992 - 10 * i} SECOND, 320, 240, 8, 40, 1)"
        for i in range(250)
    )
    await asyncio.to_thread(
        zm.sql,
        "INSERT INTO Monitors (Id, Name, Type, `Function`, Enabled, Path)"
        " VALUES (9, 'cam9', 'Ffmpeg', 'None', 0, 'rtsp://127.0.0.1:1/none');"
        "INSERT INTO Events (MonitorId, StorageId, Name, Cause, StartDateTime, EndDateTime,"
        f" Width, Height, Length, Frames, StateId) VALUES {events};",
    )
    adapter = _adapter(zm.url, timeout_s=5.0, username=USER, password=PASSWORD)
    recs = _recordings(await adapter.check(time.time_ns()))
    assert recs["c9"].recorded_s == 2000.0, recs["c9"]
    assert len(recs["c9"].gaps) == 2  # before the first event and after the last


async def _recorded(influx: InfluxClient, cameras: int) -> bool:
    found = await rows(influx, 'SELECT count("recorded_s") FROM record GROUP BY "camera"')
    return len(found) == cameras


async def _availability(
    influxd: InfluxProcess, database: str, tmp: Path, since_ns: int
) -> dict[str, float]:
    """Recording availability per camera from the API, over the window the gap lies in."""
    state_url = f"sqlite:///{tmp / 'state.sqlite'}"
    token = bearer(add_user(state_url, "admin", Role.ADMIN))
    start = dt.datetime.fromtimestamp(since_ns / S - 300, dt.UTC)
    params = {"from": start.isoformat(), "to": dt.datetime.now(dt.UTC).isoformat()}
    app = create_app(
        influx=InfluxSettings(url=influxd.url, database=database),
        state_url=state_url,
        default_probe_interval_s=10.0,
    )
    async with (
        serving(app) as url,
        httpx.AsyncClient(base_url=url, headers=token, timeout=30) as api,
    ):
        answer = await api.get("/api/availability", params=params)
    assert answer.status_code == 200, answer.text
    return {r["camera"]: r["recording_availability"] for r in answer.json()}


# Hostile answers, parsed alone (canned bodies as ZoneMinder 1.36 writes them).

UTC = dt.UTC


def test_events_page_parses_and_skips_undated_rows() -> None:
    body = json.dumps({
        "events": [
            {"Event": {"Id": 1, "MonitorId": 2, "StartDateTime": "2026-12-03 13:24:54",
                       "EndDateTime": "2026-12-03 13:25:06", "Length": "11.60", "Extra": [1]}},
            {"Event": {"Id": 2, "MonitorId": 2, "StartDateTime": "2026-12-03 13:25:32",
                       "EndDateTime": None, "Length": "0.00"}},
            {"Event": {"Id": 3, "MonitorId": 2, "StartDateTime": None}},
        ],
        "pagination": {"page": 1, "nextPage": True, "pageCount": 3},
    }).encode()  # fmt: skip
    wib = zm_json.zone("Asia/Jakarta")
    events, more = zm_json.events(body, wib)
    assert more and [e.id for e in events] == [1, 2]
    assert events[0].start == dt.datetime(2026, 12, 3, 6, 24, 54, tzinfo=UTC)  # WIB is UTC+7
    assert events[0].length_s == 11.6 and events[1].end is None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"<br />\n<b>Warning</b>: Trying to access array offset", "events"),
        (b'{"events": "none"}', "events"),
        (
            b'{"events": [{"Event": {"Id": 1, "MonitorId": 1, "StartDateTime": "yesterday"}}]}',
            "unreadable time",
        ),
        (
            b'{"success": false, "data": {"name": "Not Authenticated", "message": "Not '
            b'Authenticated"}}',
            "Not Authenticated",
        ),
        (b'{"events": [' + b'{"Event": {"Id": 1, "MonitorId": 1}},' * 1500 + b"{}]}", "events"),
        (b'{"events": [], "pagination": {"nextPage": "maybe"}}', "events"),
    ],
)
def test_hostile_events_answers_are_errors(body: bytes, says: str) -> None:
    """PHP warnings, wrong types, bad dates, error answers, 1500 rows: a ZmError naming it."""
    with pytest.raises(ZmError, match=says):
        zm_json.events(body, UTC)


def test_login_monitors_and_unknown_zone() -> None:
    assert zm_json.access_token(b'{"access_token": "abc", "access_token_expires": 7200}') == "abc"
    with pytest.raises(ZmError, match="API disabled for: admin"):
        zm_json.access_token(
            b'{"success": false, "data": {"name": "x", "message": "API disabled for: admin"}}'
        )
    monitors = zm_json.monitors(
        b'{"monitors": [{"Monitor": {"Id": 3, "Function": "Record", "Enabled": 1},'
        b' "Monitor_Status": {"Status": "Connected"}}, {"Monitor": {"Id": 4}}]}'
    )
    assert monitors[3].status == "Connected" and monitors[4].status is None
    with pytest.raises(ZmError, match="set the recorder's timezone"):
        zm_json.zone("Mars/Olympus")


class _HostileZm(LoopbackHttpServer):
    """Answers every request with a 10 MB body, silence or a PHP warning."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    async def handle_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        await reader.readuntil(b"\r\n\r\n")
        if self.mode == "silent":
            await reader.read()  # until the client gives up and closes
            return False
        body = b"x" * 10_000_000 if self.mode == "huge" else b"<br />\n<b>Warning</b>: oops"
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        return False


@pytest.mark.parametrize("mode", ["huge", "silent", "garbage"])
async def test_hostile_server_costs_only_its_verdict(mode: str) -> None:
    """10 MB answers (not announced), silence and PHP warnings: every camera gets an error,
    within the deadline."""
    server = _HostileZm(mode)
    await server.listen()
    try:
        started = time.monotonic()
        readings = await _adapter(f"http://127.0.0.1:{server.port}/zm").check(time.time_ns())
        took = time.monotonic() - started
    finally:
        await server.close()
    recs = _recordings(readings)
    assert set(recs) == {"c1", "c9"} and all(r.error for r in recs.values()), recs
    assert [k for k, _, _ in readings] == ["recordings", "recordings"]
    assert took < 3.5
