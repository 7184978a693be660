"""Device checks on a schedule: each camera's ONVIF service and each recorder, every
``devices.interval_s``, spread over the interval, at most ``devices.concurrency`` at once.

A check's readings are stamped by the agent's clock and queued like any probe's. One device's
failure is its reading (``ok=False`` or ``error``); a bug in a check is logged and costs that
device one round, never the agent.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel

from edge_agent.config import AgentConfig
from edge_agent.devices.onvif_check import OnvifTarget, check_onvif
from edge_agent.publisher import Publisher
from edge_agent.queue import ForwardQueue
from edge_agent.queue_rows import StampClock as Clock

log = logging.getLogger(__name__)

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


def onvif_jobs(config: AgentConfig, clock: Clock) -> list[Job]:
    """A job per camera with an ``onvif`` section."""
    jobs: list[Job] = []
    limits = config.devices
    for camera in config.cameras:
        if camera.onvif is None:
            continue
        host = camera.onvif.host or camera.host or _url_host(camera.rtsp_url or camera.snapshot_url)
        target = OnvifTarget(
            camera=camera.id,
            host=host,
            port=camera.onvif.port,
            username=camera.onvif.username or camera.username,
            password=camera.onvif.password or camera.password,
        )

        async def run(target: OnvifTarget = target) -> list[Reading]:
            reading = await check_onvif(
                target,
                now_ns=clock.now_ns,
                timeout_s=limits.timeout_s,
                max_bytes=limits.max_answer_bytes,
            )
            return [("devices", ("device", target.camera), reading)]

        jobs.append(Job(name=f"onvif-{camera.id}", run=run))
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
    ) -> None:
        self._config = config
        self._jobs = jobs
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
        jobs = onvif_jobs(config, clock) + recorder_jobs(recorders, clock)
        return cls(config, jobs, clock=clock, queue=queue, executor=executor, publisher=publisher)

    async def run(self) -> None:
        """Check forever; each device's first check is offset by its share of the interval."""
        if not self._jobs:
            return
        interval = self._config.devices.interval_s
        start = time.monotonic()
        due = {job.name: start + interval * i / len(self._jobs) for i, job in enumerate(self._jobs)}
        running: set[str] = set()
        async with asyncio.TaskGroup() as tasks:
            while True:
                now = time.monotonic()
                for job in self._jobs:
                    if due[job.name] <= now and job.name not in running:
                        due[job.name] += interval
                        running.add(job.name)
                        task = tasks.create_task(self._one(job), name=job.name)
                        task.add_done_callback(functools.partial(_done, running, job.name))
                await asyncio.sleep(max(0.05, min(due.values()) - time.monotonic()))

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
