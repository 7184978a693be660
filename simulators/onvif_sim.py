"""An ONVIF camera's device service, enough for pantau's device checks: ``GetSystemDateAndTime``,
``GetDeviceInformation``, ``GetServices``, ``GetCapabilities``. Serial, firmware and clock are
switchable while it runs (a camera replaced, a firmware update, a clock drifting), and it can
misbehave as field devices do (``OnvifMode``). ``OnvifDevice.events`` adds the event service
(PullPoint, ``onvif_events_sim``).

A real TCP server on loopback speaking HTTP/1.1 and SOAP 1.2, written from the ONVIF Core
specification's message examples; tests and the demo use it beside ipycam.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import re
import time
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from simulators.loopback_http import LoopbackHttpServer
from simulators.onvif_events_sim import ACTIONS as EVENT_ACTIONS
from simulators.onvif_events_sim import CameraEvents
from simulators.onvif_recording_sim import RecordingStore

HEADER_LIMIT = 65_536
BODY_LIMIT = 1_000_000
HUGE_BYTES = 10 * 1024 * 1024
REBOOT_DOWN_S = 1.0  # a rebooted camera's event service is silent this long


class OnvifMode(enum.StrEnum):
    """How the simulated device service answers."""

    NORMAL = "normal"
    AUTH_EVERY_CALL = "auth_every_call"  # refuses even GetSystemDateAndTime without credentials
    UTC_IS_LOCAL = "utc_is_local"  # fills UTCDateTime with its local time
    MALFORMED = "malformed"  # XML that does not parse
    HUGE = "huge"  # a 10 MB answer, announced by Content-Length
    HUGE_STREAM = "huge_stream"  # a 10 MB answer without a length, ended by closing
    SILENT = "silent"  # accepts and never answers


@dataclass
class OnvifDevice:
    """What the simulated camera says about itself; change it while it runs."""

    manufacturer: str = "SimCam"
    model: str = "SC-200"
    firmware: str = "V5.5.0 build 200101"
    serial: str = "SC200-0001"
    hardware: str = "R1"
    clock_offset_s: float = 0.0  # its clock minus the true time
    tz: str = "WIB-7"  # POSIX: seven hours ahead of UTC (Jakarta)
    mode: OnvifMode = OnvifMode.NORMAL
    recordings: RecordingStore | None = None  # Profile G: search and recording services
    events: CameraEvents | None = None  # the event service (PullPoint), if it has one
    requests: int = 0
    reboots: int = 0  # SystemReboot requests taken
    actions: list[str] = field(default_factory=list)


_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
    'xmlns:tt="http://www.onvif.org/ver10/schema" '
    'xmlns:ter="http://www.onvif.org/ver10/error">'
    "<env:Body>{body}</env:Body></env:Envelope>"
)


def _datetime(moment: dt.datetime) -> str:
    return (
        f"<tt:Time><tt:Hour>{moment.hour}</tt:Hour><tt:Minute>{moment.minute}</tt:Minute>"
        f"<tt:Second>{moment.second}</tt:Second></tt:Time>"
        f"<tt:Date><tt:Year>{moment.year}</tt:Year><tt:Month>{moment.month}</tt:Month>"
        f"<tt:Day>{moment.day}</tt:Day></tt:Date>"
    )


def _tz_hours(tz: str) -> int:
    digits = "".join(c for c in tz if c.isdigit())
    hours = int(digits or 0)
    return hours if "-" in tz else -hours


_USERNAME = re.compile(r"<(?:[\w-]+:)?Username>\s*[^<\s][^<]*</")


def _signed(body: str) -> bool:
    """True if the request carries a WS-Security UsernameToken with a user name (an empty
    token, which clients send when they have no credentials, is not a login)."""
    return "UsernameToken" in body and _USERNAME.search(body) is not None


def answer(device: OnvifDevice, action: str, base: str) -> str:
    """The SOAP body for ``action``."""
    if action == "GetSystemDateAndTime":
        utc = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=device.clock_offset_s)
        local = utc + dt.timedelta(hours=_tz_hours(device.tz))
        shown_utc = local if device.mode is OnvifMode.UTC_IS_LOCAL else utc
        return (
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
            "<tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false"
            f"</tt:DaylightSavings><tt:TimeZone><tt:TZ>{escape(device.tz)}</tt:TZ></tt:TimeZone>"
            f"<tt:UTCDateTime>{_datetime(shown_utc)}</tt:UTCDateTime>"
            f"<tt:LocalDateTime>{_datetime(local)}</tt:LocalDateTime>"
            "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        )
    if action == "GetDeviceInformation":
        return (
            "<tds:GetDeviceInformationResponse>"
            f"<tds:Manufacturer>{escape(device.manufacturer)}</tds:Manufacturer>"
            f"<tds:Model>{escape(device.model)}</tds:Model>"
            f"<tds:FirmwareVersion>{escape(device.firmware)}</tds:FirmwareVersion>"
            f"<tds:SerialNumber>{escape(device.serial)}</tds:SerialNumber>"
            f"<tds:HardwareId>{escape(device.hardware)}</tds:HardwareId>"
            "</tds:GetDeviceInformationResponse>"
        )
    if action == "GetServices":
        services = "".join(
            f"<tds:Service><tds:Namespace>http://www.onvif.org/{ns}</tds:Namespace>"
            f"<tds:XAddr>{base}/onvif/{path}</tds:XAddr><tds:Version><tt:Major>2</tt:Major>"
            "<tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
            for ns, path in (
                ("ver10/device/wsdl", "device_service"),
                ("ver10/media/wsdl", "media_service"),
                ("ver10/events/wsdl", "event_service"),
                *(_PROFILE_G if device.recordings is not None else ()),
            )
        )
        return f"<tds:GetServicesResponse>{services}</tds:GetServicesResponse>"
    if action == "SystemReboot":
        device.reboots += 1
        if device.events is not None:  # its subscriptions are gone, it boots again
            device.events.reboot(REBOOT_DOWN_S)
        return (
            "<tds:SystemRebootResponse><tds:Message>Rebooting in 30 seconds</tds:Message>"
            "</tds:SystemRebootResponse>"
        )
    return _fault("ter:ActionNotSupported", f"{action} is not simulated")


_PROFILE_G = (
    ("ver10/search/wsdl", "search_service"),
    ("ver10/recording/wsdl", "recording_service"),
)


def _fault(subcode: str, reason: str) -> str:
    return (
        "<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode>"
        f"<env:Value>{subcode}</env:Value></env:Subcode></env:Code><env:Reason>"
        f'<env:Text xml:lang="en">{escape(reason)}</env:Text></env:Reason></env:Fault>'
    )


ACTIONS = (
    "GetSystemDateAndTime",
    "GetDeviceInformation",
    "GetServices",
    "GetCapabilities",
    "SystemReboot",
)


class OnvifSimulator(LoopbackHttpServer):
    """One simulated camera's device service on ``127.0.0.1:port``."""

    def __init__(self, device: OnvifDevice | None = None) -> None:
        super().__init__()
        self.device = device or OnvifDevice()

    async def start(self, port: int = 0) -> OnvifSimulator:
        """Listen (port 0: a free one)."""
        await self.listen(port)
        return self

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        await self.close()

    async def __aenter__(self) -> OnvifSimulator:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def handle_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > HEADER_LIMIT:
            return False
        length = 0
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = min(int(value.strip()), BODY_LIMIT)
        body = (await reader.readexactly(length)).decode("utf-8", "replace")
        device = self.device
        device.requests += 1
        action = next((a for a in ACTIONS if a in body), "Unknown")
        event = next((a for a in EVENT_ACTIONS if a in body), None)
        refused = device.mode is OnvifMode.AUTH_EVERY_CALL and not _signed(body)
        if device.events is not None and event and action == "Unknown" and not refused:
            path = head.split(b" ", 2)[1].decode("latin-1") if head.count(b" ") >= 2 else "/"
            base = f"http://127.0.0.1:{self.port}"
            return await device.events.handle(event, body, path, base, writer, reader)
        device.actions.append(action)
        if device.mode is OnvifMode.SILENT:  # until the client gives up
            while await reader.read(4096):
                pass
            return False
        if device.mode is OnvifMode.HUGE_STREAM:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\n\r\n<x>")
            for _ in range(HUGE_BYTES // 65_536):
                writer.write(b"A" * 65_536)
                await writer.drain()
            return False
        status = "200 OK"
        if device.mode is OnvifMode.MALFORMED:
            payload = b'<?xml version="1.0"?><env:Envelope><env:Body><tds:Get</env:Bo'
        elif device.mode is OnvifMode.HUGE:
            payload = b"<x>" + b"A" * HUGE_BYTES + b"</x>"
        elif device.mode is OnvifMode.AUTH_EVERY_CALL and not _signed(body):
            status = "400 Bad Request"
            payload = _ENVELOPE.format(
                body=_fault("ter:NotAuthorized", "Sender not authorized")
            ).encode()
        else:
            base = f"http://127.0.0.1:{self.port}"
            found = device.recordings.handle(body) if device.recordings is not None else None
            payload = _ENVELOPE.format(body=found or answer(device, action, base)).encode()
        date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/soap+xml; charset=utf-8\r\n"
            f"Content-Length: {len(payload)}\r\nDate: {date}\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        return True
