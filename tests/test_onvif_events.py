"""ONVIF events through a PullPoint subscription (edge_agent/devices/onvif_events.py) against the
project's simulator over real HTTP (simulators/onvif_events_sim.py): each event raises its
state, a reboot is noticed and the watch subscribes again, a one-shot tamper is cleared after
the hold, the termination-time pitfalls, hostile event services that cost only their camera's
event verdict; the topic mapping on canned XML; the problems the cloud raises from them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from collections.abc import AsyncIterator, Callable

import pytest
from onvif import ONVIFCamera
from zeep.loader import parse_xml

from edge_agent.devices.onvif_check import OnvifTarget, check_onvif
from edge_agent.devices.onvif_events import EventSettings, EventSnapshot, EventWatch
from edge_agent.devices.onvif_topics import (
    Change,
    EventKind,
    EventState,
    Notice,
    notices,
    read_notice,
    topic_key,
)
from simulators.onvif_events_sim import CameraEvents, EventsHostility
from simulators.onvif_sim import OnvifDevice, OnvifMode, OnvifSimulator
from tests.helpers import async_wait_for

FAST = EventSettings(
    subscription_s=10.0, pull_timeout_s=1.0, call_timeout_s=2.0, hold_s=2.0, retry_max_s=2.0
)


@contextlib.asynccontextmanager
async def watching(
    events: CameraEvents,
    settings: EventSettings = FAST,
    device: OnvifDevice | None = None,
) -> AsyncIterator[tuple[EventWatch, OnvifSimulator]]:
    """A simulated camera with ``events`` and a running watch of it."""
    device = device or OnvifDevice()
    device.events = events
    async with OnvifSimulator(device) as sim:
        target = OnvifTarget("cam1", "127.0.0.1", sim.port, "admin", "pw")
        watch = EventWatch(target, settings, now_ns=time.time_ns)
        task = asyncio.create_task(watch.run(), name="watch")
        try:
            yield watch, sim
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def until(watch: EventWatch, test: Callable[[EventSnapshot], bool], what: str) -> None:
    async def check() -> bool:
        return test(watch.snapshot())

    await async_wait_for(check, timeout_s=15, interval_s=0.05, what=f"{what} ({watch.snapshot()})")


def live(s: EventSnapshot) -> bool:
    return s.events_ok


async def test_each_event_raises_and_ends() -> None:
    """Signal loss, storage failure and a stateful tamper each appear and end with the camera."""
    events = CameraEvents()
    settings = dataclasses.replace(FAST, one_shot=frozenset())
    async with watching(events, settings) as (watch, _):
        await until(watch, live, "a live subscription")
        assert watch.snapshot().events == ()
        events.set_signal_loss(True)
        await until(watch, lambda s: s.events == ("signal_loss",), "signal loss")
        events.set_storage_failure(True)
        await until(watch, lambda s: s.events == ("signal_loss", "storage_failure"), "storage")
        events.set_tamper(True)
        await until(watch, lambda s: "tamper" in s.events, "tamper")
        assert watch.snapshot().events_held == ()  # a state with an end: not held
        events.set_signal_loss(False)
        events.set_tamper(False)
        await until(watch, lambda s: s.events == ("storage_failure",), "both ended")
    assert events.subscriptions == 1


async def test_state_already_active_at_subscription() -> None:
    """A camera whose card failed before pantau subscribed says so (Initialized)."""
    events = CameraEvents(storage_failure=True)
    async with watching(events) as (watch, _):
        await until(watch, lambda s: s.events == ("storage_failure",), "storage failure")


async def test_one_shot_tamper_is_cleared_after_the_hold(caplog: pytest.LogCaptureFixture) -> None:
    """A tamper pulse (never an end) is held 2 s after its last report, then cleared by pantau,
    which says so in the reading (``events_held``) and the log."""
    caplog.set_level(logging.INFO, logger="edge_agent.devices.onvif_topics")
    events = CameraEvents(one_shot_tamper=True)
    async with watching(events) as (watch, _):
        await until(watch, live, "a live subscription")
        events.set_tamper(True)
        await until(watch, lambda s: s.events == ("tamper",), "tamper")
        seen = time.monotonic()
        assert watch.snapshot().events_held == ("tamper",)
        events.set_tamper(True)  # reported again: the hold starts again
        await asyncio.sleep(0.5)
        again = time.monotonic()
        await until(watch, lambda s: s.events == (), "tamper cleared")
        cleared = time.monotonic()
    assert cleared - again >= FAST.hold_s - 0.6  # from the last report, not the first
    assert cleared - seen < FAST.hold_s + 0.5 + 2 * FAST.pull_timeout_s + 1
    assert "tamper cleared by pantau 2 s after the camera's last report" in caplog.text


@pytest.mark.parametrize("tells_boot", [True, False], ids=["last_reboot", "silent_then_gone"])
async def test_reboot_resubscribes_and_is_reported(tells_boot: bool) -> None:
    """A reboot drops the subscription; the watch subscribes again and reports when the camera
    started: from its LastReboot event, or (a camera that sends none) from the subscription
    gone after it went silent."""
    events = CameraEvents(report_reboot=tells_boot)
    async with watching(events) as (watch, _):
        await until(watch, live, "a live subscription")
        first = watch.snapshot().rebooted_ns
        assert (first is not None) == tells_boot  # the boot time known at once if told
        before = time.time_ns()
        events.reboot(down_s=1.0)
        await until(watch, lambda s: s.events_ok and (s.rebooted_ns or 0) > before - 1e9, "reboot")
        after = time.time_ns()
        rebooted = watch.snapshot().rebooted_ns
        assert rebooted is not None and before - 1e9 < rebooted < after + 2e9
        events.set_signal_loss(True)  # the new subscription delivers
        await until(watch, lambda s: s.events == ("signal_loss",), "events after the reboot")
    assert events.created == 2 and watch.subscriptions == 2


async def test_boot_time_follows_the_agents_clock() -> None:
    """The camera's start (a day ago by its uptime) is told on the agent's clock at each reading,
    so a correction of that clock (edge_agent/clock.py) moves it as it moves ``ts``."""
    shift = {"ns": 0}
    events = CameraEvents()
    async with OnvifSimulator(OnvifDevice(events=events)) as sim:
        target = OnvifTarget("cam1", "127.0.0.1", sim.port, "admin", "pw")
        watch = EventWatch(target, FAST, now_ns=lambda: time.time_ns() + shift["ns"])
        task = asyncio.create_task(watch.run(), name="watch")
        try:
            await until(watch, lambda s: s.rebooted_ns is not None, "the boot time")
            before = watch.snapshot().rebooted_ns or 0
            shift["ns"] = 600 * 10**9
            after = watch.snapshot().rebooted_ns or 0
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert abs(before - (time.time_ns() - 86400 * 10**9)) < 5 * 10**9
    assert abs(after - before - 600 * 10**9) < 10**9


async def test_dropped_subscriptions_are_replaced_without_a_reboot() -> None:
    """A camera that drops every subscription while it answers (table full) gets a new one,
    and no reboot is reported."""
    events = CameraEvents(report_reboot=False, no_unsubscribe=True)
    async with watching(events) as (watch, _):
        await until(watch, live, "a live subscription")
        events.drop_subscriptions()  # never silent
        await until(watch, lambda _: watch.subscriptions == 2 and watch.pulls > 2, "resubscribed")
        events.set_tamper(True)
        await until(watch, lambda s: s.events == ("tamper",), "events after the drop")
        assert watch.snapshot().rebooted_ns is None
    assert "Unsubscribe" not in events.actions


@pytest.mark.slow  # outlives a 10 s subscription span
async def test_renewals_in_seconds() -> None:
    """A camera that takes only ``PT<n>S`` is renewed before its 10 s lapse and keeps its one
    subscription for 14 s."""
    events = CameraEvents(seconds_only=True)
    async with watching(events) as (watch, _):
        await until(watch, live, "a live subscription")
        await asyncio.sleep(14)
        events.set_signal_loss(True)
        await until(watch, lambda s: s.events == ("signal_loss",), "events after renewals")
    assert events.actions.count("Renew") >= 1 and events.created == 1  # outlived its 10 s
    assert all(re.fullmatch(r"PT10S", t) for t in events.times_asked), events.times_asked


@pytest.mark.slow  # waits through renewals of 10 s and 60 s spans
@pytest.mark.parametrize(
    ("pitfall", "span_s"),
    # Asked 60 s, a camera misreading durations grants 10 s.
    [("absolute_only", 10.0), ("durations_misread", 60.0)],
)
async def test_cameras_wanting_zulu_datetimes(pitfall: str, span_s: float) -> None:
    """A camera that refuses durations, or misreads them, is asked Zulu dateTimes on its own
    clock (an hour ahead here), and keeps its subscription through renewals."""
    events = CameraEvents(zulu_only=True, clock_offset_s=3600, **{pitfall: True})
    device = OnvifDevice(clock_offset_s=3600)
    settings = dataclasses.replace(FAST, subscription_s=span_s)
    async with watching(events, settings, device) as (watch, _):
        await until(watch, live, "a live subscription")
        await asyncio.sleep(9)
        events.set_signal_loss(True)
        await until(watch, lambda s: s.events == ("signal_loss",), "events after renewals")
    zulu = [t for t in events.times_asked if t.endswith("Z")]
    assert zulu and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in zulu)
    assert events.actions.count("Renew") >= 1 and events.created == 1


async def test_auth_on_every_call_and_a_far_clock() -> None:
    """Events from a camera that wants credentials on every call and runs a day ahead."""
    events = CameraEvents(clock_offset_s=86400)
    device = OnvifDevice(mode=OnvifMode.AUTH_EVERY_CALL, clock_offset_s=86400)
    async with watching(events, device=device) as (watch, _):
        await until(watch, live, "a live subscription")
        events.set_storage_failure(True)
        await until(watch, lambda s: s.events == ("storage_failure",), "storage failure")


async def test_hostile_event_services_cost_only_their_verdict() -> None:
    """Malformed XML, 10 MB answers and silence from the event service, beside a good camera:
    each hostile camera's event verdict is an error within its deadline, its device check
    still answers, and the good camera's events flow."""
    hostile = [EventsHostility.MALFORMED, EventsHostility.HUGE, EventsHostility.SILENT]
    good = CameraEvents()
    async with contextlib.AsyncExitStack() as stack:
        watches = []
        for events in [good, *(CameraEvents(hostility=h) for h in hostile)]:
            watch, sim = await stack.enter_async_context(watching(events))
            watches.append((watch, sim))
        started = time.monotonic()
        for watch, _ in watches[1:]:
            await until(watch, lambda s: s.events_error not in (None, "not subscribed yet"), "err")
        took = time.monotonic() - started
        await until(watches[0][0], live, "the good camera's subscription")
        good.set_tamper(True)
        await until(watches[0][0], lambda s: s.events == ("tamper",), "good camera's tamper")
        errors = [w.snapshot().events_error or "" for w, _ in watches[1:]]
        checks = [
            await check_onvif(w.target, now_ns=time.time_ns, timeout_s=2, max_bytes=2_000_000)
            for w, _ in watches[1:]
        ]
    assert "XMLSyntaxError" in errors[0] or "XMLParseError" in errors[0], errors
    assert "2000000" in errors[1] and "no subscription within 4 s" in errors[2], errors
    assert all(not w.snapshot().events_ok for w, _ in watches[1:])
    assert all(c.ok and c.serial == "SC200-0001" for c in checks)
    assert took < 2 * FAST.call_timeout_s + 4  # the setup's deadline, and a loaded machine


