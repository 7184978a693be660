"""Drives the ingest core: take messages, batch them, write, answer the sites, ack in order.

A message is acknowledged to the broker only after its points were written (or, if invalid,
after it was stored as a dead letter), and acks go out in the order messages arrived. A crash
therefore loses nothing: the broker redelivers what was not acked on the resumed session, and
a redelivered reading overwrites the identical point (same measurement, tags, timestamp).

While the sink fails, the pipeline stops consuming once ``write_concurrency`` batches are being
retried and ``BATCH_QUEUE_DEPTH`` wait; then the link's inbound queue fills and it stops reading
the socket. Memory stays bounded and the backlog waits in the broker's queue for our session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from cloud.deadletter import DeadLetter
from cloud.decode import RejectReason
from cloud.ingest.core import Batch, IngestCore
from cloud.ingest.ports import BirthLookup, BrokerLink, DeadLetterSink, PointSink
from cloud.metrics import CollectorMetrics
from pantau.core.contract import site_receipts_topic
from pantau.core.mqtt_types import NotConnectedError

log = logging.getLogger(__name__)

BATCH_QUEUE_DEPTH = 2  # batches waiting for a write slot: parsing overlaps the writes in flight


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """Batching: a batch is written at ``max_lines`` points or ``max_delay_s`` after it began."""

    max_lines: int
    max_delay_s: float
    write_concurrency: int


class IngestPipeline:
    """One collector's consume/write/ack loops over its ports; ``run()`` until cancelled."""

    def __init__(
        self,
        *,
        core: IngestCore,
        link: BrokerLink,
        sink: PointSink,
        dead_letters: DeadLetterSink,
        metrics: CollectorMetrics,
        settings: PipelineSettings,
        births: BirthLookup | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._birth_lookup = births
        self.core = core
        self._link, self._sink, self._dead_letters = link, sink, dead_letters
        self._metrics = metrics
        self._settings = settings
        self._clock_ns = clock_ns
        self._batches: asyncio.Queue[Batch] = asyncio.Queue(maxsize=BATCH_QUEUE_DEPTH)
        self.pending_messages = 0
        self.pending_points = 0

    async def run(self) -> None:
        """Consume and write until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._consume(), name="ingest-consume")
            tasks.create_task(self._write(), name="ingest-write")

    async def _consume(self) -> None:
        batch = Batch()
        max_lines, max_delay = self._settings.max_lines, self._settings.max_delay_s
        while True:
            timeout = None if not batch.messages else batch.started + max_delay - time.monotonic()
            try:
                async with asyncio.timeout(timeout):
                    message = await self._link.messages.get()
            except TimeoutError:
                batch = await self._hand_over(batch)
                continue
            if self._birth_lookup is not None and (site := self.core.will_site(message)):
                await self._learn_birth(site)
            if not batch.messages:
                batch.started = time.monotonic()
            before = len(batch.lines)
            self.core.take(batch, message, self._clock_ns())
            self.pending_messages += 1
            self.pending_points += len(batch.lines) - before
            self._gauges()
            if len(batch.lines) >= max_lines or time.monotonic() - batch.started >= max_delay:
                batch = await self._hand_over(batch)

    async def _learn_birth(self, site: str) -> None:
        """Before a will is written: the site's latest birth, wherever it was written (a failed
        look-up leaves the will to what this collector knows)."""
        assert self._birth_lookup is not None
        try:
            birth = await self._birth_lookup.latest_birth(site)
        except Exception as exc:  # noqa: BLE001 (the store's trouble must not stop ingest)
            log.warning("could not look up the latest birth of %s: %s", site, exc)
            return
        if birth is not None:
            self.core.births.learn(site, birth)

    async def _hand_over(self, batch: Batch) -> Batch:
        if batch.messages:
            await self._batches.put(batch)
        return Batch()

    async def _write(self) -> None:
        """Write up to ``write_concurrency`` batches at once; ack them strictly in order."""
        slots = asyncio.Semaphore(self._settings.write_concurrency)
        previous: asyncio.Future[None] | None = None
        async with asyncio.TaskGroup() as tasks:
            while True:
                batch = await self._batches.get()
                await slots.acquire()
                acked = asyncio.get_running_loop().create_future()
                tasks.create_task(self._store(batch, previous, acked, slots), name="store")
                previous = acked

    async def _store(
        self,
        batch: Batch,
        previous: asyncio.Future[None] | None,
        acked: asyncio.Future[None],
        slots: asyncio.Semaphore,
    ) -> None:
        """Persist one batch, wait for the batch before it to be acked, then ack this one."""
        try:
            if batch.dead:
                await self._dead_letters.add(batch.dead)
            if batch.lines:
                refused = await self._sink.write(batch.lines)
                if refused:
                    now_ns = self._clock_ns()
                    reason = RejectReason.INFLUX_REFUSED.value
                    self._metrics.messages_rejected.labels(reason=reason).inc(len(refused))
                    await self._dead_letters.add(
                        [
                            DeadLetter(now_ns, "influx", reason, err[:200], line.encode())
                            for line, err in refused
                        ]
                    )
                written = len(batch.lines) - len(refused) - batch.marks
                self._metrics.readings_written.inc(max(0, written))
            self._answer(batch)
            if previous is not None:
                await previous  # MQTT wants acks in arrival order
            for message in batch.messages:
                self._link.ack(message)
            self.pending_messages -= len(batch.messages)
            self.pending_points -= len(batch.lines)
            self._gauges()
            acked.set_result(None)
        finally:
            slots.release()

    def _answer(self, batch: Batch) -> None:
        """Tell each site what became of its messages; its agent then forgets or sets aside.

        Fire and forget: an answer lost on the way (site offline, broker restart) only makes the
        agent send those readings again after its receipt timeout, and storage is idempotent.
        """
        now_ns = self._clock_ns()
        for (site, _minor), answers in batch.answers.items():
            for payload in answers.payloads(now_ns):
                try:
                    sent = self._link.publish_nowait(site_receipts_topic(site), payload, qos=1)
                except NotConnectedError:
                    self._metrics.receipts_unsent.inc()
                    continue
                sent.add_done_callback(self._receipt_done)
                self._metrics.receipts_sent.inc()

    def _receipt_done(self, future: asyncio.Future[None]) -> None:
        if future.cancelled() or future.exception() is not None:
            self._metrics.receipts_unsent.inc()

    def _gauges(self) -> None:
        self._metrics.pending_messages.set(self.pending_messages)
        self._metrics.pending_points.set(self.pending_points)
