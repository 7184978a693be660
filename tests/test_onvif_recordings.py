"""The ONVIF Profile G recorder adapter against the simulated camera's search service
(simulators/onvif_recording_sim.py mounted in onvif_sim) over real HTTP: recorded seconds and
gaps, retention, paging to completion, and hostile search services."""

from __future__ import annotations

import datetime as dt
import time
from types import SimpleNamespace

import pytest
from lxml import etree

from cloud.influx import InfluxClient, InfluxSettings
from cloud.lineproto import batch_lines
from cloud.problems.config import RulesConfig
from cloud.problems.model import Verdict
from cloud.problems.observe import Observer
from devtools.localsvc import InfluxProcess
from edge_agent.config import AgentConfig
from edge_agent.devices.settings import DeviceChecksConfig, OnvifRecorder
from edge_agent.recorders.build import build_recorders
from edge_agent.recorders.onvif_profile_g import OnvifRecorderAdapter
from edge_agent.recorders.onvif_tracks import change_of, spans_of
from pantau.core.contract import ReadingBatch, RecordingReading
from simulators.onvif_recording_sim import RecordingStore, SearchMode, SimRecording
from simulators.onvif_sim import OnvifDevice, OnvifMode, OnvifSimulator
from tests.history import History, S

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
MINUTE = dt.timedelta(minutes=1)
HOLE = (NOW - 30 * MINUTE, NOW - 28 * MINUTE)


def card(token: str = "REC1", *, days: float = 12, hole: bool = True) -> SimRecording:
    """A card recording for ``days`` up to now, with ``HOLE`` missing if asked."""
    recording = SimRecording(token)
    if hole:
        recording.record(NOW - dt.timedelta(days=days), HOLE[0])
        recording.record(HOLE[1], NOW)
    else:
        recording.record(NOW - dt.timedelta(days=days), NOW)
    return recording


def adapter(
    sim: OnvifSimulator, cameras: list[dict[str, object]] | None = None, **limits: object
) -> OnvifRecorderAdapter:
    config = OnvifRecorder.model_validate(
        {
            "type": "onvif", "id": "card1", "host": "127.0.0.1", "port": sim.port,
            "username": "admin", "password": "secret",
            "cameras": cameras or [{"camera": "cam1", "retention_goal_days": 30}],
        }
    )  # fmt: skip
    settings = DeviceChecksConfig.model_validate({"timeout_s": 3.0, **limits})
    return OnvifRecorderAdapter(config, settings, poll_pause_s=0.02)


async def check(sim: OnvifSimulator, **kwargs: object) -> dict[str, RecordingReading]:
    readings = await adapter(sim, **kwargs).check(int(NOW.timestamp() * 1e9))  # type: ignore[arg-type]
    assert all(kind == "recordings" for kind, _, _ in readings)
    return {r.camera: r for _, _, r in readings}


async def test_gap_and_recorded_seconds_exactly_as_recorded() -> None:
    """A 2-minute hole half an hour ago: one gap with its start and end to the second, the
    rest of the hour recorded, retention from the earliest recording (12 days)."""
    store = RecordingStore([card()])
    async with OnvifSimulator(OnvifDevice(recordings=store)) as sim:
        cam1 = (await check(sim))["cam1"]
    assert cam1.error is None, cam1.error
    assert [(g.start_ts, g.end_ts) for g in cam1.gaps] == [
        (int(HOLE[0].timestamp() * 1e9), int(HOLE[1].timestamp() * 1e9))
    ]
    assert cam1.recorded_s == pytest.approx(3600 - 120, abs=1.0)
    assert cam1.oldest_ts == int((NOW - dt.timedelta(days=12)).timestamp() * 1e9)
    assert cam1.retention_days == pytest.approx(12, abs=0.001)
    assert cam1.retention_goal_days == 30
    # Every search was ended on the device.
    assert store.searches == {} and len(store.ended) == 2


