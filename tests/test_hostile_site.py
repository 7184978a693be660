"""One site with valid credentials attacks the others, on a broker set up as the README says,
while two other sites publish steadily: their readings are all stored exactly once, their extra
delay stays under 5 s, and the attacker is refused, disconnected or confined to its own data."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.collector import Collector
from cloud.config import CollectorConfig
from devtools.localsvc import BrokerSecurity, InfluxProcess, MosquittoProcess, make_mosquitto
from pantau.core.contract import (
    CameraReading,
    Cause,
    ContractNotice,
    ReadingBatch,
    Receipt,
    TopicFilter,
    TopicKind,
    agent_client_id,
    all_sites_filter,
    site_receipts_topic,
    site_topic,
)
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from pantau.ops.brokerauth import COLLECTOR_USER, BrokerAccountFiles, DynsecAdmin
from tests.helpers import async_wait_for, counters, influx_rows

pytestmark = pytest.mark.hostile

COLLECTOR_ID = "pantau-collector-1"
VICTIMS = ("s1", "s2")
ATTACKER = "s3"
MAX_DELAY_S = 5.0
DEVICE_BUDGET = 50
PUBLISH_EVERY_S = 0.1


@dataclass
class Fleet:
    broker: MosquittoProcess
    passwords: dict[str, str]
    influx_url: str
    database: str
    collector: Collector


@pytest.fixture
async def fleet(tmp_path: Path, influxd: InfluxProcess, database: str) -> AsyncIterator[Fleet]:
    auth = BrokerAccountFiles(tmp_path / "auth")
    auth.init()
    broker = make_mosquitto(tmp_path, security=BrokerSecurity(dynsec_file=auth.dynsec_file))
    broker.start()
    admin = DynsecAdmin(broker.url, password=auth.admin_password())
    passwords = {site: admin.add_site(site) for site in (*VICTIMS, ATTACKER)}
    config = CollectorConfig.model_validate(
        {
            "mqtt": {
                "url": broker.url,
                "client_id": COLLECTOR_ID,
                "username": COLLECTOR_USER,
                "password": auth.collector_password(),
            },
            "influx": {"url": influxd.url, "database": database},
            "validation": {"max_devices_per_site": DEVICE_BUDGET},
            "dead_letter_path": str(tmp_path / "dl.sqlite"),
            "http_port": 0,
        }
    )
    collector = Collector(config)
    task = asyncio.create_task(collector.run(), name="hostile-collector")
    await asyncio.wait_for(collector.ready.wait(), 15)
    await asyncio.wait_for(collector._link.connected.wait(), 15)
    try:
        yield Fleet(broker, passwords, influxd.url, database, collector)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        broker.stop()


def reading_batch(site: str, camera: str, ts: int, **extra: Any) -> bytes:
    reading = CameraReading(camera=camera, ts=ts, up=True, cause=Cause.OK, latency_ms=1.0)
    body = ReadingBatch(site=site, district="d1", cameras=[reading]).model_dump(mode="json")
    body["cameras"][0].update(extra)
    return json.dumps(body).encode()


@dataclass
class Victim:
    """A site publishing one reading every ``PUBLISH_EVERY_S``; keeps what the broker acked."""

    site: str
    link: MqttLink
    acked: list[int] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            ts = time.time_ns()
            await self.link.publish(
                site_topic(self.site, TopicKind.READINGS), reading_batch(self.site, "cam", ts)
            )
            self.acked.append(ts)
            await asyncio.sleep(PUBLISH_EVERY_S)


@contextlib.asynccontextmanager
async def victims(fleet: Fleet) -> AsyncIterator[list[Victim]]:
    running = []
    for site in VICTIMS:
        link = MqttLink(
            LinkSettings(
                address=BrokerAddress.parse(fleet.broker.url),
                client_id=agent_client_id(site),
                username=site,
                password=fleet.passwords[site],
            )
        )
        await link.subscribe([TopicFilter(site_receipts_topic(site))])
        await link.start()
        await link.wait_connected(10)
        running.append(Victim(site, link))
    tasks = [asyncio.create_task(v.run(), name=f"victim-{v.site}") for v in running]
    try:
        yield running
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for v in running:
            await v.link.close()


def stored(fleet: Fleet, site: str) -> list[int]:
    rows = influx_rows(
        fleet.influx_url, fleet.database, f"SELECT \"up\" FROM camera WHERE site = '{site}'"
    )
    return [int(r["time"]) for r in rows]


async def delay_of_next(fleet: Fleet, victim: Victim) -> float:
    """Seconds from a victim's next acknowledged reading to its point in InfluxDB."""
    seen = len(victim.acked)
    await async_wait_for(
        lambda: _after(victim, seen), timeout_s=10, interval_s=0.01, what="a victim publish"
    )
    ts = victim.acked[seen]
    started = time.monotonic()

    async def there() -> bool:
        return ts in await asyncio.to_thread(stored, fleet, victim.site)

    await async_wait_for(there, timeout_s=30, interval_s=0.05, what="the victim's point")
    return time.monotonic() - started


