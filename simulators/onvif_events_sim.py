"""The event service of the simulated ONVIF camera (``onvif_sim``): ``CreatePullPointSubscription``,
``PullMessages``, ``Renew``, ``Unsubscribe``, with the field pitfalls as switches.

Written from the ONVIF Event Service specification (PullPoint interface, section 9.1, and the
message examples of the Core specification, section 9.11): property events (``PropertyOperation``
``Initialized`` at a new subscription, then ``Changed``) for signal loss, storage failure, tamper
and ``Monitoring/OperatingTime/LastReboot``; a one-shot tamper as cameras send it (a pulse, never
an end). ``reboot()`` drops every subscription and refuses connections for a while.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import re
import time
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

HUGE_BYTES = 10 * 1024 * 1024
ACTIONS = (
    "CreatePullPointSubscription",
    "PullMessages",
    "Renew",
    "Unsubscribe",
    "SetSynchronizationPoint",
)
MAX_PULL_WAIT_S = 5.0  # a PullMessages waits at most this long for a message

_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:tev="http://www.onvif.org/ver10/events/wsdl" '
    'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" '
    'xmlns:wsa5="http://www.w3.org/2005/08/addressing" '
    'xmlns:tt="http://www.onvif.org/ver10/schema" '
    'xmlns:tns1="http://www.onvif.org/ver10/topics" '
    'xmlns:ter="http://www.onvif.org/ver10/error" '
    'xmlns:wsrf-rw="http://docs.oasis-open.org/wsrf/rw-2">'
    "<env:Body>{body}</env:Body></env:Envelope>"
)
_DIALECT = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"


class EventsHostility(enum.StrEnum):
    """How the event service (only it) misbehaves; the device service stays sane."""

    NONE = "none"
    MALFORMED = "malformed"  # XML that does not parse
    HUGE = "huge"  # a 10 MB answer
    SILENT = "silent"  # accepts and never answers


@dataclass
class _Subscription:
    expires: float  # monotonic
    pending: list[str] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class CameraEvents:
    """The camera's event state and pitfalls; change it while it runs (through the methods, so
    subscribers get their messages)."""

    signal_loss: bool = False
    storage_failure: bool = False
    tamper: bool = False  # a stateful tamper (ignored when ``one_shot_tamper``)
    one_shot_tamper: bool = False  # tamper is a pulse: State=true, never an end
    no_unsubscribe: bool = False  # Unsubscribe is refused (ActionNotSupported)
    seconds_only: bool = False  # termination times only as "PT<n>S" (no PT10M, no dateTime)
    absolute_only: bool = False  # termination times only as xs:dateTime (durations refused)
    zulu_only: bool = False  # a dateTime not written "YYYY-MM-DDThh:mm:ssZ" is refused
    durations_misread: bool = False  # takes any duration as 10 s (broken relative time)
    report_reboot: bool = True  # sends Monitoring/OperatingTime/LastReboot
    max_subscriptions: int = 8  # beyond: drops every subscription (as some cameras do)
    hostility: EventsHostility = EventsHostility.NONE
    clock_offset_s: float = 0.0
    booted: dt.datetime = field(  # a day ago
        default_factory=lambda: dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    )
    down_until: float = 0.0  # monotonic: refuses service until then (rebooting)
    created: int = 0
    actions: list[str] = field(default_factory=list)
    times_asked: list[str] = field(default_factory=list)
    _subs: dict[str, _Subscription] = field(default_factory=dict)

    def now(self) -> dt.datetime:
        """The camera's clock."""
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.clock_offset_s)

    @property
    def subscriptions(self) -> int:
        """Live subscriptions."""
        return len(self._subs)

    def set_signal_loss(self, lost: bool) -> None:
        """The video input lost (or regained) its signal."""
        self.signal_loss = lost
        self._tell(_state("VideoSource/SignalLoss", lost, self.now(), "Changed"))

    def set_storage_failure(self, failed: bool) -> None:
        """The SD card failed (or works again)."""
        self.storage_failure = failed
        self._tell(_storage(failed, self.now(), "Changed"))

    def set_tamper(self, tampered: bool) -> None:
        """Tamper detected: a pulse if ``one_shot_tamper``, else a property with an end."""
        if self.one_shot_tamper:
            if tampered:
                self._tell(_state("VideoSource/GlobalSceneChange/ImagingService", True, self.now()))
            return
        self.tamper = tampered
        self._tell(_state("VideoSource/GlobalSceneChange/ImagingService", tampered, self.now(),
                          "Changed"))  # fmt: skip

    def drop_subscriptions(self) -> None:
        """Forget every subscription while answering (as cameras do when their table is full)."""
        self._subs.clear()

    def reboot(self, down_s: float = 1.0) -> None:
        """Every subscription is gone; no answer for ``down_s``; a new boot time."""
        self._subs.clear()
        self.down_until = time.monotonic() + down_s
        self.booted = self.now() + dt.timedelta(seconds=down_s)

    def _tell(self, message: str) -> None:
        for sub in self._subs.values():
            sub.pending.append(message)
            sub.wake.set()

    def _initial(self) -> list[str]:
        now = self.now()
        found = [
            _state("VideoSource/SignalLoss", self.signal_loss, now, "Initialized"),
            _storage(self.storage_failure, now, "Initialized"),
        ]
        if not self.one_shot_tamper:
            found.append(_state("VideoSource/GlobalSceneChange/ImagingService", self.tamper, now,
                                "Initialized"))  # fmt: skip
        if self.report_reboot:
            booted = f'<tt:SimpleItem Name="Status" Value="{_xs(self.booted)}"/>'
            reboot = "Monitoring/OperatingTime/LastReboot"
            found.append(_message(reboot, now, "Initialized", "", booted))
        return found

    async def answer(
        self, action: str, body: str, path: str, base: str, reader: asyncio.StreamReader
    ) -> tuple[str, str]:
        """(HTTP status, SOAP envelope) for one event-service request (a pull waits until a
        message comes, its timeout, or the connection's end)."""
        self.actions.append(action)
        sub_id = path.partition("id=")[2]
        if action == "CreatePullPointSubscription":
            return self._create(body, base)
        sub = self._subs.get(sub_id)
        if sub is None or sub.expires < time.monotonic():
            self._subs.pop(sub_id, None)
            return "400 Bad Request", _fault("wsrf-rw:ResourceUnknownFault", "no such subscription")
        if action == "PullMessages":
            return "200 OK", await self._pull(sub, body, reader)
        if action == "Renew":
            return self._renew(sub, body)
        if action == "Unsubscribe":
            if self.no_unsubscribe:
                return "400 Bad Request", _fault("ter:ActionNotSupported", "Unsubscribe")
            self._subs.pop(sub_id, None)
            return "200 OK", _ENVELOPE.format(body="<wsnt:UnsubscribeResponse/>")
        return "200 OK", _ENVELOPE.format(body="<tev:SetSynchronizationPointResponse/>")

    def _span(self, body: str, tag: str) -> float | None:
        """Seconds asked in ``tag`` as this camera reads it; None if it refuses the form."""
        match = re.search(rf"<[\w-]*:?{tag}>([^<]*)</", body)
        if match is None:
            return 60.0
        asked = match.group(1).strip()
        self.times_asked.append(asked)
        seconds = re.fullmatch(r"PT(\d+)S", asked)
        if asked.startswith("P"):
            if self.absolute_only or (self.seconds_only and seconds is None):
                return None
            if self.durations_misread:
                return 10.0
            parts = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", asked)
            if parts is None:
                return None
            h, m, s = (int(p or 0) for p in parts.groups())
            return float(h * 3600 + m * 60 + s)
        if self.seconds_only:
            return None
        if self.zulu_only and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", asked) is None:
            return None
        try:
            until = dt.datetime.fromisoformat(asked.replace("Z", "+00:00"))
        except ValueError:
            return None
        if until.tzinfo is None:
            until = until.replace(tzinfo=dt.UTC)
        return (until - self.now()).total_seconds()

    def _create(self, body: str, base: str) -> tuple[str, str]:
        span = self._span(body, "InitialTerminationTime")
        if span is None:
            return "400 Bad Request", _fault("ter:InvalidArgVal", "InitialTerminationTime")
        if len(self._subs) >= self.max_subscriptions:
            self._subs.clear()  # the pitfall: too many subscriptions, all of them dropped
        self.created += 1
        sub_id = str(self.created)
        sub = _Subscription(expires=time.monotonic() + span, pending=self._initial())
        self._subs[sub_id] = sub
        now = self.now()
        return "200 OK", _ENVELOPE.format(
            body="<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>"
            f"<wsa5:Address>{base}/onvif/subscription?id={sub_id}</wsa5:Address>"
            f"</tev:SubscriptionReference><wsnt:CurrentTime>{_xs(now)}</wsnt:CurrentTime>"
            f"<wsnt:TerminationTime>{_xs(now + dt.timedelta(seconds=span))}"
            "</wsnt:TerminationTime></tev:CreatePullPointSubscriptionResponse>"
        )

    async def _pull(self, sub: _Subscription, body: str, reader: asyncio.StreamReader) -> str:
        match = re.search(r"<[\w-]*:?Timeout>PT(\d+(?:\.\d+)?)S<", body)
        wait = min(float(match.group(1)) if match else 1.0, MAX_PULL_WAIT_S)
        if not sub.pending:
            sub.wake.clear()
            # A message, the timeout, or the connection's end (the client sends nothing more
            # while it waits, so a read returns only at the end).
            waits = {asyncio.ensure_future(sub.wake.wait()), asyncio.ensure_future(reader.read(1))}
            try:
                await asyncio.wait(waits, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pending in waits:
                    pending.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
        messages, sub.pending = sub.pending[:100], sub.pending[100:]
        now = self.now()
        left = max(sub.expires - time.monotonic(), 0)
        return _ENVELOPE.format(
            body=f"<tev:PullMessagesResponse><tev:CurrentTime>{_xs(now)}</tev:CurrentTime>"
            f"<tev:TerminationTime>{_xs(now + dt.timedelta(seconds=left))}</tev:TerminationTime>"
            + "".join(messages)
            + "</tev:PullMessagesResponse>"
        )

    def _renew(self, sub: _Subscription, body: str) -> tuple[str, str]:
        span = self._span(body, "TerminationTime")
        if span is None:
            return "400 Bad Request", _fault("ter:InvalidArgVal", "TerminationTime")
        sub.expires = time.monotonic() + span
        now = self.now()
        ends = now + dt.timedelta(seconds=span)
        return "200 OK", _ENVELOPE.format(
            body=f"<wsnt:RenewResponse><wsnt:TerminationTime>{_xs(ends)}"
            f"</wsnt:TerminationTime><wsnt:CurrentTime>{_xs(now)}</wsnt:CurrentTime>"
            "</wsnt:RenewResponse>"
        )

    async def handle(  # noqa: PLR0917  # one request's parts, as onvif_sim has them
        self, action: str, body: str, path: str, base: str, writer: asyncio.StreamWriter,
        reader: asyncio.StreamReader,
    ) -> bool:  # fmt: skip
        """Answer one event-service request on ``writer``; False closes the connection."""
        if time.monotonic() < self.down_until:
            return False  # rebooting: the connection just drops
        if self.hostility is EventsHostility.SILENT:
            while await reader.read(4096):
                pass
            return False
        if self.hostility is EventsHostility.MALFORMED:
            status, payload = "200 OK", b'<?xml version="1.0"?><env:Envelope><env:Body><tev:Pu'
        elif self.hostility is EventsHostility.HUGE:
            status, payload = "200 OK", b"<x>" + b"A" * HUGE_BYTES + b"</x>"
        else:
            status, text = await self.answer(action, body, path, base, reader)
            payload = text.encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/soap+xml; charset=utf-8\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        return True


def _xs(moment: dt.datetime) -> str:
    """xs:dateTime as cameras write it: UTC, whole seconds, ``Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _message(topic: str, at: dt.datetime, operation: str | None, source: str, data: str) -> str:
    op = f' PropertyOperation="{operation}"' if operation else ""
    return (
        f'<wsnt:NotificationMessage><wsnt:Topic Dialect="{_DIALECT}">tns1:{topic}</wsnt:Topic>'
        f'<wsnt:Message><tt:Message UtcTime="{_xs(at)}"{op}><tt:Source>{source}</tt:Source>'
        f"<tt:Data>{data}</tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>"
    )


def _state(topic: str, on: bool, at: dt.datetime, operation: str | None = None) -> str:
    source = '<tt:SimpleItem Name="Source" Value="VideoSource_1"/>'
    value = "true" if on else "false"
    return _message(topic, at, operation, source, f'<tt:SimpleItem Name="State" Value="{value}"/>')


def _storage(failed: bool, at: dt.datetime, operation: str) -> str:
    source = '<tt:SimpleItem Name="Token" Value="SD_DISK_20200"/>'
    value = "true" if failed else "false"
    return _message("Device/HardwareFailure/StorageFailure", at, operation, source,
                    f'<tt:SimpleItem Name="Failed" Value="{value}"/>')  # fmt: skip


def _fault(subcode: str, reason: str) -> str:
    return _ENVELOPE.format(
        body="<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode>"
        f"<env:Value>{subcode}</env:Value></env:Subcode></env:Code><env:Reason>"
        f'<env:Text xml:lang="en">{escape(reason)}</env:Text></env:Reason></env:Fault>'
    )
