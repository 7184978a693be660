"""ONVIF Profile G recorders (a camera recording to its own card, or an ONVIF NVR), asked over
the search service with ``onvif-zeep-async``: per camera, the recorded seconds and gaps of the
last window and the oldest recording kept, as the Hikvision adapter reports them.

``FindRecordings`` and ``FindEvents`` start a search on the device and hand out a token;
``GetRecordingSearchResults`` / ``GetEventSearchResults`` are asked until ``SearchState`` is
``Completed`` (results come in batches, the first often empty), then ``EndSearch`` frees the
device's search session (cards allow few). The window's spans come from the track's
``IsDataPresent`` events (``onvif_tracks``); a device without recording events is judged by
the track's ``DataFrom``/``DataTo``, which shows a recording that stopped but not a gap inside.
Retention is the age of the recording's ``EarliestRecording`` (else the track's ``DataFrom``,
else ``GetRecordingSummary``). Times are the device's: the window is placed on its clock.

Every answer is hostile input: bounded bodies and a deadline per request
(``answers.capped_session``), a deadline per search, capped result counts; a search that never
completes or a broken answer is that camera's ``error`` (its verdict unknown), a device that
cannot be reached every camera's. Credentials go with every call (WS-Security UsernameToken).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import zeep.exceptions
from onvif import ONVIFService
from onvif.util import normalize_url

from edge_agent.devices.answers import capped_session
from edge_agent.devices.onvif_client import DEVICE_ERRORS, BoundedCamera, system_time
from edge_agent.devices.onvif_time import camera_utc
from edge_agent.devices.settings import DeviceChecksConfig, OnvifRecorder, OnvifRecordingSource
from edge_agent.recorders import verdict
from edge_agent.recorders.onvif_tracks import Change, change_of, spans_of, utc

log = logging.getLogger(__name__)

SEARCH_NS = "http://www.onvif.org/ver10/search/wsdl"
BATCH_RESULTS = 50  # results asked per poll
MAX_RECORDINGS = 512  # a device listing more is broken or hostile: stop and say so
MAX_EVENTS = 4000  # recording state changes in one window (a flapping card stays well below)
POLL_PAUSE_S = 0.25  # between polls that found nothing yet (the device also waits WaitTime)
WAIT_TIME = dt.timedelta(seconds=1)  # how long the device may hold a poll for more results
KEEP_ALIVE = dt.timedelta(seconds=30)  # the device ends a search idle this long by itself
END_SEARCH_S = 2.0  # EndSearch is a courtesy to the device: never worth more than this

Reading = tuple[str, tuple[str, ...], Any]
"""(``ReadingBatch`` list, the device's clock key, the reading with ts 0), as the scheduler's."""


class SearchError(Exception):
    """The device's search could not give a complete answer."""


ERRORS: tuple[type[BaseException], ...] = (SearchError, *DEVICE_ERRORS)


class OnvifRecorderAdapter:
    """One ONVIF Profile G recorder's check."""

    def __init__(
        self,
        config: OnvifRecorder,
        limits: DeviceChecksConfig,
        *,
        poll_pause_s: float = POLL_PAUSE_S,
    ) -> None:
        self._config = config
        self._limits = limits
        self._poll_pause_s = poll_pause_s

    @property
    def id(self) -> str:
        """The recorder id."""
        return self._config.id

    async def check(self, now_ns: int) -> list[Reading]:
        """Every camera's recording (readings with ``ts`` 0: the caller stamps)."""
        timeout = self._limits.timeout_s
        session = capped_session(max_bytes=self._limits.max_answer_bytes, timeout_s=timeout)
        c = self._config
        camera = BoundedCamera(c.host, c.port, c.username, c.password, session)
        try:
            step = "no complete answer"
            try:
                async with asyncio.timeout(timeout):
                    search, offset = await self._connect(camera)
                step = "the recording search did not complete"
                async with asyncio.timeout(timeout):
                    recordings = await self._find_recordings(search)
            except TimeoutError:
                return self._all_failed(f"{step} within {timeout:g} s")
            except ERRORS as exc:
                return self._all_failed(_why(exc))
            device_now = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC) + offset
            return [
                await self._camera(search, recordings, source, device_now)
                for source in self._config.cameras
            ]
        finally:
            with contextlib.suppress(*DEVICE_ERRORS):
                await camera.close()
            await session.close()

    async def _connect(self, camera: BoundedCamera) -> tuple[ONVIFService, dt.timedelta]:
        """The search service, and the device's clock minus the agent's (WS-Security
        timestamps are signed in the device's time so a device with a wrong clock answers)."""
        devicemgmt = await camera.create_devicemgmt_service()
        answer = await system_time(devicemgmt)  # some want credentials on every call
        as_dict = ONVIFService.to_dict(answer)
        device_utc, _ = camera_utc(as_dict if isinstance(as_dict, dict) else {})
        offset = dt.timedelta(0)
        if device_utc is not None:
            offset = device_utc + dt.timedelta(seconds=0.5) - dt.datetime.now(dt.UTC)
            camera.dt_diff = offset
            await devicemgmt.close()
            camera.services.pop(devicemgmt.binding_key, None)
            devicemgmt = await camera.create_devicemgmt_service()
        services = await devicemgmt.GetServices({"IncludeCapability": False})
        for service in (services or [])[:64]:
            namespace, xaddr = getattr(service, "Namespace", None), getattr(service, "XAddr", None)
            if namespace == SEARCH_NS and isinstance(xaddr, str):
                camera.xaddrs[SEARCH_NS] = camera.rewrite_url(normalize_url(xaddr))
        if SEARCH_NS not in camera.xaddrs:
            raise SearchError("the device offers no ONVIF search service (Profile G)")
        return await camera.create_search_service(), offset

    async def _find_recordings(self, search: ONVIFService) -> list[Any]:
        token = await search.FindRecordings(
            {"Scope": {}, "MaxMatches": MAX_RECORDINGS, "KeepAliveTime": KEEP_ALIVE}
        )
        return await self._results(
            search, "GetRecordingSearchResults", token, "RecordingInformation", MAX_RECORDINGS
        )

    async def _results(
        self, search: ONVIFService, operation: str, token: Any, field: str, limit: int
    ) -> list[Any]:
        """Every result of search ``token``, polled until ``Completed``; the search is ended
        on the device whatever happens."""
        if not isinstance(token, str) or not token:
            raise SearchError("the device's answer to a search carried no search token")
        found: list[Any] = []
        try:
            while True:
                answer = await getattr(search, operation)(
                    {
                        "SearchToken": token,
                        "MinResults": 1,
                        "MaxResults": BATCH_RESULTS,
                        "WaitTime": WAIT_TIME,
                    }
                )
                batch = list(getattr(answer, field, None) or [])
                found += batch
                if len(found) > limit:
                    raise SearchError(f"more than {limit} results: the device's list is refused")
                state = getattr(answer, "SearchState", None)
                if state == "Completed":
                    return found
                if state not in ("Queued", "Searching"):
                    raise SearchError(f"search state {str(state)[:40]!r}")
                if not batch:
                    await asyncio.sleep(self._poll_pause_s)
        finally:
            await _end_search(search, token)

    async def _camera(
        self,
        search: ONVIFService,
        recordings: Sequence[Any],
        source: OnvifRecordingSource,
        now: dt.datetime,
    ) -> Reading:
        start = now - dt.timedelta(seconds=self._limits.window_s)
        try:
            async with asyncio.timeout(self._limits.timeout_s):
                recording = await self._recording(search, recordings, source)
                token = str(recording.RecordingToken)
                changes = await self._changes(search, token, start, now)
                oldest = await self._oldest(search, recording, len(recordings))
        except TimeoutError:
            error = (
                f"the search of its recording did not complete within {self._limits.timeout_s:g} s"
            )
            return self._failed(source, error)
        except ERRORS as exc:
            return self._failed(source, _why(exc))
        track = _video_track(recording)
        data_from = utc(getattr(track, "DataFrom", None)) if track else None
        data_to = utc(getattr(track, "DataTo", None)) if track else None
        spans = spans_of(changes, start, now, data_to)
        if spans is None:  # no recording events: the track's data range is all there is
            spans = [(data_from, data_to)] if data_from and data_to else []
        return verdict.recorded(
            camera=source.camera,
            recorder=self.id,
            window_s=self._limits.window_s,
            goal_days=source.retention_goal_days,
            segments=spans,
            start=start,
            now=now,
            oldest=oldest,
        )

    async def _recording(
        self, search: ONVIFService, recordings: Sequence[Any], source: OnvifRecordingSource
    ) -> Any:
        """The camera's recording: by its token, or the device's only one."""
        if source.recording is None:
            if len(recordings) != 1:
                raise SearchError(
                    f"the device has {len(recordings)} recordings: name this camera's "
                    "recording token in the recorder's config"
                )
            return recordings[0]
        for recording in recordings:
            if getattr(recording, "RecordingToken", None) == source.recording:
                return recording
        # Not listed by FindRecordings (some devices list only active ones): ask for it.
        return await search.GetRecordingInformation({"RecordingToken": source.recording})

    async def _changes(
        self, search: ONVIFService, token: str, start: dt.datetime, end: dt.datetime
    ) -> list[Change]:
        """The recording's state changes in ``[start, end]``; none if the device has no event
        search (then the track's data range is judged)."""
        try:
            search_token = await search.FindEvents(
                {
                    "StartPoint": start,
                    "EndPoint": end,
                    "Scope": {"IncludedRecordings": [token]},
                    "SearchFilter": {},
                    "IncludeStartState": True,
                    "MaxMatches": MAX_EVENTS,
                    "KeepAliveTime": KEEP_ALIVE,
                }
            )
        except zeep.exceptions.Fault as exc:
            log.info("recorder %s: no event search (%s); judging track ranges", self.id, exc)
            return []
        results = await self._results(
            search, "GetEventSearchResults", search_token, "Result", MAX_EVENTS
        )
        changes = (change_of(r) for r in results if getattr(r, "RecordingToken", token) == token)
        return [c for c in changes if c is not None]

    async def _oldest(self, search: ONVIFService, recording: Any, count: int) -> dt.datetime | None:
        earliest = utc(getattr(recording, "EarliestRecording", None))
        track = _video_track(recording)
        if earliest is None and track is not None:
            earliest = utc(getattr(track, "DataFrom", None))
        if earliest is None and count == 1:
            summary = await search.GetRecordingSummary()
            earliest = utc(getattr(summary, "DataFrom", None))
        return earliest

    def _failed(self, source: OnvifRecordingSource, error: str) -> Reading:
        log.info("recorder %s, camera %s: %s", self.id, source.camera, error)
        return verdict.failed(
            camera=source.camera,
            recorder=self.id,
            window_s=self._limits.window_s,
            goal_days=source.retention_goal_days,
            error=error,
        )

    def _all_failed(self, error: str) -> list[Reading]:
        return [self._failed(source, error) for source in self._config.cameras]


def _video_track(recording: Any) -> Any:
    tracks = list(getattr(recording, "Track", None) or [])[:16]
    video = [t for t in tracks if str(getattr(t, "TrackType", "")) == "Video"]
    return (video or tracks or [None])[0]


async def _end_search(search: ONVIFService, token: str) -> None:
    try:
        async with asyncio.timeout(END_SEARCH_S):
            await search.EndSearch({"SearchToken": token})
    except DEVICE_ERRORS as exc:  # TimeoutError among them
        log.debug("EndSearch %s: %s", token, exc)


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, SearchError):
        return text[:200]
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:200]
