"""The ceilings: what InfluxDB and mosquitto manage on their own on this machine."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bench.harness import Harness
from cloud.influx import InfluxClient, InfluxSettings
from pantau.core.contract import TopicFilter
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink


async def influx_ceiling(bench: Harness) -> None:
    """InfluxDB's own /write rate with batches of 5000 camera points, 1 and 2 writers."""
    for writers in (1, 2):
        db = f"ceiling{writers}"
        async with InfluxClient(InfluxSettings(url=bench.influx.url, database=db)) as client:
            await client.create_database()
            deadline = time.perf_counter() + bench.config.ceiling_s
            started = time.perf_counter()
            base = time.time_ns() - 3600 * 10**9
            written = sum(
                await asyncio.gather(
                    *(_ceiling_writer(client, i, base, deadline) for i in range(writers))
                )
            )
            elapsed = time.perf_counter() - started
            await client.query(f'DROP DATABASE "{db}"', database="")  # see ingest()
        rate = written / elapsed
        bench.results.ceilings[f"influx_write_{writers}_writer_pts_s"] = round(rate)
        bench.say(f"InfluxDB ceiling, {writers} writer(s): {rate:,.0f} points/s")


async def broker_ceiling(bench: Harness) -> None:
    """mosquitto QoS 1 delivery with one paho publisher and one subscriber."""
    address = BrokerAddress.parse(bench.broker.url)
    sub = MqttLink(
        LinkSettings(address=address, client_id="ceiling-sub"), message_queue_size=100_000
    )
    await sub.subscribe([TopicFilter("bench/ceiling")])
    await sub.start()
    await sub.wait_connected(10)
    started = time.perf_counter()
    process = await bench.spawn(
        sys.executable, "-m", "bench.publisher", "--mqtt", bench.broker.url,
        "--site", "ceiling", "--duration", str(bench.config.ceiling_s), "--start-ns", "0",
        "--batch", "1", "--raw-topic", "bench/ceiling", "--raw-bytes", "200",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    received = 0
    while process.returncode is None or not sub.messages.empty():
        try:
            async with asyncio.timeout(0.5):
                await sub.messages.get()
            received += 1
        except TimeoutError:
            if process.returncode is not None:
                break
    out, _ = await process.communicate()
    elapsed = time.perf_counter() - started
    await sub.close()
    rate = received / elapsed
    published = int(json.loads(out)["published"]) if out else 0
    bench.results.ceilings["broker_qos1_msgs_s"] = round(rate)
    bench.say(f"broker ceiling (paho pair, QoS 1): {rate:,.0f} messages/s ({published} published)")


def camera_lines(count: int, site: str, start_ns: int) -> bytes:
    """Realistic camera points as the collector writes them."""
    return "\n".join(
        f'camera,camera=c{i % 64 + 1},district=bench,site={site} up=1i,cause="ok",'
        f"latency_ms=12.345,tcp_ms=1.234,rtsp_ms=5.678,snapshot_ms=5.432,"
        f"snapshot_bytes=48213i,rtsp_status=200i {start_ns + i // 64}"
        for i in range(count)
    ).encode()


async def _ceiling_writer(client: InfluxClient, index: int, base: int, deadline: float) -> int:
    """Write 5,000-point batches until ``deadline``; return the points written."""
    count = 0
    while time.perf_counter() < deadline:
        start = base + index * 10**9 + (count // 5000) * 100
        await client.write(camera_lines(5000, f"w{index}", start))
        count += 5000
    return count
