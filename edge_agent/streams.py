"""Stream probes on a budget: each camera every ``interval_s``, spread over the interval, never
more than ``concurrency`` decodes at once."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from urllib.parse import quote, urlsplit, urlunsplit

from edge_agent.commands.views import NoViewError
from edge_agent.config import AgentConfig, CameraConfig
from edge_agent.probes.results import rounded
from edge_agent.probes.stream import CameraNormal, StreamResult, StreamThresholds, probe_stream
from edge_agent.publisher import Publisher
from edge_agent.queue import ForwardQueue
from edge_agent.queue_rows import StampClock as Clock
from pantau.core.contract import StreamFault, StreamReading

log = logging.getLogger(__name__)


def stream_url(camera: CameraConfig) -> str:
    """The camera's RTSP URL with its credentials (FFmpeg does Digest/Basic itself)."""
    assert camera.rtsp_url is not None
    parts = urlsplit(camera.rtsp_url)
    if not camera.username or parts.username:
        return camera.rtsp_url
    login = quote(camera.username, safe="")
    if camera.password:
        login += ":" + quote(camera.password, safe="")
    return urlunsplit(parts._replace(netloc=f"{login}@{parts.netloc}"))


def to_reading(camera: str, ts: int, result: StreamResult) -> StreamReading:
    """The wire form of a stream probe."""

    return StreamReading(
        camera=camera,
        ts=ts,
        fault=result.fault,
        faults=result.faults,
        detail=result.detail.replace("\n", " ").replace("\r", " ")[:300],
        codec=result.codec,
        width=result.width,
        height=result.height,
        frames=result.frames,
        fps=rounded(result.fps),
        bitrate_kbps=rounded(result.bitrate_kbps),
        first_frame_ms=rounded(result.first_frame_ms),
        luma=rounded(result.luma),
        sharpness=rounded(result.sharpness),
        motion=rounded(result.motion),
        frozen_ratio=rounded(result.frozen_ratio),
        view_score=rounded(result.view_score),
        cpu_ms=round(result.cpu_s * 1000, 3),
    )


def probe_with_fallback(
    url: str,
    *,
    transport: str,
    sample_s: float,
    timeout_s: float,
    thresholds: StreamThresholds,
    normal: CameraNormal | None = None,
) -> StreamResult:
    """``probe_stream`` over ``transport``; for ``auto``, TCP first and UDP if TCP cannot open."""
    first = "tcp" if transport == "auto" else transport
    result = probe_stream(
        url,
        sample_s=sample_s,
        timeout_s=timeout_s,
        thresholds=thresholds,
        transport=first,
        normal=normal,
    )
    if transport != "auto" or result.fault is not StreamFault.OPEN_FAILED:
        return result
    retry = probe_stream(
        url,
        sample_s=sample_s,
        timeout_s=timeout_s,
        thresholds=thresholds,
        transport="udp",
        normal=normal,
    )
    if retry.fault is StreamFault.OPEN_FAILED:  # neither: say both
        return replace(
            retry,
            detail=f"{result.detail} | {retry.detail}"[:300],
            cpu_s=result.cpu_s + retry.cpu_s,
        )
    return replace(retry, cpu_s=result.cpu_s + retry.cpu_s)


