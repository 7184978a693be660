"""The device zoo's ONVIF services and NVRs: cameras' ONVIF device and search services and
Hikvision recorders that misbehave the way field devices do. Each member is the project's own
simulator (``onvif_sim``, ``onvif_recording_sim``, ``hikvision_sim``) with a hostile switch,
plus what those lack: an answer dripped a byte at a time, a login page where SOAP is expected,
an HTTP Digest challenge to every request however it is answered.

Tests configure every member as a camera's ``onvif:`` device and as a recorder (``type: onvif``
or ``type: hikvision``), beside good ones, and check that the agent never stops, keeps its
schedule and reports each member's own verdict (``EXPECTED``).
"""

from __future__ import annotations

import asyncio
import enum
import secrets
from dataclasses import dataclass

from simulators.hikvision_sim import REALM, HikvisionSimulator, NvrMode, NvrState
from simulators.loopback_http import LoopbackHttpServer
from simulators.onvif_recording_sim import RecordingStore, SearchMode, SimRecording
from simulators.onvif_sim import OnvifDevice, OnvifMode, OnvifSimulator

DRIP_INTERVAL_S = 1.0  # slowloris: one byte per second
DRIP_CHECK_S = 0.05  # a drip notices a closed connection this fast
STOP_WAIT_S = 2.0
HEADER_LIMIT = 65_536
BODY_LIMIT = 1_000_000


class DeviceBehaviour(enum.StrEnum):
    """How a zoo ONVIF service or NVR misbehaves."""

    ONVIF_MALFORMED = "onvif_malformed"  # XML that does not parse
    ONVIF_HUGE = "onvif_huge"  # 10 MB, announced by Content-Length
    ONVIF_HUGE_STREAM = "onvif_huge_stream"  # 10 MB without a length
    ONVIF_SILENT = "onvif_silent"  # accepts and never answers
    ONVIF_DRIP = "onvif_drip"  # a valid answer at one byte per second
    ONVIF_WRONG_TYPE = "onvif_wrong_type"  # 200 with a text/html login page
    ONVIF_AUTH_LOOP = "onvif_auth_loop"  # 401 Digest challenge to everything
    SEARCH_MALFORMED = "search_malformed"  # device service fine, search answers broken
    SEARCH_ENDLESS = "search_endless"  # device service fine, searches never complete
    SEARCH_HUGE = "search_huge"  # device service fine, 25,000 recordings in one answer
    NVR_GARBAGE = "nvr_garbage"  # a Hikvision NVR answering bytes that are not XML
    NVR_HUGE = "nvr_huge"
    NVR_SILENT = "nvr_silent"
    NVR_DRIP = "nvr_drip"
    NVR_AUTH_LOOP = "nvr_auth_loop"  # challenges every request, however answered


NVR_BEHAVIOURS = frozenset(b for b in DeviceBehaviour if b.value.startswith("nvr_"))
SEARCH_BEHAVIOURS = frozenset(b for b in DeviceBehaviour if b.value.startswith("search_"))

# What the agent must report for each member: the ONVIF device check's ``ok`` (None for an
# NVR), and words of which one is in the error of the device check and of every recording.
EXPECTED: dict[DeviceBehaviour, tuple[bool | None, tuple[str, ...]]] = {
    DeviceBehaviour.ONVIF_MALFORMED: (False, ("XMLSyntaxError",)),
    DeviceBehaviour.ONVIF_HUGE: (False, ("10485767 bytes announced",)),
    DeviceBehaviour.ONVIF_HUGE_STREAM: (False, ("answer longer than",)),
    DeviceBehaviour.ONVIF_SILENT: (False, ("no complete answer",)),
    DeviceBehaviour.ONVIF_DRIP: (False, ("no complete answer",)),
    DeviceBehaviour.ONVIF_WRONG_TYPE: (False, ("root element found is html",)),
    DeviceBehaviour.ONVIF_AUTH_LOOP: (False, ("HTTP status 401",)),
    DeviceBehaviour.SEARCH_MALFORMED: (True, ("carried no search token",)),
    DeviceBehaviour.SEARCH_ENDLESS: (True, ("search did not complete",)),
    DeviceBehaviour.SEARCH_HUGE: (True, ("bytes announced",)),
    DeviceBehaviour.NVR_GARBAGE: (None, ("not XML",)),
    DeviceBehaviour.NVR_HUGE: (None, ("10485767 bytes",)),
    DeviceBehaviour.NVR_SILENT: (None, ("ReadTimeout", "no complete answer")),
    DeviceBehaviour.NVR_DRIP: (None, ("ReadTimeout", "no complete answer")),
    DeviceBehaviour.NVR_AUTH_LOOP: (None, ("HTTP 401",)),
}


