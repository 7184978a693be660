"""The collector service: wires the ingest pipeline to mosquitto and InfluxDB, serves
``/healthz`` and ``/metrics`` and writes its own counters for the Health dashboard.

The ordering rules (ack after write, answers after write, dead letters) live in
``cloud.ingest``; this module only builds the adapters from the configuration. The rollup worker
is a task of its own (``cloud.collector_service``), started beside the collector by the CLI.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from cloud.budget import DeviceBudget
from cloud.collector_http import create_collector_app
from cloud.config import CollectorConfig
from cloud.decode import decode_limits
from cloud.influx import InfluxClient, InfluxError, InfluxSettings
from cloud.ingest.adapters import InfluxBirths, ThreadedDeadLetters
from cloud.ingest.core import IngestCore
from cloud.ingest.pipeline import BATCH_QUEUE_DEPTH, IngestPipeline, PipelineSettings
from cloud.lineproto import format_line, join_lines
from cloud.metrics import CollectorMetrics, by_label, counter_value
from cloud.schema import COLLECTOR, FUTURE_REJECTED, REJECTED, SITE_CLOCK
from cloud.sessions import clear_sessions
from cloud.sink import InfluxSink, RetryPolicy
from cloud.sites_registry import SiteRegistry
from cloud.webserver import bind_socket, serve_app
from pantau.core.contract import CONTRACT_VERSION, TopicKind, all_sites_filter
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink

log = logging.getLogger(__name__)

__all__ = ["BATCH_QUEUE_DEPTH", "Collector"]


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
        self._dead_letters = ThreadedDeadLetters(
            config.dead_letter_path, max_rows=config.dead_letter_max_rows
        )
        self.registry = SiteRegistry(config.sites_registry)
        self.core = IngestCore(
            limits=decode_limits(config),
            budget=DeviceBudget(
                max_devices=config.validation.max_devices_per_site,
                max_sites=config.validation.max_sites,
            ),
            metrics=self.metrics,
            registry=self.registry,
        )
        b = config.batch
        self._pipeline = IngestPipeline(
            core=self.core,
            link=self._link,
            sink=self._sink,
            dead_letters=self._dead_letters,
            metrics=self.metrics,
            settings=PipelineSettings(
                max_lines=b.max_lines,
                max_delay_s=b.max_delay_s,
                write_concurrency=b.write_concurrency,
            ),
            births=InfluxBirths(self._influx, within_days=config.rollup.raw_days),
        )

    def health(self) -> dict[str, Any]:
        """Health for ``/healthz``: broker connected and InfluxDB writes succeeding."""
        mqtt_ok = self._link.connected.is_set()
        return {
            "ok": mqtt_ok and self._sink.healthy,
            "contract": CONTRACT_VERSION,
            "mqtt_connected": mqtt_ok,
            "influx_ok": self._sink.healthy,
            "influx_error": self._sink.last_error,
            "pending_messages": self._pipeline.pending_messages,
            "pending_points": self._pipeline.pending_points,
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
                tasks.create_task(self._pipeline.run(), name="collector-ingest")
                tasks.create_task(self._self_metrics(), name="collector-self-metrics")
                tasks.create_task(self._watch_link(), name="collector-link-watch")
                tasks.create_task(self.registry.watch(), name="collector-sites-registry")
                tasks.create_task(self._link.raise_on_failure(), name="collector-link-fatal")
                self.ready.set()
        finally:
            await self._link.close()
            await self._influx.aclose()
            self._dead_letters.close()

    async def _watch_link(self) -> None:
        while True:
            await self._link.connected.wait()
            self.metrics.mqtt_connected.set(1)
            await self._link.disconnected.wait()
            self.metrics.mqtt_connected.set(0)

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
                        "pending_messages": self._pipeline.pending_messages,
                        "pending_points": self._pipeline.pending_points,
                        "write_latency_ms": self._mean_write_latency_ms(),
                        "influx_ok": 1 if self._sink.healthy else 0,
                    },
                    now_ns,
                )
            ]
            clocks, self.core.site_clocks = self.core.site_clocks, {}
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