CANNED = """<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
 xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"
 xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tns1="http://www.onvif.org/ver10/topics"
 xmlns:tnsaxis="http://www.axis.com/2009/event/topics"><env:Body><tev:PullMessagesResponse>
<tev:CurrentTime>2026-03-01T05:00:00Z</tev:CurrentTime>
<tev:TerminationTime>2026-03-01T05:05:00Z</tev:TerminationTime>
{messages}</tev:PullMessagesResponse></env:Body></env:Envelope>"""


def _message(topic: str, data: str, operation: str | None = "Changed") -> str:
    op = f' PropertyOperation="{operation}"' if operation else ""
    return (
        f"<wsnt:NotificationMessage><wsnt:Topic Dialect='x'>{topic}</wsnt:Topic><wsnt:Message>"
        f'<tt:Message UtcTime="2026-03-01T05:00:00Z"{op}><tt:Source/><tt:Data>{data}'
        "</tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>"
    )


def _item(name: str, value: str) -> str:
    return f'<tt:SimpleItem Name="{name}" Value="{value}"/>'


@pytest.fixture(scope="module")
def parse_pull() -> Callable[[str], object]:
    """The library's own parsing of a PullMessages answer (as it parses a camera's)."""

    async def operation() -> object:
        camera = ONVIFCamera("127.0.0.1", 1, "u", "p", no_cache=True)
        camera.xaddrs["http://www.onvif.org/ver10/events/wsdl/PullPointSubscription"] = "http://x"
        service = await camera.create_pullpoint_service()
        op = service.document.bindings[service.binding_name].get("PullMessages")
        await camera.close()
        return op

    op = asyncio.run(operation())
    return lambda xml: op.process_reply(parse_xml(xml.encode(), None))  # type: ignore[attr-defined]