async def test_credentials_go_with_every_call() -> None:
    """A camera that refuses any request without a UsernameToken (even the time, which ONVIF
    allows anonymously) still gives its recording: every search call carried credentials."""
    device = OnvifDevice(recordings=RecordingStore([card()]), mode=OnvifMode.AUTH_EVERY_CALL)
    async with OnvifSimulator(device) as sim:
        cam1 = (await check(sim))["cam1"]
    assert cam1.error is None and len(cam1.gaps) == 1
    assert device.recordings is not None and "GetEventSearchResults" in device.recordings.calls


async def test_recording_that_stopped_shows_the_gap_up_to_now() -> None:
    """Recording stopped 20 minutes ago (no event since): a gap from then to the window's end."""
    recording = SimRecording("REC1")
    recording.record(NOW - dt.timedelta(days=3), NOW - 20 * MINUTE)
    async with OnvifSimulator(OnvifDevice(recordings=RecordingStore([recording]))) as sim:
        cam1 = (await check(sim))["cam1"]
    assert cam1.recorded_s == pytest.approx(40 * 60, abs=1.0)
    assert len(cam1.gaps) == 1
    assert cam1.gaps[0].start_ts == int((NOW - 20 * MINUTE).timestamp() * 1e9)
    assert cam1.retention_days == pytest.approx(3, abs=0.001)


async def test_window_is_placed_on_the_devices_clock() -> None:
    """A camera whose clock is an hour behind writes its recording on its own clock: the window
    is judged there, so the hole (in its time) is found, not an hour of nothing."""
    behind = dt.timedelta(hours=1)
    recording = SimRecording("REC1")
    recording.record(NOW - behind - dt.timedelta(days=2), HOLE[0] - behind)
    recording.record(HOLE[1] - behind, NOW - behind)
    device = OnvifDevice(recordings=RecordingStore([recording]), clock_offset_s=-3600)
    async with OnvifSimulator(device) as sim:
        cam1 = (await check(sim))["cam1"]
    assert [(g.start_ts, g.end_ts) for g in cam1.gaps] == [
        (int((HOLE[0] - behind).timestamp() * 1e9), int((HOLE[1] - behind).timestamp() * 1e9))
    ]
    assert cam1.recorded_s == pytest.approx(3600 - 120, abs=1.5)
    assert cam1.retention_days == pytest.approx(2, abs=0.001)


async def test_device_without_event_search_is_judged_by_its_track_range() -> None:
    """FindEvents refused: the track's DataFrom/DataTo still show a recording that stopped
    20 minutes ago (a gap inside the range cannot be seen this way)."""
    recording = SimRecording("REC1")
    recording.record(NOW - dt.timedelta(days=5), NOW - 20 * MINUTE)
    store = RecordingStore([recording], event_search=False)
    async with OnvifSimulator(OnvifDevice(recordings=store)) as sim:
        cam1 = (await check(sim))["cam1"]
    assert "GetEventSearchResults" not in store.calls
    assert cam1.error is None and cam1.recorded_s == pytest.approx(40 * 60, abs=1.0)
    assert [g.start_ts for g in cam1.gaps] == [int((NOW - 20 * MINUTE).timestamp() * 1e9)]
    assert cam1.retention_days == pytest.approx(5, abs=0.001)


async def test_paging_to_completion_across_batches() -> None:
    """Seven recordings and the camera's events come in batches of at most two after a first
    empty "Searching" poll: every batch is fetched, the right recording found by token."""
    recordings = [card(f"REC{i}", hole=False) for i in range(1, 8)]
    recordings[5] = card("REC6", days=40)
    store = RecordingStore(recordings, batch_max=2)
    cameras: list[dict[str, object]] = [
        {"camera": "cam1", "recording": "REC6"},
        {"camera": "cam2", "recording": "REC2"},
    ]
    async with OnvifSimulator(OnvifDevice(recordings=store)) as sim:
        readings = await check(sim, cameras=cameras)
    assert store.calls.count("GetRecordingSearchResults") == 1 + 4  # empty, then 2+2+2+1
    assert store.calls.count("GetEventSearchResults") >= 1 + 2  # 3 events for cam1, 2 a batch
    assert readings["cam1"].retention_days == pytest.approx(40, abs=0.001)
    assert len(readings["cam1"].gaps) == 1
    assert readings["cam2"].gaps == [] and readings["cam2"].retention_days == pytest.approx(12)


