"""Device checks on a schedule: each camera's ONVIF service and each recorder, every
``devices.interval_s``, spread over the interval, at most ``devices.concurrency`` at once.

A check's readings are stamped by the agent's clock and queued like any probe's. One device's
failure is its reading (``ok=False`` or ``error``); a bug in a check is logged and costs that
device one round, never the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel

from edge_agent.config import AgentConfig
from edge_agent.devices.onvif_check import OnvifTarget, check_onvif
from edge_agent.devices.onvif_events import EventWatch, event_watches
from edge_agent.publisher import Publisher
from edge_agent.queue import ForwardQueue
from edge_agent.queue_rows import StampClock as Clock

log = logging.getLogger(__name__)

EVENT_WATCH_RESTART_S = 60.0  # after a bug in a watch: long enough not to spin, short to recover
Reading = tuple[str, tuple[str, ...], BaseModel]
"""A check's result: (``ReadingBatch`` list, the device's clock key, the reading with ts 0)."""


class RecorderCheck(Protocol):
    """A recorder adapter (``edge_agent.recorders``): one check of everything it records."""

    @property
    def id(self) -> str: ...

    async def check(self, now_ns: int) -> list[Reading]: ...


@dataclass(frozen=True, slots=True)
class Job:
    """One device's check."""

    name: str
    run: Callable[[], Awaitable[list[Reading]]]


def onvif_targets(config: AgentConfig) -> list[OnvifTarget]:
    """Every camera with an ``onvif`` section, as the ONVIF client reaches it."""
    targets = []
    for camera in config.cameras:
        if camera.onvif is None:
            continue
        host = camera.onvif.host or camera.host or _url_host(camera.rtsp_url or camera.snapshot_url)
        targets.append(
            OnvifTarget(
                camera=camera.id,
                host=host,
                port=camera.onvif.port,
                username=camera.onvif.username or camera.username,
                password=camera.onvif.password or camera.password,
            )
        )
    return targets


def onvif_jobs(
    config: AgentConfig, clock: Clock, watches: Mapping[str, EventWatch] | None = None
) -> list[Job]:
    """A job per camera with an ``onvif`` section; its reading carries the camera's event
    verdict where ``watches`` has one."""
    jobs: list[Job] = []
    limits = config.devices
    for target in onvif_targets(config):
        watch = (watches or {}).get(target.camera)

        async def run(
            target: OnvifTarget = target, watch: EventWatch | None = watch
        ) -> list[Reading]:
            reading = await check_onvif(
                target,
                now_ns=clock.now_ns,
                timeout_s=limits.timeout_s,
                max_bytes=limits.max_answer_bytes,
            )
            if watch is not None:
                reading = reading.model_copy(update=watch.snapshot().fields())
            return [("devices", ("device", target.camera), reading)]

        jobs.append(Job(name=f"onvif-{target.camera}", run=run))
    return jobs


def recorder_jobs(recorders: Sequence[RecorderCheck], clock: Clock) -> list[Job]:
    """A job per recorder adapter."""
    return [
        Job(name=f"recorder-{r.id}", run=functools.partial(_recorder_run, r, clock))
        for r in recorders
    ]


async def _recorder_run(recorder: RecorderCheck, clock: Clock) -> list[Reading]:
    return await recorder.check(clock.now_ns())


def _url_host(url: str | None) -> str:
    return urlsplit(url or "").hostname or ""


class DeviceScheduler:
    """Runs the site's device checks and queues their readings."""

    def __init__(
        self,
        config: AgentConfig,
        jobs: list[Job],
        *,
        clock: Clock,
        queue: ForwardQueue,
        executor: ThreadPoolExecutor,
        publisher: Publisher | None,
        watches: Sequence[EventWatch] = (),
    ) -> None:
        self._config = config
        self._jobs = jobs
        self._watches = watches
        self._poked: set[str] = set()
        self._wake = asyncio.Event()
        self._clock = clock
        self._queue = queue
        self._executor = executor
        self._publisher = publisher
        self._slots = asyncio.Semaphore(config.devices.concurrency)
        self.rounds = 0  # checks finished (tests wait on it)

    @classmethod
    def for_site(
        cls,
        config: AgentConfig,
        *,
        clock: Clock,
        queue: ForwardQueue,
        executor: ThreadPoolExecutor,
        publisher: Publisher | None,
    ) -> DeviceScheduler:
        """The scheduler of every ONVIF camera and recorder in ``config``."""
        from edge_agent.recorders.build import build_recorders  # noqa: PLC0415

        recorders = build_recorders(config)
        watches = event_watches(config, onvif_targets(config), now_ns=clock.now_ns)
        by_camera = {w.target.camera: w for w in watches}
        jobs = onvif_jobs(config, clock, by_camera) + recorder_jobs(recorders, clock)
        scheduler = cls(
            config, jobs, clock=clock, queue=queue, executor=executor, publisher=publisher,
            watches=watches,
        )  # fmt: skip
        for watch in watches:
            watch.on_change = scheduler.poke
            watch.slots = scheduler._slots  # subscribing takes a device slot, as a check does
        return scheduler

    def poke(self, camera: str) -> None:
        """Check ``camera``'s ONVIF service now (its events changed)."""
        self._poked.add(f"onvif-{camera}")
        self._wake.set()

    async def run(self) -> None:
        """Check forever; each device's first check is offset by its share of the interval."""
        if not self._jobs:
            return
        interval = self._config.devices.interval_s
        start = time.monotonic()
        due = {job.name: start + interval * i / len(self._jobs) for i, job in enumerate(self._jobs)}
        running: set[str] = set()
        async with asyncio.TaskGroup() as tasks:
            for watch in self._watches:
                tasks.create_task(_watched(watch), name=f"events-{watch.target.camera}")
            while True:
                now = time.monotonic()
                for name in self._poked & due.keys():
                    due[name] = min(due[name], now)
                self._poked.clear()
                for job in self._jobs:
                    if due[job.name] <= now and job.name not in running:
                        due[job.name] += interval
                        running.add(job.name)
                        task = tasks.create_task(self._one(job), name=job.name)
                        task.add_done_callback(functools.partial(_done, running, job.name))
                self._wake.clear()
                wait = max(0.05, min(due.values()) - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)

    async def _one(self, job: Job) -> None:
        async with self._slots:
            started_ns = self._clock.boot_ns()
            try:
                readings = await job.run()
            except Exception:  # a bug in one device's check must not stop the others
                log.exception("device check %s failed", job.name)
                return
            finally:
                self.rounds += 1
        # Stamped and submitted in one synchronous step (edge_agent/clock.py, thread rule).
        items = []
        for kind, device, reading in readings:
            ts = self._clock.stamp(device, started_ns)
            body = reading.model_copy(update={"ts": ts}).model_dump_json(exclude_none=True)
            items.append((kind, ts, body.encode()))
        if not items:
            return
        await asyncio.get_running_loop().run_in_executor(
            self._executor,
            functools.partial(self._queue.append, items, now_ns=self._clock.now_ns()),
        )
        if self._publisher is not None:
            self._publisher.notify()


def _done(running: set[str], name: str, _task: asyncio.Task[None]) -> None:
    running.discard(name)


async def _watched(watch: EventWatch) -> None:
    """A camera's event watch; a bug in it is logged and the watch started again."""
    while True:
        try:
            await watch.run()
        except Exception:  # a bug in one camera's watch must not stop the others
            log.exception("event watch of camera %s failed", watch.target.camera)
        await asyncio.sleep(EVENT_WATCH_RESTART_S)
