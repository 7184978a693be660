"""One camera's ONVIF events through a PullPoint subscription (ONVIF Event Service, 9.1):
``CreatePullPointSubscription``, then ``PullMessages`` long polls, ``Renew`` before the
subscription lapses, a new subscription when it is gone.

The calls go straight to the events service through ``onvif-zeep-async``'s client (its
``PullPointManager`` renews in fire-and-forget tasks; pantau owns its tasks), on the device
checks' bounded session: every answer is size-limited, every call has a deadline, and whatever
goes wrong is this camera's event verdict (``events_ok=False`` with ``events_error``), never the
agent's exception.

Field pitfalls: credentials on every call (WS-Security timestamps in the camera's clock);
termination times asked in whole seconds (``PT300S``), and as a Zulu ``xs:dateTime`` on the
camera's clock for cameras that refuse durations or misread them; no ``Unsubscribe`` at all
(subscriptions are asked short and lapse, so cameras that cannot unsubscribe, or drop every
subscription when their table is full, are not filled); a subscription that vanishes is
replaced. A camera that rebooted is told by its ``LastReboot`` event (boot time against its
``CurrentTime``: its uptime, whatever its clock says) or, where it sends none, by a
subscription gone after the camera stopped answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import zeep.exceptions
from onvif import ONVIFService
from onvif.util import normalize_url

from edge_agent.devices.answers import capped_session
from edge_agent.devices.onvif_check import OnvifTarget
from edge_agent.devices.onvif_client import (
    DEVICE_ERRORS,
    BoundedCamera,
    close_camera,
    system_time,
)
from edge_agent.devices.onvif_time import camera_utc
from edge_agent.devices.onvif_topics import EventKind, EventState, notices, read_notice

if TYPE_CHECKING:
    from edge_agent.config import AgentConfig

log = logging.getLogger(__name__)

EVENTS_NS = "http://www.onvif.org/ver10/events/wsdl"
PULLPOINT_NS = f"{EVENTS_NS}/PullPointSubscription"
CONTACT_ERRORS = (aiohttp.ClientConnectionError, TimeoutError, OSError)
# A boot time read again within this of the one known is the same boot: both times are whole
# seconds on the camera's clock, and the answer's trip is short.
REBOOT_TOLERANCE_S = 5.0
# Renew when this share of the granted span is left (and never later than one pull before).
RENEW_AT_LEFT = 0.3
MESSAGE_LIMIT = 100


class EventsUnavailableError(Exception):
    """The camera offers no event service, or refused a subscription."""


@dataclass(frozen=True, slots=True)
class EventSettings:
    """How one camera's events are watched (``devices.events`` in the agent's config)."""

    subscription_s: float = 300.0
    pull_timeout_s: float = 10.0
    call_timeout_s: float = 10.0
    hold_s: float = 600.0
    one_shot: frozenset[EventKind] = frozenset({EventKind.TAMPER})
    max_bytes: int = 2_000_000
    retry_max_s: float = 300.0


@dataclass(frozen=True, slots=True)
class EventSnapshot:
    """What a device reading says about the camera's events."""

    events_ok: bool
    events: tuple[str, ...] = ()
    events_held: tuple[str, ...] = ()
    events_error: str | None = None
    rebooted_ns: int | None = None

    def fields(self) -> dict[str, Any]:
        """The ``DeviceReading`` fields."""
        return {
            "events_ok": self.events_ok,
            "events": list(self.events) if self.events_ok else [],
            "events_held": list(self.events_held) if self.events_ok else [],
            "events_error": self.events_error,
            "rebooted_ns": self.rebooted_ns,
        }


@dataclass(slots=True)
class _Sub:
    """A live subscription: its services and when it lapses (monotonic)."""

    pull: ONVIFService
    manager: ONVIFService
    expires: float
    renew_at: float
    camera_now: dt.datetime | None