@dataclass(frozen=True, slots=True)
class Request:
    """What a zoo member read of a request before misbehaving."""

    method: str
    path: str
    body: bytes


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One HTTP/1.1 request, ``None`` if it is too large to bother with."""
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > HEADER_LIMIT:
        return None
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, path, _ = (request_line + "  ").split(" ", 2)
    length = 0
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = min(int(value.strip()), BODY_LIMIT)
    return Request(method, path, await reader.readexactly(length))


class _Dripping:
    """Answers dripped a byte per ``DRIP_INTERVAL_S``; closing waits for them to notice."""

    def __init__(self) -> None:
        self.dripping = 0

    async def drip(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
    ) -> None:
        """``data`` slowly, until the client gives up or the server closes."""
        self.dripping += 1
        try:
            for byte in data:
                writer.write(bytes([byte]))
                await writer.drain()
                for _ in range(round(DRIP_INTERVAL_S / DRIP_CHECK_S)):
                    if reader.at_eof() or writer.is_closing():
                        return
                    await asyncio.sleep(DRIP_CHECK_S)
        finally:
            self.dripping -= 1

    async def settle(self) -> None:
        """Wait (bounded) until every drip has seen its connection close."""
        for _ in range(round(STOP_WAIT_S / DRIP_CHECK_S)):
            if not self.dripping:
                return
            await asyncio.sleep(DRIP_CHECK_S)


async def challenge(writer: asyncio.StreamWriter, *, realm: str) -> None:
    """A 401 with a fresh Digest nonce marked stale, whatever the request carried."""
    nonce = secrets.token_hex(16)
    writer.write(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest "
        f'realm="{realm}", qop="auth", nonce="{nonce}", stale=TRUE, algorithm=MD5\r\n'
        "Content-Length: 0\r\n\r\n".encode()
    )
    await writer.drain()


_SOAP_OK = (
    b'<?xml version="1.0" encoding="UTF-8"?><env:Envelope '
    b'xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body/></env:Envelope>'
)
_LOGIN_PAGE = b"<html><head><title>Login</title></head><body><form>user</form></body></html>"


class ZooOnvif(OnvifSimulator, _Dripping):
    """A camera's ONVIF services with one hostile behaviour."""

    def __init__(self, behaviour: DeviceBehaviour) -> None:
        store = RecordingStore([_card()])
        OnvifSimulator.__init__(self, OnvifDevice(recordings=store))
        _Dripping.__init__(self)
        self.behaviour = behaviour
        b = DeviceBehaviour
        modes = {
            b.ONVIF_MALFORMED: OnvifMode.MALFORMED,
            b.ONVIF_HUGE: OnvifMode.HUGE,
            b.ONVIF_HUGE_STREAM: OnvifMode.HUGE_STREAM,
            b.ONVIF_SILENT: OnvifMode.SILENT,
        }
        self.device.mode = modes.get(behaviour, OnvifMode.NORMAL)
        store.mode = {
            b.SEARCH_MALFORMED: SearchMode.MALFORMED,
            b.SEARCH_ENDLESS: SearchMode.NEVER_COMPLETES,
            b.SEARCH_HUGE: SearchMode.HUGE,
        }.get(behaviour, SearchMode.NORMAL)

    async def handle_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        b = self.behaviour
        if b not in (b.ONVIF_DRIP, b.ONVIF_WRONG_TYPE, b.ONVIF_AUTH_LOOP):
            return await super().handle_one(reader, writer)
        if await read_request(reader) is None:
            return False
        self.device.requests += 1
        if b is DeviceBehaviour.ONVIF_AUTH_LOOP:
            await challenge(writer, realm="IP Camera")
            return True
        if b is DeviceBehaviour.ONVIF_WRONG_TYPE:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                + f"Content-Length: {len(_LOGIN_PAGE)}\r\n\r\n".encode()
                + _LOGIN_PAGE
            )
            await writer.drain()
            return True
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\n"
        await self.drip(
            reader, writer, head + f"Content-Length: {len(_SOAP_OK)}\r\n\r\n".encode() + _SOAP_OK
        )
        return False


class ZooNvr(HikvisionSimulator, _Dripping):
    """A Hikvision NVR with one hostile behaviour."""

    def __init__(self, behaviour: DeviceBehaviour) -> None:
        b = DeviceBehaviour
        modes = {
            b.NVR_GARBAGE: NvrMode.GARBAGE,
            b.NVR_HUGE: NvrMode.HUGE,
            b.NVR_SILENT: NvrMode.SILENT,
        }
        HikvisionSimulator.__init__(self, NvrState(mode=modes.get(behaviour, NvrMode.NORMAL)))
        _Dripping.__init__(self)
        self.behaviour = behaviour

    async def handle_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        b = self.behaviour
        if b not in (b.NVR_DRIP, b.NVR_AUTH_LOOP):
            return await super().handle_one(reader, writer)
        if await read_request(reader) is None:
            return False
        self.state.requests += 1
        if b is DeviceBehaviour.NVR_AUTH_LOOP:
            await challenge(writer, realm=REALM)
            return True
        body = b'<?xml version="1.0"?><Time><timeZone>CST-7:00:00</timeZone></Time>'
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
        await self.drip(
            reader, writer, head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        return False


def _card() -> SimRecording:
    import datetime as dt  # noqa: PLC0415

    now = dt.datetime.now(dt.UTC)
    recording = SimRecording("REC1")
    recording.record(now - dt.timedelta(days=10), now + dt.timedelta(days=1))
    return recording


@dataclass
class DeviceZooMember:
    """One member and the server that plays it."""

    behaviour: DeviceBehaviour
    server: LoopbackHttpServer

    @property
    def name(self) -> str:
        """The member's camera (and recorder) id."""
        return self.behaviour.value

    @property
    def port(self) -> int:
        """Its loopback port."""
        return self.server.port

    @property
    def is_nvr(self) -> bool:
        """True for a Hikvision NVR, False for a camera's ONVIF services."""
        return self.behaviour in NVR_BEHAVIOURS


class OnvifNvrZoo:
    """Every ONVIF and NVR behaviour (or the ones given) served at once on loopback."""

    def __init__(self, behaviours: list[DeviceBehaviour] | None = None) -> None:
        self.members = [
            DeviceZooMember(b, ZooNvr(b) if b in NVR_BEHAVIOURS else ZooOnvif(b))
            for b in (behaviours or list(DeviceBehaviour))
        ]

    async def __aenter__(self) -> OnvifNvrZoo:
        for member in self.members:
            await member.server.listen()
        return self

    async def __aexit__(self, *_: object) -> None:
        for member in self.members:
            await member.server.close()
        for member in self.members:
            if isinstance(member.server, _Dripping):
                await member.server.settle()