async def test_search_that_never_completes_ends_at_the_deadline_as_unknown() -> None:
    """ "Searching" forever: the check ends at its deadline, each camera's reading says why
    and carries no numbers (its recording verdict is unknown), nothing raises."""
    store = RecordingStore([card()], mode=SearchMode.NEVER_COMPLETES)
    async with OnvifSimulator(OnvifDevice(recordings=store)) as sim:
        started = time.monotonic()
        cam1 = (await check(sim, timeout_s=1.0))["cam1"]
        took = time.monotonic() - started
    assert 1.0 <= took < 1.0 + 3.5, took  # the deadline, plus EndSearch's own bound
    assert cam1.recorded_s is None and cam1.retention_days is None and cam1.gaps == []
    assert cam1.error == "the recording search did not complete within 1 s"
    assert store.calls.count("GetRecordingSearchResults") > 3
    assert "EndSearch" in store.calls  # the device's search session is given back


@pytest.mark.parametrize(
    ("mode", "device_mode", "words"),
    [
        (SearchMode.MALFORMED, OnvifMode.NORMAL, "carried no search token"),
        (SearchMode.HUGE, OnvifMode.NORMAL, "bytes"),
        (SearchMode.NORMAL, OnvifMode.MALFORMED, "XMLSyntaxError"),
        (SearchMode.NORMAL, OnvifMode.SILENT, "no complete answer within 1 s"),
        (SearchMode.NORMAL, OnvifMode.HUGE, "bytes"),
    ],
)
async def test_hostile_search_services_cost_only_the_verdict(
    mode: SearchMode, device_mode: OnvifMode, words: str
) -> None:
    """Malformed XML, an answer of 10 MB or more, silence: an error within the deadline."""
    store = RecordingStore([card()], mode=mode)
    async with OnvifSimulator(OnvifDevice(recordings=store, mode=device_mode)) as sim:
        started = time.monotonic()
        cam1 = (await check(sim, timeout_s=1.0))["cam1"]
    assert time.monotonic() - started < 4.5
    assert cam1.recorded_s is None and cam1.error is not None
    assert words in cam1.error, cam1.error


async def test_too_many_results_in_batches_are_refused() -> None:
    """A device that keeps paging out recordings is stopped at the cap, not followed."""
    store = RecordingStore([card(f"R{i}", hole=False) for i in range(600)], batch_max=200)
    async with OnvifSimulator(OnvifDevice(recordings=store)) as sim:
        cam1 = (await check(sim, timeout_s=5.0))["cam1"]
    assert cam1.error is not None and "more than 512 results" in cam1.error


async def test_several_recordings_without_a_token_says_what_to_do() -> None:
    store = RecordingStore([card("A"), card("B")])
    async with OnvifSimulator(OnvifDevice(recordings=store)) as sim:
        cam1 = (await check(sim))["cam1"]
    assert cam1.error is not None and "recording token" in cam1.error


async def test_device_without_search_service() -> None:
    async with OnvifSimulator(OnvifDevice()) as sim:
        cam1 = (await check(sim))["cam1"]
    assert cam1.error == "the device offers no ONVIF search service (Profile G)"


def test_site_config_takes_an_onvif_recorder() -> None:
    """``type: onvif`` beside ``type: hikvision`` in site.yaml builds the Profile G adapter;
    several cameras need their recording tokens."""
    base = {
        "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
        "broker": {"url": "mqtt://127.0.0.1:1883"},
        "queue": {"path": "/tmp/q.sqlite"},  # never opened
        "cameras": [{"id": "cam1", "rtsp_url": "rtsp://10.0.0.2/s"}],
        "recorders": [
            {"type": "onvif", "id": "card1", "host": "10.0.0.2",
             "cameras": [{"camera": "cam1", "retention_goal_days": 14}]},
        ],
    }  # fmt: skip
    config = AgentConfig.model_validate(base)
    assert [type(r).__name__ for r in build_recorders(config)] == ["OnvifRecorderAdapter"]
    recorder = base["recorders"][0]  # type: ignore[index]
    recorder["cameras"] = [{"camera": "cam1"}, {"camera": "cam2"}]
    base["cameras"].append({"id": "cam2", "rtsp_url": "rtsp://10.0.0.3/s"})  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="give each its recording token"):
        AgentConfig.model_validate(base)


