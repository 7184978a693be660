"""Latency: edge timestamp to queryable in InfluxDB, under half the sustained load."""

from __future__ import annotations

import asyncio
import statistics
import time

from bench.harness import Harness
from cloud.influx import InfluxClient, InfluxSettings, series_rows
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink


async def latency(bench: Harness) -> None:
    """Edge timestamp → queryable, at half the one-collector sustained rate."""
    sustained = bench.results.ingest.get("1_collector", {}).get("readings_s", 20_000)
    rate = sustained / 2
    database = "latency"
    async with InfluxClient(InfluxSettings(url=bench.influx.url, database=database)) as influx:
        await influx.query(f'DROP DATABASE "{database}"', database="")
        await influx.create_database()
        collector, port = await bench.start_collector(9, database)
        address = BrokerAddress.parse(bench.broker.url)
        marker = MqttLink(LinkSettings(address=address, client_id="bench-marker"))
        await marker.start()
        await marker.wait_connected(10)
        start_ns = time.time_ns() - 600 * 10**9
        load = [
            await bench.publisher(f"load{i}", bench.config.latency_s, rate, start_ns, None)
            for i in range(bench.config.publishers)
        ]
        latencies: list[float] = []
        sent: dict[int, float] = {}
        deadline = time.perf_counter() + bench.config.latency_s
        next_marker = time.perf_counter()
        while time.perf_counter() < deadline or (sent and time.perf_counter() < deadline + 5):
            now = time.perf_counter()
            if now >= next_marker and now < deadline:
                ts = time.time_ns()
                payload = (
                    f'{{"v":1,"site":"marker","district":"bench","sensors":[{{"sensor":"m",'
                    f'"kind":"latency","ts":{ts},"value":1.0}}]}}'
                ).encode()
                await marker.publish("pantau/v1/sites/marker/readings", payload)  # type: ignore[arg-type]
                sent[ts] = ts / 1e9
                next_marker = now + 0.1
            if sent:
                # Every marker not seen yet, not only those after the newest seen: two batches
                # written at once become queryable in either order (write_concurrency 2), so a
                # "newer than the last one seen" query misses the earlier one for good.
                rows = series_rows(
                    await influx.query(
                        f"SELECT \"value\" FROM sensor WHERE site='marker' AND time >= {min(sent)}"
                    )
                )
                arrived = time.time()
                for row in rows:
                    ts = int(row["time"])
                    if ts in sent:
                        latencies.append(arrived - sent.pop(ts))
            await asyncio.sleep(0.02)
        for p in load:
            await p.communicate()
        await marker.close()
        collector.terminate()
        await collector.wait()
    del port
    if latencies:
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        bench.results.latency = {
            "load_readings_s": round(rate),
            "markers": len(latencies),
            "p50_s": round(statistics.median(latencies), 3),
            "p99_s": round(p99, 3),
            "unseen_markers": len(sent),
        }
        bench.say(
            f"latency at {rate:,.0f} readings/s: p50 {statistics.median(latencies):.3f}s"
            f" p99 {p99:.3f}s over {len(latencies)} markers"
        )
