"""Hostile messages through the whole path (broker -> collector -> InfluxDB): the collector
stays up, counts and dead-letters every rejection by reason, and InfluxDB holds exactly the
accepted points, under known measurements and tags only."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from pathlib import Path

from cloud.budget import DeviceBudget
from cloud.collector import Collector
from cloud.config import CollectorConfig
from cloud.decode import decode_limits
from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.ingest.core import IngestCore
from cloud.metrics import CollectorMetrics
from cloud.schema import (
    CAMERA_1D,
    CAMERA_1H,
    DISTRICT_1H,
    ROLLUP_DIRTY,
    ROLLUP_STATE,
    SENSOR_1H,
)
from devtools.localsvc import InfluxProcess, MosquittoProcess
from pantau.core.contract import TopicKind, site_topic
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from pantau.core.mqtt_types import Message
from tests.helpers import async_wait_for, counters
from tests.hostile import _TAG, MEASUREMENTS
from tests.test_fuzz import hostile_corpus

MESSAGES = 400
MAX_PAYLOAD = 262_144
ROLLUPS = {CAMERA_1H, CAMERA_1D, DISTRICT_1H, SENSOR_1H, ROLLUP_STATE, ROLLUP_DIRTY}
COUNT_FIELD = {"camera": "up", "sensor": "value", "agent": "backlog", "site": "online"}


def publishable(site: str) -> bool:
    """Site topics that reach the collector: printable UTF-8 without wildcards (mosquitto
    disconnects a client that sends those) and without '/' (no subscriber matches those)."""
    return site.isprintable() and not any(c in site for c in "+#/")


async def test_collector_end_to_end_under_hostile_input(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """400 of the fuzz run's messages (plus a valid one) through broker, collector and
    InfluxDB: rejections counted and dead-lettered by reason exactly as the contract says,
    accepted points stored, nothing else in InfluxDB, and the collector still running."""
    corpus = hostile_corpus(MESSAGES)
    # The collector tells the broker its Maximum Packet Size (twice the payload limit): larger
    # messages are dropped by the broker and never reach it, so they are not counted here.
    limit = 2 * MAX_PAYLOAD + 4096 - 512  # room for the topic and the packet's header
    sendable = [
        (site, payload)
        for site, payload in corpus
        if publishable(site) and len(payload) + len(site.encode()) < limit
    ]
    sendable.append(("s1", b'{"v":1,"site":"s1","district":"d1","sensors":[{"sensor":"x",'
                     b'"kind":"k","ts":%d,"value":1.0}]}' % (time.time_ns() - 10**9)))  # fmt: skip
    await _run(sendable, broker, influxd, database, tmp_path)


async def _run(
    sendable: list[tuple[str, bytes]],
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    database: str,
    workdir: Path,
) -> None:
    config = CollectorConfig.model_validate(
        {
            "mqtt": {"url": broker.url, "client_id": "fuzz-collector"},
            "influx": {"url": influxd.url, "database": database},
            "validation": {"max_payload_bytes": MAX_PAYLOAD},
            "dead_letter_path": str(workdir / "dl.sqlite"),
            "http_port": 0,
        }
    )
    # The collector's own rules (limits, raw retention, device budget), judged on the side.
    judge = IngestCore(
        limits=decode_limits(config),
        budget=DeviceBudget(
            max_devices=config.validation.max_devices_per_site,
            max_sites=config.validation.max_sites,
        ),
        metrics=CollectorMetrics(),
    )
    collector = Collector(config)
    task = asyncio.create_task(collector.run())
    publisher = MqttLink(LinkSettings(address=BrokerAddress.parse(broker.url), client_id="fuzzer"))
    expected: Counter[str] = Counter()
    points: dict[str, set[str]] = {m: set() for m in COUNT_FIELD}
    try:
        await collector.ready.wait()
        await async_wait_for(
            lambda: asyncio.sleep(0, collector.health()["mqtt_connected"]),
            timeout_s=10,
            what="collector subscribed",
        )
        await publisher.start()
        await publisher.wait_connected(10)
        for index, (site, payload) in enumerate(sendable):
            kind = TopicKind.STATUS if index % 10 == 0 else TopicKind.READINGS
            topic = site_topic(site, kind)
            verdict = judge.outcome(
                Message(topic, payload, qos=1, retain=False, mid=0, generation=0), time.time_ns()
            )
            if verdict.rejected is None:
                for reason, _detail in verdict.dead:
                    expected[reason.value] += 1
                for line in verdict.lines:
                    head, _fields, ts = line.rsplit(" ", 2)
                    points[head.split(",")[0]].add(f"{head} {ts}")
            else:
                expected[verdict.rejected.reason.value] += 1
            await asyncio.wait_for(publisher.publish(topic, payload), timeout=10)

        async def handled() -> bool:
            seen = await counters(collector.http_port)
            return seen.get("pantau_messages_received_total") == len(sendable) and (
                collector.health()["pending_messages"] == 0
            )

        await async_wait_for(
            handled,
            timeout_s=60,
            what="every message handled",
        )
        assert not task.done(), "the collector died"
        prefix = "pantau_messages_rejected_total:"
        rejected = {
            name.removeprefix(prefix): int(value)
            for name, value in (await counters(collector.http_port)).items()
            if name.startswith(prefix)
        }
        assert rejected == dict(expected)
        async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
            measurements = {
                row["name"] for row in series_rows(await influx.query("SHOW MEASUREMENTS"))
            }
            ours = {"pantau_collector", "pantau_rejected", *ROLLUPS}
            assert measurements - ours <= set(MEASUREMENTS)
            for measurement, field in COUNT_FIELD.items():
                rows = series_rows(
                    await influx.query(f'SELECT count("{field}") FROM "{measurement}"')
                )
                stored = int(rows[0]["count"]) if rows else 0
                assert stored == len(points[measurement]), measurement
                keys = series_rows(await influx.query(f'SHOW TAG KEYS FROM "{measurement}"'))
                assert {k["tagKey"] for k in keys} <= MEASUREMENTS[measurement][0]
            for value in series_rows(await influx.query('SHOW TAG VALUES WITH KEY = "site"')):
                assert _TAG.fullmatch(value["value"]), value
    finally:
        await publisher.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    db = sqlite3.connect(workdir / "dl.sqlite")
    stored_dead = dict(db.execute("SELECT reason, COUNT(*) FROM dead_letters GROUP BY reason"))
    db.close()
    assert stored_dead == dict(expected)
    assert sum(expected.values()) > 100 and sum(len(p) for p in points.values()) > 50