async def _after(victim: Victim, seen: int) -> bool:
    return len(victim.acked) > seen


@dataclass
class RawClient:
    """A paho client that reports its CONNACK and SUBACK codes (the attacker's view)."""

    client: paho.Client
    connack: str | None = None
    subacks: list[str] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


@contextlib.contextmanager
def raw_client(fleet: Fleet, user: str, client_id: str) -> Iterator[RawClient]:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.username_pw_set(user, fleet.passwords[user])
    raw = RawClient(client)

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        raw.connack = str(reason)
        raw.done.set()

    def on_subscribe(_c: Any, _u: Any, _m: Any, reasons: list[Any], _p: Any) -> None:
        raw.subacks += [str(r) for r in reasons]
        raw.done.set()

    client.on_connect, client.on_subscribe = on_connect, on_subscribe
    client.on_disconnect = lambda *_a: raw.disconnected.set()
    client.connect("127.0.0.1", fleet.broker.port)
    client.loop_start()
    try:
        assert raw.done.wait(10), "no CONNACK"
        raw.done.clear()
        yield raw
    finally:
        client.disconnect()
        client.loop_stop()


async def test_one_site_cannot_hurt_the_others(fleet: Fleet) -> None:
    """Every attack of issue 14 from s3's valid credentials, with s1 and s2 publishing."""
    async with victims(fleet) as running:
        delays = {"baseline": max([await delay_of_next(fleet, v) for v in running])}

        # 1. Joining the collectors' shared group (and reading everything): refused at SUBACK.
        with raw_client(fleet, ATTACKER, agent_client_id(ATTACKER)) as attacker:
            assert attacker.connack == "Success"
            filters = [
                all_sites_filter(TopicKind.READINGS, share_group="pantau"),
                all_sites_filter(TopicKind.STATUS, share_group="pantau"),
                "#",
                site_topic("s1", TopicKind.READINGS),
            ]
            attacker.client.subscribe([(f, 1) for f in filters])
            assert await asyncio.to_thread(attacker.done.wait, 10)
            assert attacker.subacks == ["Not authorized"] * len(filters)
        delays["share_hijack"] = max([await delay_of_next(fleet, v) for v in running])

        # 2./3. Taking over the collector's or another agent's session: refused at CONNACK.
        for stolen in (COLLECTOR_ID, agent_client_id("s1")):
            with raw_client(fleet, ATTACKER, stolen) as thief:
                assert thief.connack == "Not authorized", stolen
        assert fleet.collector._link.generation == 1
        assert all(v.link.generation == 1 for v in running)  # victims never kicked
        delays["takeover"] = max([await delay_of_next(fleet, v) for v in running])

        # 4. Values InfluxDB would refuse: rejected by the contract, no 400 from InfluxDB.
        # 5. Cardinality bomb: only the site's device budget becomes series.
        # 6. A message over the broker's packet limit: the attacker is disconnected.
        attacker_link = MqttLink(
            LinkSettings(
                address=BrokerAddress.parse(fleet.broker.url),
                client_id=agent_client_id(ATTACKER),
                username=ATTACKER,
                password=fleet.passwords[ATTACKER],
            )
        )
        await attacker_link.start()
        await attacker_link.wait_connected(10)
        topic = site_topic(ATTACKER, TopicKind.READINGS)
        now = time.time_ns()
        for i in range(20):
            await attacker_link.publish(
                topic, reading_batch(ATTACKER, "c1", now + i, snapshot_bytes=10**20)
            )
        bomb_ids = 20_000
        for start in range(0, bomb_ids, 500):
            cameras = [
                CameraReading(camera=f"x{k}", ts=now + k, up=True, cause=Cause.OK)
                for k in range(start, start + 500)
            ]
            payload = ReadingBatch(site=ATTACKER, district="d1", cameras=cameras)
            await attacker_link.publish(topic, payload.model_dump_json().encode())
        delays["bad_values_and_bomb"] = max([await delay_of_next(fleet, v) for v in running])
        # 8. A flood of valid readings as fast as the broker takes them, for 5 s.
        flood_until = time.monotonic() + 5
        flooded = 0
        while time.monotonic() < flood_until:
            base = time.time_ns()
            cameras = [
                CameraReading(camera=f"x{k % 40}", ts=base + k, up=True, cause=Cause.OK)
                for k in range(500)
            ]
            payload = ReadingBatch(site=ATTACKER, district="d1", cameras=cameras)
            await attacker_link.publish(topic, payload.model_dump_json().encode())
            flooded += 500
        delays["flood"] = max([await delay_of_next(fleet, v) for v in running])
        huge = b'{"v":1,"site":"s3","district":"d1","pad":"' + b"x" * 2_000_000 + b'"}'
        with contextlib.suppress(Exception):
            await asyncio.wait_for(attacker_link.publish(topic, huge), 5)
        await asyncio.wait_for(attacker_link.disconnected.wait(), 10)
        await attacker_link.close(graceful=False)
        delays["oversized"] = max([await delay_of_next(fleet, v) for v in running])
        # 7. A forged receipt (to make s1 forget readings InfluxDB never got) is dropped by the
        # broker: the first receipt s1 sees is the collector's for its own message.
        with raw_client(fleet, ATTACKER, agent_client_id(ATTACKER)) as forger:
            forged = Receipt(site="s1", msgs=[42], ts=time.time_ns()).model_dump_json()
            forger.client.publish(site_receipts_topic("s1"), forged, qos=1).wait_for_publish(5)
        body = json.loads(reading_batch("s1", "cam", time.time_ns()))
        body["msg"] = 4242
        await running[0].link.publish(
            site_topic("s1", TopicKind.READINGS), json.dumps(body).encode()
        )
        first = await asyncio.wait_for(running[0].link.messages.get(), 10)
        while b'"msgs"' not in first.payload:  # the collector's contract notice comes first
            ContractNotice.model_validate_json(first.payload)
            first = await asyncio.wait_for(running[0].link.messages.get(), 10)
        assert Receipt.model_validate_json(first.payload).msgs == [4242]
        # A victim's new camera is still accepted after the bomb.
        await running[0].link.publish(
            site_topic("s1", TopicKind.READINGS), reading_batch("s1", "new-cam", time.time_ns())
        )
        final = {v.site: list(v.acked) for v in running}

    def all_stored() -> bool:
        return all(set(final[s]) <= set(stored(fleet, s)) for s in VICTIMS)

    await asyncio.to_thread(
        _wait, all_stored, timeout_s=30, what="every acknowledged victim reading stored"
    )
    for site in VICTIMS:
        points = list(stored(fleet, site))
        assert len(final[site]) > 50
        lost = set(final[site]) - set(points)
        assert not lost, f"{site} lost {len(lost)}"
        assert len(points) == len(set(points))  # no duplicate points
    s1_cameras = influx_rows(
        fleet.influx_url,
        fleet.database,
        "SHOW TAG VALUES FROM camera WITH KEY = \"camera\" WHERE site = 's1'",
    )
    assert {r["value"] for r in s1_cameras} == {"cam", "new-cam"}
    s3_cameras = influx_rows(
        fleet.influx_url,
        fleet.database,
        "SHOW TAG VALUES FROM camera WITH KEY = \"camera\" WHERE site = 's3'",
    )
    assert len(s3_cameras) <= DEVICE_BUDGET
    seen = await counters(fleet.collector.http_port)
    assert seen.get("pantau_messages_rejected_total:schema", 0) == 20
    assert seen.get("pantau_messages_rejected_total:influx_refused", 0) == 0
    assert seen["pantau_device_budget_refused_total:s3"] == bomb_ids - DEVICE_BUDGET + 1
    assert seen.get("pantau_messages_rejected_total:oversized", 0) == 0  # never reached us
    print("victim delay per attack (s):", {k: round(v, 2) for k, v in delays.items()})
    print(f"flood: {flooded} readings from {ATTACKER} in 5 s")
    assert max(delays.values()) <= MAX_DELAY_S, delays


def _wait(condition: Any, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
