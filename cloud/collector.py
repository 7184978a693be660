"""The collector: MQTT (shared, persistent session) → validate → batch → InfluxDB → ack.

A message is acknowledged to the broker only after its points were written to InfluxDB (or, if
invalid, after it was stored as a dead letter), and acks go out in the order messages arrived. A
crash therefore loses nothing: the broker redelivers what was not acked on the resumed session,
and a redelivered reading overwrites the identical point (same measurement, tags, timestamp).

While InfluxDB is down, the pipeline stops consuming once ``write_concurrency`` batches are being
retried and ``BATCH_QUEUE_DEPTH`` wait; then the inbound queue (``receive_maximum`` messages)
fills and the MQTT link stops reading the socket. Memory stays bounded and the backlog waits in
the broker's queue for our persistent session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cloud.budget import DeviceBudget
from cloud.collector_http import create_collector_app
from cloud.config import CollectorConfig
from cloud.deadletter import DeadLetter, DeadLetterStore
from cloud.decode import Accepted, RejectReason, decode_limits, decode_message
from cloud.influx import InfluxClient, InfluxError, InfluxSettings
from cloud.lineproto import format_line, join_lines
from cloud.metrics import CollectorMetrics, by_label, counter_value
from cloud.rollup.service import run_rollups
from cloud.schema import COLLECTOR, FUTURE_REJECTED, REJECTED, SITE_CLOCK
from cloud.sessions import clear_sessions
from cloud.sink import InfluxSink, RetryPolicy
from cloud.webserver import bind_socket, serve_app
from pantau.core.contract import Receipt, TopicKind, all_sites_filter, site_receipts_topic
from pantau.core.mqtt import (
    BrokerAddress,
    LinkSettings,
    Message,
    MqttLink,
    NotConnectedError,
)

log = logging.getLogger(__name__)

BATCH_QUEUE_DEPTH = 2  # batches waiting for a write slot: parsing overlaps the writes in flight


@dataclass
class _Batch:
    lines: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    started: float = 0.0
    receipts: dict[str, list[int]] = field(default_factory=dict)  # site -> message ids
    marks: int = 0  # rollup marks among the lines (not readings)


class Collector:
    """One collector instance; ``run()`` until cancelled."""

    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        self.metrics = CollectorMetrics()
        self.http_port: int | None = None
        self.ready = asyncio.Event()
        c = config.mqtt
        address = BrokerAddress.parse(c.url)
        self._link = MqttLink(
            LinkSettings(
                address=address,
                client_id=c.client_id,
                username=c.username,
                password=c.password,
                keepalive_s=c.keepalive_s,
                clean_start=False,
                session_expiry_s=c.session_expiry_s,
                receive_maximum=c.receive_maximum,
                # The broker keeps larger messages from us: the payload check below is not the
                # first to see a 200 MB message. Slightly oversized ones still arrive, and are
                # counted and dead-lettered as such.
                max_packet_bytes=2 * config.validation.max_payload_bytes + 4096,
                manual_ack=True,
                ca_file=str(c.ca_file) if c.ca_file else None,
            ),
            message_queue_size=c.receive_maximum,
        )
        i = config.influx
        self._influx = InfluxClient(
            InfluxSettings(
                url=i.url,
                database=i.database,
                username=i.username,
                password=i.password,
                token=i.token,
                timeout_s=i.timeout_s,
            )
        )
        self._sink = InfluxSink(
            self._influx,
            self.metrics,
            RetryPolicy(min_s=config.batch.retry_min_s, max_s=config.batch.retry_max_s),
        )
        self._limits = decode_limits(config)
        # Sites' clock offsets seen since the last self-report: written at the collector's time,
        # because a site whose clock is wrong stamps its own readings where "now" never looks.
        self._site_clocks: dict[str, float] = {}
        self._budget = DeviceBudget(
            max_devices=config.validation.max_devices_per_site,
            max_sites=config.validation.max_sites,
        )
        self._batches: asyncio.Queue[_Batch] = asyncio.Queue(maxsize=BATCH_QUEUE_DEPTH)
        self._dead_letters = DeadLetterStore(
            config.dead_letter_path, max_rows=config.dead_letter_max_rows
        )
        self._pending_messages = 0
        self._pending_points = 0
        # SQLite connections must not be used by two threads at once: one thread owns it.
        self._dead_letter_thread = ThreadPoolExecutor(1, thread_name_prefix="dead-letters")

    def health(self) -> dict[str, Any]:
        """Health for ``/healthz``: broker connected and InfluxDB writes succeeding."""
        mqtt_ok = self._link.connected.is_set()
        return {
            "ok": mqtt_ok and self._sink.healthy,
            "mqtt_connected": mqtt_ok,
            "influx_ok": self._sink.healthy,
            "influx_error": self._sink.last_error,
            "pending_messages": self._pending_messages,
            "pending_points": self._pending_points,
            "inbound_queued": self._link.messages.qsize(),
        }

    async def run(self) -> None:
        """Connect, consume and write until cancelled; then stop cleanly."""
        sock = bind_socket(self.config.http_host, self.config.http_port)
        self.http_port = sock.getsockname()[1]
        app = create_collector_app(self.metrics, self.health)
        if self.config.influx.create_database:
            try:
                await self._influx.create_database()
            except InfluxError as exc:
                log.warning("could not create database yet (will retry on write): %s", exc)
        share = self.config.mqtt.share_group
        await self._link.subscribe(
            [
                all_sites_filter(TopicKind.READINGS, share_group=share),
                all_sites_filter(TopicKind.STATUS, share_group=share),
            ]
        )
        await clear_sessions(self.config.mqtt)
        await self._link.start()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(serve_app(app, sock), name="collector-http")
                tasks.create_task(self._consume(), name="collector-consume")
                tasks.create_task(self._write(), name="collector-write")
                tasks.create_task(self._self_metrics(), name="collector-self-metrics")
                tasks.create_task(self._watch_link(), name="collector-link-watch")
                tasks.create_task(self._link.raise_on_failure(), name="collector-link-fatal")
                if self.config.rollup.enabled:
                    rollups = run_rollups(self._influx.settings, self.config.rollup)
                    tasks.create_task(rollups, name="collector-rollups")
                self.ready.set()
        finally:
            await self._link.close()
            await self._influx.aclose()
            self._dead_letter_thread.shutdown(wait=True)
            self._dead_letters.close()

    async def _watch_link(self) -> None:
        while True:
            await self._link.connected.wait()
            self.metrics.mqtt_connected.set(1)
            await self._link.disconnected.wait()
            self.metrics.mqtt_connected.set(0)

    async def _consume(self) -> None:
        batch = _Batch()
        max_lines = self.config.batch.max_lines
        max_delay = self.config.batch.max_delay_s
        while True:
            timeout = None if not batch.messages else batch.started + max_delay - time.monotonic()
            try:
                async with asyncio.timeout(timeout):
                    message = await self._link.messages.get()
            except TimeoutError:
                batch = await self._hand_over(batch)
                continue
            if not batch.messages:
                batch.started = time.monotonic()
            self._add(batch, message)
            if len(batch.lines) >= max_lines or time.monotonic() - batch.started >= max_delay:
                batch = await self._hand_over(batch)

    def _add(self, batch: _Batch, message: Message) -> None:
        self.metrics.messages_received.inc()
        now_ns = time.time_ns()
        result = decode_message(
            message.topic,
            message.payload,
            retain=message.retain,
            now_ns=now_ns,
            limits=self._limits,
            budget=self._budget,
        )
        batch.messages.append(message)
        self._pending_messages += 1
        if isinstance(result, Accepted):
            batch.lines.extend(result.lines)
            batch.lines.extend(result.marks)  # in the same write as the late readings
            batch.marks += len(result.marks)
            self._pending_points += len(result.lines) + len(result.marks)
            if result.over_budget:
                self._over_budget(batch, message, result.site, result.over_budget, now_ns)
            if result.too_old:
                reason = RejectReason.BEYOND_RETENTION
                self.metrics.messages_rejected.labels(reason=reason.value).inc()
                detail = f"{result.too_old} readings older than raw retention left out"
                batch.dead.append(
                    DeadLetter(now_ns, message.topic, reason.value, detail, message.payload)
                )
            if result.msg is not None:
                batch.receipts.setdefault(result.site, []).append(result.msg)
            if result.clock_offset_ms is not None:
                self._site_clocks[result.site] = result.clock_offset_ms
        else:
            self.metrics.messages_rejected.labels(reason=result.reason.value).inc()
            if result.reason is RejectReason.FUTURE_TIMESTAMP and result.site:
                self.metrics.future_rejected.labels(site=result.site).inc()
            log.debug(
                "rejected message on %s: %s (%s)", message.topic, result.reason, result.detail
            )
            batch.dead.append(
                DeadLetter(
                    now_ns, message.topic, result.reason.value, result.detail, message.payload
                )
            )
        self.metrics.pending_messages.set(self._pending_messages)
        self.metrics.pending_points.set(self._pending_points)

    def _over_budget(
        self, batch: _Batch, message: Message, site: str, keys: list[str], now_ns: int
    ) -> None:
        reason = RejectReason.DEVICE_BUDGET
        self.metrics.messages_rejected.labels(reason=reason.value).inc()
        self.metrics.budget_refused.labels(site=site).inc(len(keys))
        detail = f"{len(keys)} devices over the site's budget, e.g. {', '.join(keys[:3])}"
        log.debug("site %s: %s", site, detail)
        letter = DeadLetter(now_ns, message.topic, reason.value, detail[:200], message.payload)
        batch.dead.append(letter)

    async def _hand_over(self, batch: _Batch) -> _Batch:
        if batch.messages:
            await self._batches.put(batch)
        return _Batch()

    async def _write(self) -> None:
        """Write up to ``write_concurrency`` batches at once; ack them strictly in order."""
        slots = asyncio.Semaphore(self.config.batch.write_concurrency)
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
        batch: _Batch,
        previous: asyncio.Future[None] | None,
        acked: asyncio.Future[None],
        slots: asyncio.Semaphore,
    ) -> None:
        """Persist one batch, wait for the batch before it to be acked, then ack this one."""
        try:
            if batch.dead:
                await self._dead_letter(batch.dead)
            if batch.lines:
                refused = await self._sink.write(batch.lines)
                if refused:
                    now_ns = time.time_ns()
                    reason = RejectReason.INFLUX_REFUSED.value
                    self.metrics.messages_rejected.labels(reason=reason).inc(len(refused))
                    await self._dead_letter(
                        [
                            DeadLetter(now_ns, "influx", reason, err[:200], line.encode())
                            for line, err in refused
                        ]
                    )
                written = len(batch.lines) - len(refused) - batch.marks
                self.metrics.readings_written.inc(max(0, written))
            self._send_receipts(batch)
            if previous is not None:
                await previous  # MQTT wants acks in arrival order
            for message in batch.messages:
                self._link.ack(message)
            self._pending_messages -= len(batch.messages)
            self._pending_points -= len(batch.lines)
            self.metrics.pending_messages.set(self._pending_messages)
            self.metrics.pending_points.set(self._pending_points)
            acked.set_result(None)
        finally:
            slots.release()

    def _send_receipts(self, batch: _Batch) -> None:
        """Tell each site which of its messages are stored; its agent then forgets them.

        Fire and forget: a receipt lost on the way (site offline, broker restart) only makes the
        agent send those readings again after its receipt timeout, and storage is idempotent.
        """
        now_ns = time.time_ns()
        for site, msgs in batch.receipts.items():
            payload = Receipt(site=site, msgs=msgs, ts=now_ns).model_dump_json().encode()
            try:
                sent = self._link.publish_nowait(site_receipts_topic(site), payload, qos=1)
            except NotConnectedError:
                self.metrics.receipts_unsent.inc()
                continue
            sent.add_done_callback(self._receipt_done)
            self.metrics.receipts_sent.inc()

    def _receipt_done(self, future: asyncio.Future[None]) -> None:
        if future.cancelled() or future.exception() is not None:
            self.metrics.receipts_unsent.inc()

    async def _dead_letter(self, letters: list[DeadLetter]) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._dead_letter_thread, self._dead_letters.add_many, letters)

    async def _self_metrics(self) -> None:
        """Write the collector's own counters to InfluxDB for the health dashboard (best effort)."""
        instance = self.config.instance
        while True:
            await asyncio.sleep(self.config.self_metrics_interval_s)
            now_ns = time.time_ns()
            lines = [
                format_line(
                    COLLECTOR,
                    {"instance": instance},
                    {
                        "received": int(counter_value(self.metrics.messages_received)),
                        "written": int(counter_value(self.metrics.readings_written)),
                        "pending_messages": self._pending_messages,
                        "pending_points": self._pending_points,
                        "write_latency_ms": self._mean_write_latency_ms(),
                        "influx_ok": 1 if self._sink.healthy else 0,
                    },
                    now_ns,
                )
            ]
            clocks, self._site_clocks = self._site_clocks, {}
            per_label = (
                (REJECTED, "reason", "count", self.metrics.rejected_by_reason()),
                (SITE_CLOCK, "site", "offset_ms", clocks),
                (FUTURE_REJECTED, "site", "count", by_label(self.metrics.future_rejected, "site")),
            )
            for measurement, label, field_name, values in per_label:
                lines += [
                    format_line(
                        measurement,
                        {"instance": instance, label: key},
                        {field_name: int(value) if field_name == "count" else float(value)},
                        now_ns,
                    )
                    for key, value in values.items()
                ]
            try:
                await self._influx.write(join_lines(lines))
            except InfluxError as exc:
                log.debug("self-metrics write skipped: %s", exc)

    def _mean_write_latency_ms(self) -> float:
        total = count = 0.0
        for metric in self.metrics.write_latency.collect():
            for sample in metric.samples:
                if sample.name.endswith("_sum"):
                    total = sample.value
                elif sample.name.endswith("_count"):
                    count = sample.value
        return 1000.0 * total / count if count else 0.0