def change(at: dt.datetime, flag: str, value: str, *, start: bool = False) -> object:
    """A ``FindEventResult`` as zeep hands it out: its message parsed, or left as XML."""
    topic = "tns1:RecordingHistory/" + ("Track" if flag == "IsDataPresent" else "Recording")
    message = etree.fromstring(
        '<tt:Message xmlns:tt="http://www.onvif.org/ver10/schema"><tt:Source/><tt:Data>'
        f'<tt:SimpleItem Name="{flag}" Value="{value}"/></tt:Data></tt:Message>'
    )
    event = SimpleNamespace(
        Topic=SimpleNamespace(_value_1=topic + "/State"), Message=SimpleNamespace(_value_1=message)
    )
    return SimpleNamespace(Time=at.replace(tzinfo=None), Event=event, StartStateEvent=start)


def test_spans_without_a_start_state_and_from_recording_state() -> None:
    """No start state: a first "stopped" means it recorded before; ``IsRecording`` serves when no
    track event came; naive times are UTC; a repeated state changes nothing."""
    start, end = NOW - 60 * MINUTE, NOW
    results = [
        change(NOW - 50 * MINUTE, "IsRecording", "false"),
        change(NOW - 45 * MINUTE, "IsRecording", "false"),
        change(NOW - 40 * MINUTE, "IsRecording", "true"),
        change(NOW - 30 * MINUTE, "Other", "true"),
    ]
    changes = [c for c in map(change_of, results) if c is not None]
    assert len(changes) == 3
    assert spans_of(changes, start, end, None) == [
        (start, NOW - 50 * MINUTE),
        (NOW - 40 * MINUTE, end),
    ]
    # A track event wins over recording events; the open span stops at the track's last data.
    track = change_of(change(NOW - 55 * MINUTE, "IsDataPresent", "true", start=False))
    assert track is not None
    assert spans_of([*changes, track], start, end, NOW - 5 * MINUTE) == [
        (NOW - 55 * MINUTE, NOW - 5 * MINUTE)
    ]
    assert spans_of([], start, end, None) is None


async def test_card_gap_becomes_a_recording_gap_problem(
    influxd: InfluxProcess, database: str
) -> None:
    """The adapter's readings, stored as the collector stores them, raise "recording gap" for
    the card's 2-minute hole (with its start and end) and "retention below goal" for 12 days
    kept of 30, as a Hikvision recorder's would."""
    store = RecordingStore([card()])
    async with OnvifSimulator(OnvifDevice(recordings=store)) as sim:
        readings = await adapter(sim).check(int(NOW.timestamp() * 1e9))
    stamped = [r.model_copy(update={"ts": int(NOW.timestamp() * 1e9)}) for _, _, r in readings]
    history = History(int(NOW.timestamp() * 1e9) - 1800 * S, step_s=60)
    history.collector(0, 1860)
    history.site("s1", "d1", 0, 1860)
    history.lines += batch_lines(ReadingBatch(site="s1", district="d1", recordings=stamped))
    async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
        await history.write(influx)
        observations = await Observer(influx, RulesConfig()).observe(history.at(1801))
    found = {o.key: o for o in observations}
    gap = found["recording_gap:s1/cam1@card1"]
    assert gap.verdict is Verdict.BAD and gap.cause.startswith("120 s not recorded"), gap.cause
    assert gap.details["gaps"] == [
        {"start_ns": int(HOLE[0].timestamp() * 1e9), "end_ns": int(HOLE[1].timestamp() * 1e9)}
    ]
    retention = found["retention:s1/cam1@card1"]
    assert retention.verdict is Verdict.BAD and "12.0 days kept, goal 30" in retention.cause
