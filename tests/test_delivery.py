"""Delivery guarantees on real services: backlog replay, InfluxDB outages, shared subscriptions."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest

from cloud.collector import BATCH_QUEUE_DEPTH, Collector
from cloud.config import CollectorConfig
from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.metrics import counter_value
from devtools.localsvc import InfluxProcess, MosquittoProcess, make_influx
from edge_agent.config import PublishConfig
from edge_agent.publisher import Publisher
from edge_agent.queue import ReadingQueue
from pantau.core.contract import SensorReading, TopicKind, all_sites_filter, site_topic
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from tests.helpers import async_wait_for

NS = 10**9


def sensor_items(start: int, count: int, base_ns: int) -> list[tuple[str, int, bytes]]:
    return [
        (
            "sensors",
            base_ns + i,
            SensorReading(sensor="cab", kind="temperature", ts=base_ns + i, value=float(i))
            .model_dump_json()
            .encode(),
        )
        for i in range(start, start + count)
    ]


async def test_backlog_replays_rate_limited_while_live_goes_first(
    broker: MosquittoProcess, tmp_path: Path
) -> None:
    """3000 queued readings replay at the configured rate; a live reading overtakes them."""
    address = BrokerAddress.parse(broker.url)
    listener = MqttLink(LinkSettings(address=address, client_id="listener"))
    await listener.subscribe([all_sites_filter(TopicKind.READINGS)])
    await listener.start()
    await listener.wait_connected(10)

    queue = ReadingQueue(tmp_path / "q.sqlite", max_readings=10**6, max_age_s=10**6)
    old_ns = time.time_ns() - 3600 * NS
    queue.append(sensor_items(0, 3000, old_ns), now_ns=time.time_ns())
    executor = ThreadPoolExecutor(max_workers=1)
    link = MqttLink(LinkSettings(address=address, client_id="agent"))
    publisher = Publisher(
        link=link,
        queue=queue,
        executor=executor,
        site="s1",
        district="d1",
        # No collector here to send receipts: rows leave the queue at their PUBACK.
        config=PublishConfig(
            batch_max_readings=100, replay_rate_per_s=1000, max_inflight=4, receipts=False
        ),
    )
    await link.start()
    task = asyncio.create_task(publisher.run())
    arrivals: list[tuple[float, bool, int]] = []  # (time, is_live, readings)
    started = time.monotonic()
    try:
        live_sent = False
        while sum(n for _, _, n in arrivals) < 3001:
            async with asyncio.timeout(20):
                message = await listener.messages.get()
            batch = orjson.loads(message.payload)
            live = any(s["kind"] == "live" for s in batch.get("sensors", []))
            arrivals.append((time.monotonic() - started, live, len(batch["sensors"])))
            if not live_sent and len(arrivals) >= 3:
                live = [("sensors", time.time_ns(), b"")]
                live = [
                    (
                        k,
                        ts,
                        SensorReading(sensor="cab", kind="live", ts=ts, value=1.0)
                        .model_dump_json()
                        .encode(),
                    )
                    for k, ts, _ in live
                ]
                await asyncio.get_running_loop().run_in_executor(
                    executor, functools.partial(queue.append, live, now_ns=live[0][1])
                )
                publisher.notify()
                live_sent = True
        await async_wait_for(lambda: _empty(queue), timeout_s=5, what="queue drained")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await publisher.drain_deletes()
        await link.close()
        await listener.close()
        executor.shutdown()
    live_index = next(i for i, (_, live, _) in enumerate(arrivals) if live)
    backlog_done_at = arrivals[-1][0] if not arrivals[-1][1] else arrivals[-2][0]
    assert live_index < len(arrivals) - 5, "the live reading waited behind the backlog"
    # 3000 readings at 1000/s with a burst of 100 need at least ~2.9 s.
    assert backlog_done_at >= 2.5
    assert max(n for _, _, n in arrivals) <= 100


async def _empty(queue: ReadingQueue) -> bool:
    return len(queue) == 0


@pytest.fixture
def own_influxd(tmp_path: Path) -> InfluxProcess:
    process = make_influx(tmp_path)
    process.start()
    yield process  # type: ignore[misc]
    process.stop()


def collector_config(
    broker: MosquittoProcess, influx_url: str, tmp_path: Path, name: str, **mqtt: object
) -> CollectorConfig:
    return CollectorConfig.model_validate(
        {
            "mqtt": {"url": broker.url, "client_id": name, **mqtt},
            "influx": {"url": influx_url, "database": "pantau"},
            "batch": {"max_lines": 50, "max_delay_s": 0.05, "retry_max_s": 0.5},
            "dead_letter_path": str(tmp_path / f"{name}.sqlite"),
            "http_port": 0,
            "instance": name,
        }
    )


@pytest.fixture
async def publisher_link(broker: MosquittoProcess) -> AsyncIterator[MqttLink]:
    link = MqttLink(LinkSettings(address=BrokerAddress.parse(broker.url), client_id="pub"))
    await link.start()
    await link.wait_connected(10)
    yield link
    await link.close()


async def publish_batches(link: MqttLink, count: int, per: int) -> None:
    base = time.time_ns() - 60 * NS
    for m in range(count):
        sensors = ",".join(
            SensorReading(sensor=f"x{k}", kind="t", ts=base + m, value=float(m)).model_dump_json()
            for k in range(per)
        )
        payload = f'{{"v":1,"site":"s1","district":"d1","sensors":[{sensors}]}}'.encode()
        await link.publish(site_topic("s1", TopicKind.READINGS), payload)


async def count_points(influx_url: str) -> int:
    async with InfluxClient(InfluxSettings(url=influx_url, database="pantau")) as influx:
        try:
            rows = series_rows(await influx.query('SELECT count("value") FROM sensor'))
        except Exception:  # noqa: BLE001 - InfluxDB may still be starting
            return -1
    return int(rows[0]["count"]) if rows else 0


async def test_influx_outage_is_bounded_visible_and_lossless(
    broker: MosquittoProcess,
    own_influxd: InfluxProcess,
    publisher_link: MqttLink,
    tmp_path: Path,
) -> None:
    """With InfluxDB down the collector holds at most receive_maximum messages, reports it on
    /healthz and /metrics, and writes everything once InfluxDB is back."""
    config = collector_config(broker, own_influxd.url, tmp_path, "c1", receive_maximum=20)
    collector = Collector(config)
    task = asyncio.create_task(collector.run())
    try:
        await async_wait_for(lambda: _connected(collector), timeout_s=10, what="collector up")
        await asyncio.to_thread(own_influxd.stop)
        await publish_batches(publisher_link, 200, 5)
        await async_wait_for(lambda: _unhealthy(collector), timeout_s=10, what="unhealthy")
        async with httpx.AsyncClient() as http:
            health = await http.get(f"http://127.0.0.1:{collector.http_port}/healthz")
        assert health.status_code == 503
        assert health.json()["influx_ok"] is False
        # Bounded: receive_maximum (20) messages queued inbound, plus batches of 10 messages:
        # write_concurrency being retried, BATCH_QUEUE_DEPTH waiting, one being built. The
        # broker holds the rest. Watch a while.
        batches = config.batch.write_concurrency + BATCH_QUEUE_DEPTH + 1
        for _ in range(10):
            held = collector.health()["pending_messages"] + collector.health()["inbound_queued"]
            assert 0 < held <= 20 + batches * 10
            assert counter_value(collector.metrics.messages_received) < 200
            await asyncio.sleep(0.05)
        await asyncio.to_thread(own_influxd.start)
        await async_wait_for(
            lambda: _points_equal(own_influxd.url, 1000),
            timeout_s=30,
            what="1000 points after the outage",
        )
        await async_wait_for(lambda: _idle(collector), timeout_s=10, what="nothing pending")
        assert collector.health()["ok"] is True
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_two_collectors_share_the_load_and_write_each_reading_once(
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    publisher_link: MqttLink,
    tmp_path: Path,
) -> None:
    """Two collectors in one share group split 300 messages; together they write 1500 points."""
    async with InfluxClient(InfluxSettings(url=influxd.url, database="pantau")) as influx:
        await influx.query('DROP DATABASE "pantau"', database="")
    collectors = [
        Collector(collector_config(broker, influxd.url, tmp_path, f"c{i}")) for i in (1, 2)
    ]
    tasks = [asyncio.create_task(c.run()) for c in collectors]
    try:
        for c in collectors:
            await async_wait_for(lambda c=c: _connected(c), timeout_s=10, what="collector up")
        await publish_batches(publisher_link, 300, 5)
        await async_wait_for(
            lambda: _points_equal(influxd.url, 1500), timeout_s=30, what="1500 points"
        )
        for c in collectors:
            await async_wait_for(lambda c=c: _idle(c), timeout_s=10, what="nothing pending")
        written = [counter_value(c.metrics.readings_written) for c in collectors]
        assert sum(written) == 1500
        assert all(w > 0 for w in written), written
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _connected(collector: Collector) -> bool:
    return bool(collector.health()["mqtt_connected"])


async def _unhealthy(collector: Collector) -> bool:
    return not collector.health()["influx_ok"]


async def _idle(collector: Collector) -> bool:
    return collector.health()["pending_messages"] == 0


async def _points_equal(url: str, expected: int) -> bool:
    return await count_points(url) == expected
