"""ZoneMinder servers (1.36) over their JSON API: per camera (monitor), the events of the last
window as recorded segments, the oldest event kept (retention) and whether its capture daemon
runs; the storage areas as disks.

A monitor in ``Record`` or ``Mocord`` writes back-to-back events (one per ``SectionLength``);
a lost stream closes the event and the next one starts when the stream is back, so the pause
between events is the gap. The event being written has no end yet: it counts up to now while
the capture daemon runs and the camera is connected, else up to its last flushed length.

Login: if the API answers without credentials, auth is off; else ``host/login`` gives a token
sent with every request. Every answer is size-bounded and every request has a deadline; a
malformed answer costs its camera's reading (or, for the server-wide calls, every camera's).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from edge_agent.devices.settings import CameraRecording, DeviceChecksConfig, ZoneminderRecorder
from edge_agent.recorders import verdict, zm_json
from edge_agent.recorders.verdict import Reading
from edge_agent.recorders.zm_json import Event, Monitor, ZmError
from pantau.core.contract import DiskStatus, RecorderDiskReading

log = logging.getLogger(__name__)

MAX_PAGES = 50  # 100 events a page: 5000 events in a window is a broken server; say so
CAPTURING = frozenset({"Connected"})  # Monitor_Status.Status while frames arrive

"""(``ReadingBatch`` list, the device's clock key, the reading with ts 0), as the scheduler's."""


@dataclass(frozen=True, slots=True)
class _Session:
    token: str | None
    tz: dt.tzinfo


class ZoneminderAdapter:
    """One ZoneMinder server's check."""

    def __init__(self, config: ZoneminderRecorder, limits: DeviceChecksConfig) -> None:
        self._config = config
        self._limits = limits

    @property
    def id(self) -> str:
        """The recorder id."""
        return self._config.id

    async def check(self, now_ns: int) -> list[Reading]:
        """Storage areas and every camera's recording (readings with ``ts`` 0)."""
        now = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC)
        c = self._config
        async with httpx.AsyncClient(
            base_url=c.url.rstrip("/") + "/api",
            timeout=self._limits.timeout_s,
            follow_redirects=False,
        ) as client:
            try:
                async with asyncio.timeout(self._limits.timeout_s * 2):
                    session = await self._session(client)
                    monitors = zm_json.monitors(await self._get(client, session, "monitors.json"))
                    disks = self._disks(await self._get(client, session, "storage.json"))
            except (ZmError, httpx.HTTPError, TimeoutError) as exc:
                error = verdict.why(exc)
                log.info("recorder %s: %s", c.id, error)
                return [self._failed(cam, error) for cam in c.cameras]
            readings: list[Reading] = list(disks)
            for camera in c.cameras:
                readings.append(await self._camera(client, session, monitors, camera, now))
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
        self,
        client: httpx.AsyncClient,
        session: _Session,
        monitors: dict[int, Monitor],
        camera: CameraRecording,
        now: dt.datetime,
    ) -> Reading:
        monitor = monitors.get(camera.channel)
        if monitor is None:
            return self._failed(camera, f"the server has no monitor {camera.channel}")
        start = now - dt.timedelta(seconds=self._limits.window_s)
        try:
            async with asyncio.timeout(self._limits.timeout_s * 3):
                segments = await self.segments(client, session, monitor, start, now)
                oldest = await self._edge(client, session, monitor.id, "asc")
        except (ZmError, httpx.HTTPError, TimeoutError) as exc:
            return self._failed(camera, verdict.why(exc))
        return verdict.recorded(
            camera=camera.camera,
            recorder=self.id,
            window_s=self._limits.window_s,
            goal_days=camera.retention_goal_days,
            segments=segments,
            start=start,
            now=now,
            oldest=None if oldest is None else oldest.start,
        )

    async def segments(
        self,
        client: httpx.AsyncClient,
        session: _Session,
        monitor: Monitor,
        start: dt.datetime,
        now: dt.datetime,
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        """The monitor's recorded spans reaching into ``[start, now]``: its closed events that
        end in it, and the event being written."""
        wall = zm_json.wall_time(start, session.tz)
        path = f"events/index/MonitorId:{monitor.id}/EndDateTime >=:{wall}.json"
        spans = [(e.start, e.end) for e in await self._events(client, session, path) if e.end]
        latest = await self._edge(client, session, monitor.id, "desc")
        if latest is not None and latest.end is None:
            flushed = latest.start + dt.timedelta(seconds=latest.length_s)
            writing = await self._capturing(client, session, monitor)
            spans.append((latest.start, now if writing else min(flushed, now)))
        return spans

    async def _events(self, client: httpx.AsyncClient, session: _Session, path: str) -> list[Event]:
        found: list[Event] = []
        for page in range(1, MAX_PAGES + 1):
            body = await self._get(client, session, path, {"page": str(page)})
            events, more = zm_json.events(body, session.tz)
            found += events
            if not more or not events:
                return found
        raise ZmError(f"the event list did not end after {MAX_PAGES} pages")

    async def _edge(
        self, client: httpx.AsyncClient, session: _Session, monitor: int, direction: str
    ) -> Event | None:
        """The monitor's oldest (``asc``) or newest (``desc``) event."""
        params = {"sort": "StartDateTime", "direction": direction, "limit": "1"}
        body = await self._get(client, session, f"events/index/MonitorId:{monitor}.json", params)
        events, _ = zm_json.events(body, session.tz)
        return events[0] if events else None

    async def _capturing(
        self, client: httpx.AsyncClient, session: _Session, monitor: Monitor
    ) -> bool:
        """The capture daemon runs and the camera's frames arrive."""
        if monitor.status not in CAPTURING:
            return False
        path = f"monitors/daemonStatus/id:{monitor.id}/daemon:zmc.json"
        return zm_json.daemon_running(await self._get(client, session, path))

    async def _session(self, client: httpx.AsyncClient) -> _Session:
        c = self._config
        token = None
        probe = await self._fetch(client, "GET", "host/getVersion.json")
        if probe.status_code == 401:
            if c.username is None or c.password is None:
                raise ZmError("the server wants a login: set the recorder's username and password")
            form = {"user": c.username, "pass": c.password}
            answer = await self._fetch(client, "POST", "host/login.json", data=form)
            if answer.status_code != 200:
                raise ZmError(_refusal("login refused", answer))
            token = zm_json.access_token(answer.content)
        elif probe.status_code != 200:
            raise ZmError(_refusal("the API does not answer", probe))
        if c.timezone:
            return _Session(token, zm_json.zone(c.timezone))
        body = await self._get(client, _Session(token, dt.UTC), "host/getTimeZone.json")
        return _Session(token, zm_json.zone(zm_json.time_zone(body)))

    def _disks(self, body: bytes) -> list[Reading]:
        readings: list[Reading] = []
        for area in zm_json.storage(body):
            reading = RecorderDiskReading(
                recorder=self.id,
                disk=str(area.id),
                ts=0,
                status=DiskStatus.OK if area.enabled else DiskStatus.ABSENT,
                detail=area.name if area.enabled else f"{area.name} (disabled)"[:100],
            )
            readings.append(("disks", ("disk", self.id, reading.disk), reading))
        return readings

    async def _get(
        self,
        client: httpx.AsyncClient,
        session: _Session,
        path: str,
        params: dict[str, str] | None = None,
    ) -> bytes:
        query = dict(params or {})
        if session.token:
            query["token"] = session.token
        answer = await self._fetch(client, "GET", path, params=query)
        if answer.status_code != 200:
            raise ZmError(_refusal(path.split("/", 1)[0], answer))
        return answer.content

    async def _fetch(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
    ) -> _Answer:
        limit = self._limits.max_answer_bytes
        url = quote(path, safe="/:.")
        async with client.stream(method, url, params=params, data=data) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise ZmError(f"answer of {declared} bytes (limit {limit})")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise ZmError(f"answer longer than {limit} bytes")
        return _Answer(response.status_code, bytes(body))


@dataclass(frozen=True, slots=True)
class _Answer:
    status_code: int
    content: bytes


def _refusal(what: str, answer: _Answer) -> str:
    said = zm_json.error_text(answer.content)
    return f"{what}: HTTP {answer.status_code}" + (f" ({said})" if said else "")
