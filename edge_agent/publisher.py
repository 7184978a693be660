"""Forward queued readings to the broker: live readings first, the backlog oldest first.

On every (re)connect the queue is split at its current highest id: rows above it are *live* and
are published as soon as they are queued; rows at or below it are the *backlog*, replayed oldest
first and at most ``replay_rate_per_s`` readings per second, in the gaps between live batches. So
live readings are never delayed behind a day of backlog, and the uplink is not flooded.

A row leaves the queue only when the collector's receipt names the message carrying it: the
receipt is sent once InfluxDB stored the batch, so nothing the broker does with its sessions
(restarts, a shared subscription missing for a moment) can lose a reading. PUBACK only marks a
message sent. A message not acknowledged within ``ack_timeout_s``, or not receipted within
``receipt_timeout_s`` of its PUBACK, is published again (duplicates are harmless: storage is
idempotent on the reading's identity). With ``receipts: false`` the PUBACK ends a row's stay.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from edge_agent.config import PublishConfig
from edge_agent.queue import ForwardQueue, QueuedReading
from edge_agent.rejects import EdgeRejects
from edge_agent.roundtrips import RoundTrips
from edge_agent.tokenbucket import TokenBucket
from edge_agent.wire import PeerContract, encode_batch, parse_answer
from pantau.core.contract import (
    ContractNotice,
    PublishTopic,
    RejectedMessage,
    TopicFilter,
    TopicKind,
    site_receipts_topic,
    site_topic,
)
from pantau.core.mqtt import Message, NotConnectedError

log = logging.getLogger(__name__)
T = TypeVar("T")

IDLE_POLL_S = 0.5  # upper bound on how long new readings wait if a wake-up was missed


@dataclass
class _InFlight:
    ids: list[int]
    backlog: bool
    deadline: float
    msg: int
    sent_ns: int = 0  # at publish (``round_trips.now_ns``), for the clock offset


class PublishLink(Protocol):
    """What the publisher needs of a broker connection: ``MqttLink``, or a fake in unit tests."""

    connected: asyncio.Event
    messages: asyncio.Queue[Message]

    @property
    def generation(self) -> int:
        """Number of successful connects so far."""
        ...

    def publish_nowait(
        self, topic: PublishTopic, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        """Publish; the future resolves at the PUBACK. Raises ``NotConnectedError``."""
        ...


class Publisher:
    """Drains a queue into a ``PublishLink`` (an ``MqttLink``)."""

    def __init__(
        self,
        *,
        link: PublishLink,
        queue: ForwardQueue,
        executor: ThreadPoolExecutor,
        site: str,
        district: str,
        config: PublishConfig,
        peer: PeerContract | None = None,
        rejects: EdgeRejects | None = None,
        on_contract: Callable[[], None] | None = None,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._link, self._queue, self._executor = link, queue, executor
        self.round_trips = RoundTrips(now_ns)  # the clock offset (edge_agent/clock.py uses it)
        self.peer = peer or PeerContract(None)
        self._rejects = rejects
        # The agent publishes its birth again: in a new contract minor, and at the first receipt
        # of each connection (a birth sent before the collectors resubscribed after a broker
        # restart is dropped by the broker: shared subscriptions get no retained messages).
        self._on_contract = on_contract
        self._reborn_generation = -1
        self.on_command: Callable[[Message], None] | None = None  # command topic messages
        self._site, self._district, self._config = site, district, config
        self._topic = site_topic(site, TopicKind.READINGS)
        self._wake = asyncio.Event()
        self._inflight: dict[asyncio.Future[None], _InFlight] = {}
        self._inflight_ids: set[int] = set()
        self._bucket = TokenBucket(config.replay_rate_per_s, config.batch_max_readings)
        self._generation = -1
        self._boundary = 0
        self._live_cursor = 0
        self._backlog_cursor = 0
        self._deletes: set[asyncio.Future[None]] = set()
        self._awaiting: dict[int, _InFlight] = {}  # message id -> published, PUBACKed, no receipt

    @property
    def queue(self) -> ForwardQueue:
        """The queue this publisher drains."""
        return self._queue

    @property
    def receipts_filter(self) -> TopicFilter:
        """What the agent's link must subscribe to (before it starts) for receipts."""
        return TopicFilter(site_receipts_topic(self._site))

    def notify(self) -> None:
        """Tell the publisher new readings were queued."""
        self._wake.set()

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def run(self) -> None:
        """Publish (and take receipts) until cancelled."""
        if not self._config.receipts:
            await self._publish_loop()
            return
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._receipt_loop(), name=f"receipts-{self._site}")
            await self._publish_loop()

    async def _publish_loop(self) -> None:
        while True:
            await self._link.connected.wait()
            if self._link.generation != self._generation:
                await self._on_new_connection()
            self._expire_unacked()
            if (
                len(self._inflight) >= self._config.max_inflight
                or len(self._awaiting) >= self._config.max_unreceipted
            ):
                await self._sleep_until_woken(IDLE_POLL_S)
                continue
            rows, backlog = await self._next_rows()
            if not rows:
                await self._idle()
                continue
            msg = secrets.randbits(62) if self._config.receipts else None
            try:
                future = self._link.publish_nowait(
                    self._topic,
                    encode_batch(
                        self._site,
                        self._district,
                        [(row.kind, row.body) for row in rows],
                        msg=msg,
                        minor=self.peer.minor,
                    ),
                    qos=1,
                )
            except NotConnectedError:
                self._rewind(rows[0].id, backlog=backlog)
                continue
            ids = [row.id for row in rows]
            self._inflight[future] = _InFlight(
                ids,
                backlog,
                time.monotonic() + self._config.ack_timeout_s,
                msg or 0,
                self.round_trips.now_ns(),
            )
            self._inflight_ids.update(ids)
            future.add_done_callback(self._on_done)

    async def _receipt_loop(self) -> None:
        """Forget the readings of every message a receipt names; learn the collectors' minor."""
        while True:
            message = await self._link.messages.get()
            if message.topic != self.receipts_filter:  # the site's command topic
                if self.on_command is not None:
                    self.on_command(message)
                continue
            answer = parse_answer(message)
            if isinstance(answer, ContractNotice):
                if self.peer.learn(answer) and self._on_contract is not None:
                    self._on_contract()
            elif answer is not None and answer.site == self._site:
                self.on_receipt(answer.msgs, stored_ns=answer.ts, rejected=answer.rejected)
                if self._reborn_generation != self._link.generation:
                    self._reborn_generation = self._link.generation
                    if self._on_contract is not None:
                        self._on_contract()

    @property
    def clock_offset_ms(self) -> float | None:
        """The collector's clock minus ours (ms), from the fastest recent receipt round trip:
        the receipt was stamped between our publish and its arrival, so the error is at most
        half that round trip. ``None`` before the first receipt."""
        best = self.round_trips.best
        return None if best is None else best[0] / 1e6

    def on_receipt(
        self,
        msgs: list[int],
        *,
        stored_ns: int | None = None,
        rejected: list[RejectedMessage] | None = None,
    ) -> None:
        """Delete the rows of these messages from the queue (unknown ids are ignored); set the
        rows of messages refused for good aside (a refusal to retry leaves them queued)."""
        stored = set(msgs)
        for refusal in rejected or []:
            if refusal.msg in stored:
                log.warning("message %d stored in part: %s", refusal.msg, refusal.detail)
            elif not refusal.retry and (item := self._awaiting.pop(refusal.msg, None)):
                self._inflight_ids.difference_update(item.ids)
                self._set_aside(refusal, item.ids)
        ids: list[int] = []
        arrived_ns = self.round_trips.now_ns()
        for msg in msgs:
            if stored_ns is not None:
                self.round_trips.probe_answered(msg, arrived_ns, stored_ns)
            item = self._awaiting.pop(msg, None)
            if item is not None:
                ids += item.ids
                self._inflight_ids.difference_update(item.ids)
                if stored_ns is not None and item.sent_ns:
                    self.round_trips.add(item.sent_ns, arrived_ns, stored_ns)
        if ids:
            self._delete(ids)
            self._wake.set()

    def _set_aside(self, refusal: RejectedMessage, ids: list[int]) -> None:
        """Move refused rows to the edge dead letters, then out of the queue (one thread)."""

        def move() -> None:
            wanted = set(ids)
            rows = self._queue.take(after_id=min(ids) - 1, upto_id=max(ids), limit=len(ids) * 2)
            kept = [(r.kind, r.body) for r in rows if r.id in wanted]
            if self._rejects is not None:
                self._rejects.add(refusal.msg, refusal.reason, refusal.detail, kept)
            self._queue.delete(ids)

        done = asyncio.get_running_loop().run_in_executor(self._executor, move)
        self._deletes.add(done)
        done.add_done_callback(self._on_deleted)
        self._wake.set()

    @property
    def rejected_total(self) -> int | None:
        """Readings the cloud refused for good, set aside (``None`` without edge dead letters)."""
        return self._rejects.total if self._rejects is not None else None

    def _delete(self, ids: list[int]) -> None:
        # Runs on the queue's single worker thread, so it lands before any later take().
        delete = asyncio.get_running_loop().run_in_executor(self._executor, self._queue.delete, ids)
        self._deletes.add(delete)
        delete.add_done_callback(self._on_deleted)

    async def _on_new_connection(self) -> None:
        self._generation = self._link.generation
        self._boundary = await self._db(self._queue.max_id)
        self._live_cursor = self._boundary
        self._backlog_cursor = 0
        backlog = len(self._queue)
        if backlog:
            log.info("connected with %d queued readings; replaying the backlog", backlog)

    async def _next_rows(self) -> tuple[list[QueuedReading], bool]:
        limit = self._config.batch_max_readings
        live = await self._db(
            self._queue.take, after_id=self._live_cursor, upto_id=None, limit=limit
        )
        live = [r for r in live if r.id not in self._inflight_ids]
        if live:
            self._live_cursor = live[-1].id
            return live, False
        if self._backlog_cursor >= self._boundary or self._bucket.available() < 1:
            return [], True
        budget = max(1, min(limit, int(self._bucket.available())))
        rows = await self._db(
            self._queue.take, after_id=self._backlog_cursor, upto_id=self._boundary, limit=budget
        )
        if not rows:
            self._backlog_cursor = self._boundary
            return [], True
        self._backlog_cursor = rows[-1].id
        rows = [r for r in rows if r.id not in self._inflight_ids]
        self._bucket.take(len(rows))
        return rows, True

    def _rewind(self, first_id: int, *, backlog: bool) -> None:
        """Make rows from ``first_id`` on eligible for publishing again."""
        if backlog:
            self._backlog_cursor = min(self._backlog_cursor, first_id - 1)
        else:
            self._live_cursor = min(self._live_cursor, first_id - 1)

    async def _idle(self) -> None:
        timeout = IDLE_POLL_S
        if self._backlog_cursor < self._boundary:
            timeout = min(timeout, max(0.01, self._bucket.wait_s(1)))
        await self._sleep_until_woken(timeout)

    async def _sleep_until_woken(self, timeout_s: float) -> None:
        """Wait for new readings or an ack, at most ``timeout_s``."""
        self._wake.clear()
        try:
            async with asyncio.timeout(timeout_s):
                await self._wake.wait()
        except TimeoutError:
            pass

    def _on_done(self, future: asyncio.Future[None]) -> None:
        item = self._inflight.pop(future, None)
        if item is None:
            return
        if future.cancelled() or future.exception() is not None:
            self._inflight_ids.difference_update(item.ids)
            self._rewind(min(item.ids), backlog=item.backlog)
        elif self._config.receipts:
            # Sent, not yet stored: the rows stay queued (and out of the cursors' reach).
            item.deadline = time.monotonic() + self._config.receipt_timeout_s
            self._awaiting[item.msg] = item
        else:
            self._inflight_ids.difference_update(item.ids)
            self._delete(item.ids)
        self._wake.set()

    def _on_deleted(self, future: asyncio.Future[None]) -> None:
        self._deletes.discard(future)
        if not future.cancelled() and future.exception() is not None:
            # The rows stay queued and are sent again: a duplicate, never a loss.
            log.error("could not delete acknowledged readings: %s", future.exception())

    async def flush(self) -> None:
        """Publish until the queue is empty and every message was acknowledged.

        The caller bounds the time (the uplink may be down); what is not sent stays queued.
        """
        runner = asyncio.create_task(self.run(), name=f"flush-{self._site}")
        try:
            while len(self._queue) > 0 or self._inflight or self._awaiting or self._deletes:
                if runner.done():
                    runner.result()
                await asyncio.sleep(0.05)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    async def drain_deletes(self) -> None:
        """Wait for pending deletes of acknowledged readings (call before closing the queue)."""
        if self._deletes:
            await asyncio.gather(*self._deletes, return_exceptions=True)

    def _expire_unacked(self) -> None:
        now = time.monotonic()
        for future, item in list(self._inflight.items()):
            if item.deadline < now:
                log.warning(
                    "no PUBACK for %d readings after %.0fs; republishing",
                    len(item.ids),
                    self._config.ack_timeout_s,
                )
                del self._inflight[future]
                self._inflight_ids.difference_update(item.ids)
                self._rewind(min(item.ids), backlog=item.backlog)
        # Messages join _awaiting at their PUBACK with the same timeout, so deadlines grow in
        # insertion order: look from the oldest and stop at the first one still in time.
        expired = []
        for msg, item in self._awaiting.items():
            if item.deadline >= now:
                break
            expired.append(msg)
        if expired:
            log.warning(
                "no receipt for %d messages %.0fs after their PUBACK; sending them again",
                len(expired),
                self._config.receipt_timeout_s,
            )
        for msg in expired:
            item = self._awaiting.pop(msg)
            self._inflight_ids.difference_update(item.ids)
            self._rewind(min(item.ids), backlog=item.backlog)