class EventWatch:
    """Watches one camera's events forever (``run``); ``snapshot`` is its verdict now."""

    def __init__(
        self,
        target: OnvifTarget,
        settings: EventSettings,
        *,
        now_ns: Callable[[], int],
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.target = target
        self.settings = settings
        self._now_ns = now_ns
        self.on_change = on_change  # called with the camera id when its verdict changes
        # Shared by a site's watches and checks: subscribing loads the client's WSDL documents,
        # and first loads at once each parse their own copy (measured: 50 cameras subscribing
        # at once peaked at 300 MB).
        self.slots: asyncio.Semaphore | None = None
        self._state = EventState(settings.hold_s, settings.one_shot, camera=target.camera)
        self._snapshot = EventSnapshot(events_ok=False, events_error="not subscribed yet")
        self._absolute = False  # the camera wants termination times as xs:dateTime
        self._dt_diff = dt.timedelta(0)  # camera clock minus the agent's system clock
        # Boot and silence on the monotonic clock: ``snapshot`` turns the boot into the agent's
        # clock at each reading, so it follows that clock's corrections as ``ts`` does (the
        # internal snapshot's ``rebooted_ns`` is monotonic).
        self._rebooted_ns: int | None = None
        self._lost_at_ns: int | None = None  # when the camera stopped answering
        self._suspect_reboot_ns: int | None = None
        self.subscriptions = 0  # made (tests)
        self.pulls = 0  # answered (tests)

    def snapshot(self) -> EventSnapshot:
        """The camera's event verdict now (``rebooted_ns`` on the agent's clock)."""
        if self._snapshot.rebooted_ns is None:
            return self._snapshot
        ago_ns = time.monotonic_ns() - self._snapshot.rebooted_ns
        return dataclasses.replace(self._snapshot, rebooted_ns=self._now_ns() - ago_ns)

    async def run(self) -> None:
        """Subscribe, pull and renew; a new subscription after each loss, backing off on
        errors (capped, jittered)."""
        failures = 0
        while True:
            try:
                await self._subscribed()
                failures = 0
            except EventsUnavailableError as exc:
                self._fail(str(exc))
                failures = max(failures + 1, 8)
            except DEVICE_ERRORS as exc:  # one camera's trouble, never the agent's
                log.info("camera %s events: %s", self.target.camera, _describe(exc))
                self._fail(_describe(exc))
                failures += 1
            delay = min(self.settings.retry_max_s, 0.5 * 2**failures) if failures else 0.2
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # jitter

    async def _subscribed(self) -> None:
        """One subscription's life; returns when it is gone or lapsed."""
        s = self.settings
        session = capped_session(
            max_bytes=s.max_bytes, timeout_s=s.pull_timeout_s + s.call_timeout_s
        )
        t = self.target
        camera = BoundedCamera(t.host, t.port, t.username, t.password, session)
        try:
            async with (
                self.slots or contextlib.nullcontext(),
                asyncio.timeout(s.call_timeout_s * 2),
            ):
                sub = await self._subscribe(camera)
            await self._pull_loop(sub)
        except TimeoutError as exc:
            raise TimeoutError(f"no subscription within {2 * s.call_timeout_s:g} s") from exc
        finally:
            await close_camera(camera, session)

    async def _subscribe(self, camera: BoundedCamera) -> _Sub:
        devicemgmt = await camera.create_devicemgmt_service()
        answer = ONVIFService.to_dict(await system_time(devicemgmt))
        cam_utc, _ = camera_utc(answer if isinstance(answer, dict) else {})
        if cam_utc is not None:  # WS-Security timestamps in the camera's time
            self._dt_diff = cam_utc - dt.datetime.now(dt.UTC)
            camera.dt_diff = self._dt_diff
            await devicemgmt.close()
            camera.services.pop(devicemgmt.binding_key, None)
            devicemgmt = await camera.create_devicemgmt_service()
        camera.xaddrs[EVENTS_NS] = await _events_address(devicemgmt)
        events = await camera.create_events_service()
        created = await self._in_either_form(
            lambda when: events.CreatePullPointSubscription({"InitialTerminationTime": when})
        )
        address = getattr(getattr(created.SubscriptionReference, "Address", None), "_value_1", "")
        if not isinstance(address, str) or not address.startswith(("http://", "https://")):
            raise EventsUnavailableError("the camera's subscription has no address")
        camera.xaddrs[PULLPOINT_NS] = camera.rewrite_url(normalize_url(address))
        sub = _Sub(
            pull=await camera.create_pullpoint_service(),
            manager=await camera.create_subscription_service("PullPointSubscription"),
            expires=0.0,
            renew_at=0.0,
            camera_now=None,
        )
        granted = self._granted(sub, created)
        if not self._absolute and granted < self.settings.subscription_s / 2:
            log.info("camera %s misreads durations (%g s granted): dateTimes from now on",
                     self.target.camera, granted)  # fmt: skip
            self._absolute = True
            sub.renew_at = 0.0  # renewed at once, as a dateTime
        self.subscriptions += 1
        self._state.booted = None  # told again by this subscription, if the camera tells it
        log.info("camera %s: events subscribed (%g s)", self.target.camera, granted)
        return sub

    def _granted(self, sub: _Sub, answer: Any) -> float:
        """Note a subscription's span from an answer's CurrentTime and TerminationTime."""
        now, ends = _utc(getattr(answer, "CurrentTime", None)), _utc(answer.TerminationTime)
        granted = (ends - now).total_seconds() if now and ends else self.settings.subscription_s
        if now is not None:
            sub.camera_now = now
        mono = time.monotonic()
        sub.expires = mono + max(granted, 0.0)
        lead = max(granted * RENEW_AT_LEFT, self.settings.pull_timeout_s + 1.0)
        sub.renew_at = mono + max(granted - lead, 0.0)
        return granted

    def _termination(self) -> str:
        span = int(self.settings.subscription_s)
        if not self._absolute:
            return f"PT{span}S"  # seconds: the one duration form every camera takes
        camera_now = dt.datetime.now(dt.UTC) + self._dt_diff
        return (camera_now + dt.timedelta(seconds=span)).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def _renew(self, sub: _Sub) -> None:
        async with asyncio.timeout(self.settings.call_timeout_s * 2):
            answer = await self._in_either_form(sub.manager.Renew)
        self._granted(sub, answer)

    async def _in_either_form(self, call: Callable[[str], Awaitable[Any]]) -> Any:
        """``call`` with a termination time in the form the camera took last; on a fault, once
        in the other form (kept if it works)."""
        try:
            return await call(self._termination())
        except zeep.exceptions.Fault:
            self._absolute = not self._absolute
            try:
                return await call(self._termination())
            except zeep.exceptions.Fault:
                self._absolute = not self._absolute
                raise

    async def _pull_loop(self, sub: _Sub) -> None:
        s = self.settings
        while True:
            try:
                if time.monotonic() >= sub.renew_at:
                    await self._renew(sub)
                async with asyncio.timeout(s.pull_timeout_s + s.call_timeout_s):
                    answer = await sub.pull.PullMessages(
                        {"Timeout": dt.timedelta(seconds=s.pull_timeout_s),
                         "MessageLimit": MESSAGE_LIMIT}
                    )  # fmt: skip
            except zeep.exceptions.Fault as exc:
                self._gone(exc)
                return
            except CONTACT_ERRORS as exc:
                if self._lost_at_ns is None:
                    self._lost_at_ns = time.monotonic_ns()
                self._fail(f"no answer: {_describe(exc)}")
                if time.monotonic() >= sub.expires:
                    return  # lapsed meanwhile: a new one (a reboot cannot be told)
                await asyncio.sleep(min(2.0, s.pull_timeout_s))
                continue
            self._lost_at_ns = None  # the subscription outlived the silence: no reboot
            self.pulls += 1
            self._took(sub, answer)

    def _took(self, sub: _Sub, answer: Any) -> None:
        now = time.monotonic()
        camera_now = _utc(getattr(answer, "CurrentTime", None)) or sub.camera_now
        if camera_now is not None:
            sub.camera_now = camera_now
        ends = _utc(getattr(answer, "TerminationTime", None))
        if camera_now and ends:  # the camera may say it lapses sooner than it granted
            sub.expires = min(sub.expires, now + (ends - camera_now).total_seconds() + 1)
        changes = [c for n in notices(answer) if (c := read_notice(n)) is not None]
        self._state.apply(changes, now)
        self._state.expire(now)
        if any(c.kind is None for c in changes) and camera_now and self._state.booted:
            uptime_ns = int((camera_now - self._state.booted).total_seconds() * 1e9)
            self._rebooted(time.monotonic_ns() - max(uptime_ns, 0), "its LastReboot event")
            self._suspect_reboot_ns = None
        elif self._suspect_reboot_ns is not None and self._state.booted is None:
            self._rebooted(self._suspect_reboot_ns, "its subscription vanished while silent")
            self._suspect_reboot_ns = None
        events, held = self._state.view()
        self._publish(EventSnapshot(True, tuple(events), tuple(held), None, self._rebooted_ns))

    def _rebooted(self, at_ns: int, how: str) -> None:
        known = self._rebooted_ns
        if known is not None and abs(at_ns - known) < REBOOT_TOLERANCE_S * 1e9:
            return
        log.info("camera %s started %.0f s ago (%s)", self.target.camera,
                 (time.monotonic_ns() - at_ns) / 1e9, how)  # fmt: skip
        self._rebooted_ns = at_ns

    def _gone(self, fault: Exception) -> None:
        """The camera refused the subscription: dropped or lost in a reboot."""
        if self._lost_at_ns is not None:
            self._suspect_reboot_ns = self._lost_at_ns
        self._lost_at_ns = None
        log.info("camera %s: events subscription gone (%s); subscribing again",
                 self.target.camera, _describe(fault))  # fmt: skip

    def _fail(self, error: str) -> None:
        self._publish(EventSnapshot(False, events_error=error[:200], rebooted_ns=self._rebooted_ns))

    def _publish(self, snapshot: EventSnapshot) -> None:
        before, self._snapshot = self._snapshot, snapshot
        if (before.events_ok, before.events, before.events_held, before.rebooted_ns) != (
            snapshot.events_ok,
            snapshot.events,
            snapshot.events_held,
            snapshot.rebooted_ns,
        ):
            log.info("camera %s events: %s", self.target.camera, self.snapshot().fields())
            if self.on_change is not None:
                self.on_change(self.target.camera)


def event_watches(
    config: AgentConfig, targets: Sequence[OnvifTarget], *, now_ns: Callable[[], int]
) -> list[EventWatch]:
    """A watch per ONVIF camera whose ``onvif.events`` is on."""
    watched = {c.id for c in config.cameras if c.onvif is not None and c.onvif.events}
    limits = config.devices
    events = limits.events
    settings = EventSettings(
        subscription_s=events.subscription_s,
        pull_timeout_s=events.pull_timeout_s,
        call_timeout_s=limits.timeout_s,
        hold_s=events.hold_s,
        one_shot=frozenset(EventKind(k) for k in events.one_shot),
        max_bytes=limits.max_answer_bytes,
        retry_max_s=events.retry_max_s,
    )
    return [EventWatch(t, settings, now_ns=now_ns) for t in targets if t.camera in watched]


async def _events_address(devicemgmt: ONVIFService) -> str:
    """The events service's XAddr (GetServices; GetCapabilities on older cameras)."""
    try:
        services = await devicemgmt.GetServices({"IncludeCapability": False})
    except zeep.exceptions.Fault:
        services = []
    for service in services or []:
        if getattr(service, "Namespace", None) == EVENTS_NS and getattr(service, "XAddr", None):
            return str(normalize_url(service.XAddr))
    try:
        capabilities = await devicemgmt.GetCapabilities({"Category": "Events"})
    except zeep.exceptions.Fault as exc:
        raise EventsUnavailableError("the camera offers no event service") from exc
    address = getattr(getattr(capabilities, "Events", None), "XAddr", None)
    if not address:
        raise EventsUnavailableError("the camera offers no event service")
    return str(normalize_url(address))


def _utc(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())[:200]
