"""Hikvision NVRs over ISAPI (HTTP Digest): disks (``/ISAPI/ContentMgmt/Storage/hdd``) and, per
camera, the recorded segments of the last window and the oldest one kept
(``POST /ISAPI/ContentMgmt/search``).

The search pages while ``responseStatusStrg`` is ``MORE``, with the position element spelt as
the devices require (``searchResultPostion``). Errors come as HTTP 200 with a
``ResponseStatus`` body; "Device Busy" (and HTTP 503) is retried after a pause, a few times.
Every answer is size-bounded and every request has a deadline; one camera's failure is its
reading's ``error``, the recorder's failure every camera's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

import httpx

from edge_agent.devices.onvif_time import tz_offset
from edge_agent.devices.settings import CameraRecording, DeviceChecksConfig, HikvisionRecorder
from edge_agent.recorders import verdict
from edge_agent.recorders.isapi_xml import DeviceZone, IsapiError, children, find, parse, text_of
from edge_agent.recorders.verdict import Reading
from pantau.core.contract import DiskStatus, RecorderDiskReading

log = logging.getLogger(__name__)

PAGE_RESULTS = 40  # segments asked per page (the firmwares' usual maximum)
MAX_PAGES = 50  # 2000 segments an hour is a broken recorder; stop there and say so
BUSY_RETRIES = 3  # "Device Busy": asked again this often, after BUSY_WAIT_S doubling
BUSY_WAIT_S = 0.5
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # the oldest-recording search starts here

# ISAPI hdd status words -> DiskStatus.
DISK_STATES = {
    "ok": DiskStatus.OK,
    "idle": DiskStatus.OK,
    "error": DiskStatus.FAILED,
    "smartfailed": DiskStatus.FAILED,
    "mismatch": DiskStatus.FAILED,
    "offline": DiskStatus.ABSENT,
    "notexist": DiskStatus.ABSENT,
    "unformatted": DiskStatus.UNFORMATTED,
    "unrecordhostformatted": DiskStatus.UNFORMATTED,
    "uninitialized": DiskStatus.UNFORMATTED,
}

"""(``ReadingBatch`` list, the device's clock key, the reading with ts 0), as the scheduler's."""


class HikvisionAdapter:
    """One Hikvision recorder's check."""

    def __init__(
        self,
        config: HikvisionRecorder,
        limits: DeviceChecksConfig,
        *,
        busy_wait_s: float = BUSY_WAIT_S,
    ) -> None:
        self._config = config
        self._limits = limits
        self._busy_wait_s = busy_wait_s

    @property
    def id(self) -> str:
        """The recorder id."""
        return self._config.id

    async def check(self, now_ns: int) -> list[Reading]:
        """Disks and every camera's recording (readings with ``ts`` 0: the caller stamps)."""
        now = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC)
        c = self._config
        async with httpx.AsyncClient(
            base_url=c.url.rstrip("/"),
            auth=httpx.DigestAuth(c.username, c.password),
            timeout=self._limits.timeout_s,
            follow_redirects=False,
        ) as client:
            try:
                # httpx's timeout is per read: a recorder dripping bytes needs a whole deadline.
                async with asyncio.timeout(self._limits.timeout_s * 2):
                    zone = await self._zone(client)
                    disks = await self._disks(client)
            except (IsapiError, httpx.HTTPError, ValueError, TimeoutError) as exc:
                error = verdict.why(exc)
                log.info("recorder %s: %s", c.id, error)
                return [self._failed(cam, error) for cam in c.cameras]
            readings: list[Reading] = list(disks)
            for camera in c.cameras:
                readings.append(await self._camera(client, zone, camera, now))
        return readings

    def _failed(self, camera: CameraRecording, error: str) -> Reading:
        return verdict.failed(
            camera=camera.camera,
            recorder=self.id,
            window_s=self._limits.window_s,
            goal_days=camera.retention_goal_days,
            error=error,
        )

    async def _camera(
        self, client: httpx.AsyncClient, zone: DeviceZone, camera: CameraRecording, now: dt.datetime
    ) -> Reading:
        start = now - dt.timedelta(seconds=self._limits.window_s)
        track = camera.channel * 100 + 1  # the channel's main stream
        try:
            async with asyncio.timeout(self._limits.timeout_s * 3):
                segments = await self.search(client, zone, track, start, now)
                oldest = await self.search(client, zone, track, EARLIEST, now, first_only=True)
        except (IsapiError, httpx.HTTPError, ValueError, TimeoutError) as exc:
            return self._failed(camera, verdict.why(exc))
        return verdict.recorded(
            camera=camera.camera,
            recorder=self.id,
            window_s=self._limits.window_s,
            goal_days=camera.retention_goal_days,
            segments=segments,
            start=start,
            now=now,
            oldest=min((s for s, _ in oldest), default=None),
        )

    async def search(
        self,
        client: httpx.AsyncClient,
        zone: DeviceZone,
        track: int,
        start: dt.datetime,
        end: dt.datetime,
        *,
        first_only: bool = False,
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        """Recorded segments of ``track`` in ``[start, end]`` (UTC), every page of them."""
        search_id = str(uuid.uuid4()).upper()
        found: list[tuple[dt.datetime, dt.datetime]] = []
        position = 0
        for _ in range(MAX_PAGES):
            body = search_request(
                search_id,
                track,
                zone.write(start),
                zone.write(end),
                position=position,
                max_results=1 if first_only else PAGE_RESULTS,
            )
            root = await self._request(client, "POST", "/ISAPI/ContentMgmt/search", body)
            items = children(
                find(root, "matchList") or root.makeelement("x", {}), "searchMatchItem"
            )
            for item in items:
                s, e = text_of(item, "timeSpan", "startTime"), text_of(item, "timeSpan", "endTime")
                if s and e:
                    found.append((zone.read(s), zone.read(e)))
            position += len(items)
            if first_only or text_of(root, "responseStatusStrg") != "MORE" or not items:
                return found
        raise IsapiError(f"search of track {track} did not end after {MAX_PAGES} pages")

    async def _zone(self, client: httpx.AsyncClient) -> DeviceZone:
        local_times = self._config.search_times == "local"
        now = dt.datetime.now(dt.UTC)
        if self._config.timezone:
            offset = tz_offset(self._config.timezone, now)
        else:
            root = await self._request(client, "GET", "/ISAPI/System/time")
            offset = tz_offset(_isapi_tz(text_of(root, "timeZone")), now)
        if offset is None:
            raise IsapiError("the recorder's time zone is unknown: set the recorder's timezone")
        return DeviceZone(offset, local_times)

    async def _disks(self, client: httpx.AsyncClient) -> list[Reading]:
        root = await self._request(client, "GET", "/ISAPI/ContentMgmt/Storage/hdd")
        readings: list[Reading] = []
        for hdd in children(root, "hdd")[:64]:
            disk = (text_of(hdd, "id") or str(len(readings) + 1))[:64]
            word = (text_of(hdd, "status") or "").strip()
            reading = RecorderDiskReading(
                recorder=self.id,
                disk=disk if disk.isalnum() else str(len(readings) + 1),
                ts=0,
                status=DISK_STATES.get(word.lower(), DiskStatus.UNKNOWN),
                detail=" ".join(word.split())[:100],
                capacity_mb=_mb(text_of(hdd, "capacity")),
                free_mb=_mb(text_of(hdd, "freeSpace")),
            )
            if reading.status is DiskStatus.OK and reading.free_mb == 0:
                reading = reading.model_copy(update={"status": DiskStatus.FULL})
            readings.append(("disks", ("disk", self.id, reading.disk), reading))
        return readings

    async def _request(
        self, client: httpx.AsyncClient, method: str, path: str, body: str | None = None
    ) -> ET.Element:
        wait = self._busy_wait_s
        for attempt in range(BUSY_RETRIES + 1):
            try:
                return parse(await self._fetch(client, method, path, body))
            except IsapiError as exc:
                if not exc.busy or attempt == BUSY_RETRIES:
                    raise
                log.info("recorder %s busy on %s: asking again in %.1f s", self.id, path, wait)
            await asyncio.sleep(wait)
            wait *= 2
        raise AssertionError("unreachable")

    async def _fetch(
        self, client: httpx.AsyncClient, method: str, path: str, body: str | None
    ) -> bytes:
        limit = self._limits.max_answer_bytes
        content = None if body is None else body.encode()
        async with client.stream(method, path, content=content) as response:
            if response.status_code == 503:
                raise IsapiError("HTTP 503", status=2)
            if response.status_code == 401:
                raise IsapiError("HTTP 401: the recorder refused the user name or password")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise IsapiError(f"answer of {declared} bytes (limit {limit})")
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > limit:
                    raise IsapiError(f"answer longer than {limit} bytes")
        if response.status_code >= 400 and b"ResponseStatus" not in data:
            raise IsapiError(f"HTTP {response.status_code} on {path}")
        return bytes(data)


def search_request(
    search_id: str, track: int, start: str, end: str, *, position: int, max_results: int
) -> str:
    """A ``CMSearchDescription`` (ISAPI ContentMgmt; ``searchResultPostion`` is the devices'
    spelling, the correct one is ignored by them)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<CMSearchDescription version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">'
        f"<searchID>{escape(search_id)}</searchID>"
        f"<trackList><trackID>{track}</trackID></trackList>"
        f"<timeSpanList><timeSpan><startTime>{start}</startTime><endTime>{end}</endTime>"
        "</timeSpan></timeSpanList>"
        f"<maxResults>{max_results}</maxResults>"
        f"<searchResultPostion>{position}</searchResultPostion>"
        "<metadataList><metadataDescriptor>//recordType.meta.std-cgi.com</metadataDescriptor>"
        "</metadataList></CMSearchDescription>"
    )


def _isapi_tz(text: str | None) -> str | None:
    """ISAPI writes POSIX zones with seconds (``CST-7:00:00``)."""
    return None if text is None else text.split(",")[0]


def _mb(text: str | None) -> float | None:
    try:
        value = None if text is None else float(text)
    except ValueError:
        return None
    return value if value is not None and 0 <= value <= 1e12 else None