class StreamScheduler:
    """Runs the stream probes of one site and records their verdicts."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Clock,
        pictures: dict[str, StreamFault],
        queue: ForwardQueue,
        executor: ThreadPoolExecutor,
        publisher: Publisher,
    ) -> None:
        self._config = config
        self._clock = clock
        self._pictures = pictures
        self._queue = queue
        self._executor = executor
        self._publisher = publisher
        self._slots = asyncio.Semaphore(config.stream.concurrency)
        self.active = 0  # decodes running now (never above the site's concurrency)
        self._normals: dict[str, CameraNormal] = {}  # each camera's learned picture
        self._cameras = {c.id: c for c in config.cameras if c.rtsp_url and c.stream.enabled}
        self._due: dict[str, float] = {}  # when each camera is probed next (monotonic)
        self._wake = asyncio.Event()  # a camera's next probe was brought forward
        # Held while a camera's probe judges against its normal (in a worker thread), and while
        # a person's acceptance replaces the normal's view: one at a time.
        self._judging: dict[str, asyncio.Lock] = {}

    def probes_stream(self, camera: str) -> bool:
        """True if ``camera``'s stream is probed here."""
        return camera in self._cameras

    async def adopt_view(self, camera: str) -> str:
        """Make ``camera``'s current view its learned view (after a probe running now has
        judged), then probe it again at once, so its next verdict is judged against it."""
        limits = self._thresholds(self._cameras[camera])
        async with self._judging.setdefault(camera, asyncio.Lock()):
            normal = self._normals.get(camera)
            adopted = normal is not None and normal.adopt(
                limit=limits.view_change, needed=limits.baseline_probes
            )
        if not adopted:
            raise NoViewError(
                f"no view of camera {camera} seen since the agent started: it learns its view "
                "from its next probes by itself"
            )
        log.info("camera %s: its current view is now its learned view (accepted)", camera)
        self._due[camera] = time.monotonic()
        self._wake.set()
        return "current view adopted as the learned view; probing again now"

    def _thresholds(self, camera: CameraConfig) -> StreamThresholds:
        limits = camera.stream.thresholds or self._config.stream.thresholds
        return StreamThresholds(**limits.model_dump())

    async def run(self) -> None:
        """Probe forever; each camera's first probe is offset by its share of the interval."""
        cameras = list(self._cameras.values())
        if not cameras:
            return
        interval = self._config.stream.interval_s
        start = time.monotonic()
        due = self._due
        due.update({c.id: start + interval * i / len(cameras) for i, c in enumerate(cameras)})
        running: set[str] = set()
        async with asyncio.TaskGroup() as tasks:
            while True:
                now = time.monotonic()
                for camera in cameras:
                    if due[camera.id] <= now and camera.id not in running:
                        due[camera.id] += interval
                        running.add(camera.id)
                        task = tasks.create_task(self._probe(camera), name=f"stream-{camera.id}")
                        task.add_done_callback(functools.partial(_done, running, camera.id))
                with contextlib.suppress(TimeoutError):
                    wait_s = max(0.05, min(due.values()) - time.monotonic())
                    await asyncio.wait_for(self._wake.wait(), wait_s)
                self._wake.clear()

    async def _probe(self, camera: CameraConfig) -> None:
        settings = self._config.stream
        judging = self._judging.setdefault(camera.id, asyncio.Lock())
        async with self._slots, judging:
            self.active += 1
            started_ns = self._clock.boot_ns()
            try:
                result = await asyncio.to_thread(
                    probe_with_fallback,
                    stream_url(camera),
                    transport=settings.transport,
                    sample_s=settings.sample_s,
                    timeout_s=settings.timeout_s,
                    thresholds=self._thresholds(camera),
                    normal=self._normals.setdefault(camera.id, CameraNormal()),
                )
            except Exception:  # one camera's odd stream must not stop the others' probes
                log.exception("stream probe of camera %s failed", camera.id)
                return
            finally:
                self.active -= 1
        self._pictures[camera.id] = result.fault
        if result.fault is not StreamFault.NONE:
            log.info("camera %s picture: %s (%s)", camera.id, result.fault, result.detail)
        if result.relearned:
            log.info("camera %s: its new view was stable and is now its learned view", camera.id)
        # Stamped and submitted in one synchronous step (edge_agent/clock.py, thread rule).
        ts = self._clock.stamp(("stream", camera.id), started_ns)
        body = to_reading(camera.id, ts, result).model_dump_json(exclude_none=True).encode()
        item = [("streams", ts, body)]
        await asyncio.get_running_loop().run_in_executor(
            self._executor,
            functools.partial(self._queue.append, item, now_ns=self._clock.now_ns()),
        )
        self._publisher.notify()


def _done(running: set[str], camera: str, _task: asyncio.Task[None]) -> None:
    running.discard(camera)
