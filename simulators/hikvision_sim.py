"""A Hikvision NVR's ISAPI, as its documentation and field captures show it: HTTP Digest,
``/ISAPI/System/time``, ``/ISAPI/ContentMgmt/Storage/hdd`` and the recorded-segment search
(``POST /ISAPI/ContentMgmt/search``) with its paging (``responseStatusStrg`` MORE, at most
``page_max`` results a page, the ``searchResultPostion`` spelling required), local wall times
written with a ``Z``, errors as HTTP 200 ``ResponseStatus`` bodies, "Device Busy", the
namespace of either firmware line, and hostile answers (10 MB, silence).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from simulators.loopback_http import LoopbackHttpServer

HEADER_LIMIT = 65_536
BODY_LIMIT = 100_000
REALM = "DS-7608NI-K2"
NAMESPACES = {
    "isapi20": "http://www.isapi.org/ver20/XMLSchema",
    "hik20": "http://www.hikvision.com/ver20/XMLSchema",
    "hik10": "http://www.hikvision.com/ver10/XMLSchema",
}
_AUTH_FIELD = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]+))')
_TAG = re.compile(r"<(\w+)>([^<]*)</\1>")

Span = tuple[dt.datetime, dt.datetime]


class NvrMode(enum.StrEnum):
    """How the simulated recorder answers."""

    NORMAL = "normal"
    HUGE = "huge"  # every answer 10 MB
    SILENT = "silent"  # accepts and never answers
    GARBAGE = "garbage"  # answers that are not XML


@dataclass
class Hdd:
    """One disk as ``/ISAPI/ContentMgmt/Storage/hdd`` lists it (sizes in MB)."""

    id: int
    status: str = "ok"
    capacity: int = 3_815_447
    free: int = 120_000


@dataclass
class NvrState:
    """What the simulated NVR holds and how it behaves; change it while it runs."""

    username: str = "admin"
    password: str = "hik12345"  # noqa: S105  # the simulated device's own test login
    tz_hours: int = 7  # WIB
    local_times: bool = True  # search times are wall time with a misleading Z
    namespace: str = "isapi20"
    page_max: int = 10
    busy: int = 0  # the next this many requests answer "Device Busy"
    search_error: bool = False  # searches answer "Invalid Operation" with HTTP 200
    mode: NvrMode = NvrMode.NORMAL
    hdds: list[Hdd] = field(default_factory=lambda: [Hdd(1)])
    tracks: dict[int, list[Span]] = field(default_factory=dict)
    searches: list[dict[str, str]] = field(default_factory=list)
    requests: int = 0

    def record(self, track: int, start: dt.datetime, end: dt.datetime, file_s: int = 600) -> None:
        """Add recording of ``track`` over ``[start, end]`` (UTC), cut into files with a
        one-second seam, as recorders write them."""
        spans = self.tracks.setdefault(track, [])
        cursor = start
        while cursor < end:
            stop = min(end, cursor + dt.timedelta(seconds=file_s))
            spans.append((cursor, stop))
            cursor = stop + dt.timedelta(seconds=1)
        spans.sort()


class HikvisionSimulator(LoopbackHttpServer):
    """The simulated NVR on ``127.0.0.1:port``."""

    def __init__(self, state: NvrState | None = None) -> None:
        super().__init__()
        self.state = state or NvrState()
        self._nonces: set[str] = set()

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> HikvisionSimulator:
        await self.listen()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def handle_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        if len(head) > HEADER_LIMIT:
            return False
        request_line, *lines = head.split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = min(int(headers.get("content-length", "0") or 0), BODY_LIMIT)
        body = (await reader.readexactly(length)).decode("utf-8", "replace")
        state = self.state
        state.requests += 1
        if not self._authorized(method, headers.get("authorization", "")):
            nonce = secrets.token_hex(16)
            self._nonces.add(nonce)
            challenge = f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", algorithm=MD5'
            await _send(writer, 401, b"", extra=f"WWW-Authenticate: {challenge}\r\n")
            return True
        if state.mode is NvrMode.SILENT:
            while await reader.read(4096):
                pass
            return False
        if state.mode is NvrMode.HUGE:
            await _send(writer, 200, b"<x>" + b"A" * (10 * 1024 * 1024) + b"</x>")
            return True
        if state.mode is NvrMode.GARBAGE:
            await _send(writer, 200, b"\x00\xffnot xml at all <<<")
            return True
        await _send(writer, 200, self._answer(method, path.split("?")[0], body).encode())
        return True

    def _authorized(self, method: str, header: str) -> bool:
        if not header.startswith("Digest "):
            return False
        fields = {m[0]: m[1] or m[2] for m in _AUTH_FIELD.findall(header)}
        state = self.state
        if fields.get("username") != state.username or fields.get("nonce") not in self._nonces:
            return False
        ha1 = _md5(f"{state.username}:{REALM}:{state.password}")
        ha2 = _md5(f"{method}:{fields.get('uri', '')}")
        expected = _md5(
            f"{ha1}:{fields['nonce']}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:"
            f"{fields.get('qop', '')}:{ha2}"
        )
        return secrets.compare_digest(expected, fields.get("response", ""))

    def _answer(self, method: str, path: str, body: str) -> str:
        state = self.state
        if state.busy > 0:
            state.busy -= 1
            return self._status(path, 2, "Device Busy", "deviceBusy")
        if path == "/ISAPI/System/time" and method == "GET":
            local = dt.datetime.now(dt.UTC) + dt.timedelta(hours=state.tz_hours)
            stamp = local.replace(microsecond=0, tzinfo=None).isoformat()
            return self._xml(
                "Time",
                f"<timeMode>NTP</timeMode><localTime>{stamp}+{state.tz_hours:02d}:00</localTime>"
                f"<timeZone>CST-{state.tz_hours}:00:00</timeZone>",
            )
        if path == "/ISAPI/ContentMgmt/Storage/hdd" and method == "GET":
            disks = "".join(
                f"<hdd><id>{h.id}</id><hddName>hdd{h.id}</hddName><hddType>SATA</hddType>"
                f"<status>{escape(h.status)}</status><capacity>{h.capacity}</capacity>"
                f"<freeSpace>{h.free}</freeSpace><property>RW</property></hdd>"
                for h in state.hdds
            )
            return self._xml("hddList", disks)
        if path == "/ISAPI/ContentMgmt/search" and method == "POST":
            return self._search(path, body)
        return self._status(path, 4, "Invalid Operation", "notSupport")

    def _search(self, path: str, body: str) -> str:
        state = self.state
        fields = dict(_TAG.findall(body))
        state.searches.append(fields)
        if state.search_error:
            return self._status(path, 4, "Invalid Operation", "notSupport")
        if "searchResultPostion" not in fields:  # the devices know only this spelling
            return self._status(path, 6, "Invalid XML Content", "badXmlContent")
        start, end = self._read(fields["startTime"]), self._read(fields["endTime"])
        position = int(fields["searchResultPostion"])
        wanted = min(int(fields.get("maxResults", "40")), state.page_max)
        spans = [
            s for s in state.tracks.get(int(fields["trackID"]), []) if s[1] > start and s[0] < end
        ]
        page = spans[position : position + wanted]
        more = position + len(page) < len(spans)
        items = "".join(
            f"<searchMatchItem><sourceID>{{0000}}</sourceID><trackID>{fields['trackID']}</trackID>"
            f"<timeSpan><startTime>{self._write(s)}</startTime><endTime>{self._write(e)}"
            "</endTime></timeSpan><mediaSegmentDescriptor><contentType>video</contentType>"
            "<codecType>H.264-BP</codecType></mediaSegmentDescriptor></searchMatchItem>"
            for s, e in page
        )
        verdict = "MORE" if more else ("OK" if spans else "NO MATCHES")
        return self._xml(
            "CMSearchResult",
            f"<searchID>{escape(fields.get('searchID', ''))}</searchID>"
            f"<responseStatus>true</responseStatus><responseStatusStrg>{verdict}"
            f"</responseStatusStrg><numOfMatches>{len(page)}</numOfMatches>"
            f"<matchList>{items}</matchList>",
        )

    def _read(self, text: str) -> dt.datetime:
        naive = dt.datetime.fromisoformat(text.rstrip("Z")).replace(tzinfo=dt.UTC)
        return naive - dt.timedelta(hours=self.state.tz_hours) if self.state.local_times else naive

    def _write(self, moment: dt.datetime) -> str:
        shown = (
            moment + dt.timedelta(hours=self.state.tz_hours) if self.state.local_times else moment
        )
        return shown.replace(tzinfo=None, microsecond=0).isoformat() + "Z"

    def _xml(self, root: str, inner: str) -> str:
        ns = NAMESPACES.get(self.state.namespace)
        attrs = f' version="2.0" xmlns="{ns}"' if ns else ""
        return f'<?xml version="1.0" encoding="UTF-8"?><{root}{attrs}>{inner}</{root}>'

    def _status(self, path: str, code: int, text: str, sub: str) -> str:
        return self._xml(
            "ResponseStatus",
            f"<requestURL>{escape(path)}</requestURL><statusCode>{code}</statusCode>"
            f"<statusString>{text}</statusString><subStatusCode>{sub}</subStatusCode>",
        )


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324  # HTTP Digest's own hash


async def _send(
    writer: asyncio.StreamWriter, status: int, payload: bytes, *, extra: str = ""
) -> None:
    reason = {200: "OK", 401: "Unauthorized"}.get(status, "Error")
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml; charset=UTF-8\r\n"
        f"{extra}Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    await writer.drain()