def test_topic_mapping_on_canned_xml(parse_pull: Callable[[str], object]) -> None:
    """Standard topics and brand variants map to pantau's events; unknown topics and odd values
    are left out; pulses are told from properties."""
    messages = [
        _message("tns1:VideoSource/SignalLoss", _item("State", "true")),
        _message("tns1:VideoSource/GlobalSceneChange/ImagingService", _item("State", "true"), None),
        _message("tns1:RuleEngine/TamperDetector/Tamper", _item("IsTamper", "false")),
        _message("tnsaxis:VideoSource/Tampering", _item("LensBlocked", "1")),
        _message("tns1:Device/HardwareFailure/StorageFailure", _item("Failed", "true")),
        _message(
            "tns1:Monitoring/OperatingTime/LastReboot",
            _item("Status", "2026-03-01T04:00:00Z"),
            "Initialized",
        ),
        _message("tns1:VideoSource/MotionAlarm", _item("State", "true")),
        _message("tns1:VideoSource/SignalLoss", _item("State", "maybe")),
        _message("tns1:VideoSource/SignalLoss", _item("State", "true"), "Deleted"),
    ]
    answer = parse_pull(CANNED.format(messages="".join(messages)))
    found = notices(answer)
    assert len(found) == 9
    changes = [read_notice(n) for n in found]
    assert changes[0] == Change(EventKind.SIGNAL_LOSS, active=True)
    assert changes[1] == Change(EventKind.TAMPER, active=True, pulse=True)
    assert changes[2] == Change(EventKind.TAMPER, active=False)
    assert changes[3] == Change(EventKind.TAMPER, active=True)
    assert changes[4] == Change(EventKind.STORAGE_FAILURE, active=True)
    assert changes[5] is not None and changes[5].booted is not None
    assert changes[5].booted.isoformat() == "2026-03-01T04:00:00+00:00"
    assert changes[6:] == [None, None, None]


