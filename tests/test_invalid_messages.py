"""Every kind of invalid message is rejected, counted by reason and dead-lettered, while valid
messages in the same stream are all written."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from cloud.collector import Collector
from cloud.config import CollectorConfig
from cloud.influx import InfluxClient, InfluxSettings, series_rows
from devtools.localsvc import InfluxProcess, MosquittoProcess
from pantau.core.contract import CameraReading, Cause, ReadingBatch, TopicKind, site_topic
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from tests.helpers import async_wait_for

MAX_PAYLOAD = 16_384


def valid_batch(site: str, index: int, base_ns: int) -> bytes:
    readings = [
        CameraReading(
            camera=f"c{k}", ts=base_ns + index * 1000 + k, up=True, cause=Cause.OK, latency_ms=1.5
        )
        for k in range(1, 4)
    ]
    return ReadingBatch(site=site, district="d1", cameras=readings).model_dump_json().encode()


def invalid_messages(now_ns: int) -> list[tuple[str, str, bytes]]:
    """(expected reason, site of topic, payload)."""
    future = now_ns + 10 * 60 * 10**9
    camera = '{"camera":"c1","ts":%d,"up":true,"cause":"ok","latency_ms":%s}'
    return [
        ("bad_json", "s1", b'{"v":1,"site":'),
        ("bad_json", "s1", b"\xff\xfe not utf8"),
        ("schema", "s1", b'{"v":1,"site":"s1"}'),
        ("schema", "s1", b'{"v":1,"site":"s1","district":"d1","extra":1}'),
        ("schema", "s1", b'{"v":2,"site":"s1","district":"d1"}'),
        ("schema", "s1", b'{"v":1,"site":"s 1,x=y","district":"d1"}'),
        ("schema", "s1", b"[1, 2, 3]"),
        ("site_mismatch", "s1", b'{"v":1,"site":"s2","district":"d1"}'),
        (
            "non_finite",
            "s1",
            b'{"v":1,"site":"s1","district":"d1","cameras":['
            + (camera % (now_ns, "NaN")).encode()
            + b"]}",
        ),
        (
            "non_finite",
            "s1",
            b'{"v":1,"site":"s1","district":"d1","cameras":['
            + (camera % (now_ns, "1e999")).encode()
            + b"]}",
        ),
        (
            "future_timestamp",
            "s1",
            b'{"v":1,"site":"s1","district":"d1","cameras":['
            + (camera % (future, "1.0")).encode()
            + b"]}",
        ),
        (
            "oversized",
            "s1",
            b'{"v":1,"site":"s1","district":"d1","pad":"' + b"x" * MAX_PAYLOAD + b'"}',
        ),
    ]


async def test_invalid_messages_rejected_valid_ones_written(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """12 invalid messages interleaved with 30 valid ones: 12 rejections by reason, 90 points."""
    config = CollectorConfig.model_validate(
        {
            "mqtt": {"url": broker.url, "client_id": "test-collector"},
            "influx": {"url": influxd.url, "database": database},
            "validation": {"max_payload_bytes": MAX_PAYLOAD},
            "dead_letter_path": str(tmp_path / "dl.sqlite"),
            "http_port": 0,
        }
    )
    collector = Collector(config)
    task = asyncio.create_task(collector.run())
    publisher = MqttLink(LinkSettings(address=BrokerAddress.parse(broker.url), client_id="pub"))
    try:
        await collector.ready.wait()
        await publisher.start()
        await publisher.wait_connected(10)
        # Subscription is in place once the collector connected.
        await async_wait_for(lambda: _connected(collector), timeout_s=10, what="collector up")
        now_ns = time.time_ns()
        bad = invalid_messages(now_ns)
        expected: dict[str, int] = {}
        for index in range(30):
            await publisher.publish(
                site_topic("s1", TopicKind.READINGS), valid_batch("s1", index, now_ns - 10**9)
            )
            if index < len(bad):
                reason, site, payload = bad[index]
                expected[reason] = expected.get(reason, 0) + 1
                await publisher.publish(site_topic(site, TopicKind.READINGS), payload)

        async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:

            async def written() -> int:
                rows = series_rows(await influx.query('SELECT count("up") FROM camera'))
                return int(rows[0]["count"]) if rows else 0

            await async_wait_for(lambda: _equals(written, 90), timeout_s=15, what="90 points")

        base = f"http://127.0.0.1:{collector.http_port}"
        async with httpx.AsyncClient() as http:  # the server runs on this event loop
            metrics = (await http.get(f"{base}/metrics")).text
            health = (await http.get(f"{base}/healthz")).json()
        rejected = {
            s.labels["reason"]: int(s.value)
            for family in text_string_to_metric_families(metrics)
            for s in family.samples
            if s.name == "pantau_messages_rejected_total"
        }
        assert rejected == expected
        assert health["ok"] is True
        await async_wait_for(lambda: _pending_zero(collector), timeout_s=5, what="all acked")
    finally:
        await publisher.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    db = sqlite3.connect(tmp_path / "dl.sqlite")
    stored = dict(
        db.execute("SELECT reason, COUNT(*) FROM dead_letters GROUP BY reason").fetchall()
    )
    db.close()
    assert stored == expected


async def _connected(collector: Collector) -> bool:
    return bool(collector.health()["mqtt_connected"])


async def _pending_zero(collector: Collector) -> bool:
    return collector.health()["pending_messages"] == 0


async def _equals(fn, value: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(await fn() == value)