def test_topic_keys() -> None:
    assert topic_key("tns1:VideoSource/SignalLoss/") == "videosource/signalloss"
    assert topic_key("tns1:Device/tnshik:HardwareFailure/StorageFailure") == (
        "device/hardwarefailure/storagefailure"
    )
    assert read_notice(Notice("tns1:VideoSource/SignalLoss", None, {})) is None


def test_event_state_holds_one_shots_and_keeps_states() -> None:
    """A pulse or a one-shot kind is held ``hold_s`` from its last report; a state is kept
    until the camera ends it."""
    state = EventState(hold_s=10, one_shot=frozenset({EventKind.TAMPER}))
    assert state.apply([Change(EventKind.TAMPER, active=True)], now=0)
    assert state.apply([Change(EventKind.SIGNAL_LOSS, active=True, pulse=True)], now=1)
    assert state.apply([Change(EventKind.STORAGE_FAILURE, active=True)], now=1)
    assert state.view() == (["signal_loss", "storage_failure", "tamper"], ["signal_loss", "tamper"])
    assert not state.apply([Change(EventKind.TAMPER, active=True)], now=5)  # renewed hold
    assert not state.expire(now=10.5)
    assert state.expire(now=11)  # the signal-loss pulse, reported at 1
    assert state.view() == (["storage_failure", "tamper"], ["tamper"])
    assert state.expire(now=15)
    assert state.view() == (["storage_failure"], [])
    assert state.expire(now=10_000) is False  # a state is never cleared by pantau
    assert state.apply([Change(EventKind.STORAGE_FAILURE, active=False)], now=10_001)
    assert state.view() == ([], [])
