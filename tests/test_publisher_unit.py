"""The publisher's logic on a fake link (no broker): rewind when the link drops a publish,
republish after the ack timeout, resend after the receipt timeout, forget only what a receipt
names, live readings before the backlog. The real-broker tests prove the whole; these pin the
rules, fast."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from edge_agent.config import PublishConfig
from edge_agent.publisher import Publisher
from edge_agent.queue import ReadingQueue
from pantau.core.contract import PublishTopic, SensorReading
from pantau.core.mqtt import Message, NotConnectedError
from tests.helpers import async_wait_for


@dataclass
class Sent:
    """One publish the fake link took: its payload and the PUBACK future the test controls."""

    payload: dict[str, object]
    puback: asyncio.Future[None]

    def values(self) -> list[float]:
        return [s["value"] for s in self.payload.get("sensors", [])]  # type: ignore[union-attr,index]


@dataclass
class FakeLink:
    """The publisher's view of a broker connection, driven by the test."""

    connected: asyncio.Event = field(default_factory=asyncio.Event)
    messages: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    generation: int = 1
    refuse_next: int = 0  # publishes to refuse with NotConnectedError
    sent: list[Sent] = field(default_factory=list)
    auto_ack: bool = True
    new_sends: asyncio.Event = field(default_factory=asyncio.Event)

    def publish_nowait(
        self, topic: PublishTopic, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        if self.refuse_next:
            self.refuse_next -= 1
            raise NotConnectedError("fake link down")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.auto_ack:
            future.set_result(None)
        self.sent.append(Sent(orjson.loads(payload), future))
        self.new_sends.set()
        return future

    def receipt(self, *sent: Sent, ts: int | None = None) -> None:
        body = {
            "v": 1,
            "site": "s1",
            "msgs": [s.payload["msg"] for s in sent],
            "ts": ts or time.time_ns(),
        }
        self.messages.put_nowait(
            Message("pantau/v1/sites/s1/receipts", orjson.dumps(body), 1, False, 1, 1)
        )

    async def wait_sent(self, count: int, timeout_s: float = 5) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.sent) < count:
                self.new_sends.clear()
                await self.new_sends.wait()


def readings(values: range, ts0: int) -> list[tuple[str, int, bytes]]:
    return [
        (
            "sensors",
            ts0 + v,
            SensorReading(sensor="s", kind="k", ts=ts0 + v, value=v).model_dump_json().encode(),
        )
        for v in values
    ]


@pytest.fixture
async def rig(
    tmp_path: Path,
) -> AsyncIterator[tuple[FakeLink, ReadingQueue, Publisher, ThreadPoolExecutor]]:
    link = FakeLink()
    link.connected.set()
    queue = ReadingQueue(tmp_path / "q.sqlite", max_readings=10**6, max_age_s=10**6)
    executor = ThreadPoolExecutor(1)
    config = PublishConfig(
        batch_max_readings=10, max_inflight=2, ack_timeout_s=0.3, receipt_timeout_s=0.3
    )
    publisher = Publisher(
        link=link, queue=queue, executor=executor, site="s1", district="d1", config=config
    )
    yield link, queue, publisher, executor
    await publisher.drain_deletes()
    queue.close()
    executor.shutdown()


async def running(publisher: Publisher) -> asyncio.Task[None]:
    return asyncio.create_task(publisher.run(), name="unit-publisher")


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_publish_the_link_refuses_is_sent_again(rig) -> None:  # type: ignore[no-untyped-def]
    """NotConnectedError rewinds: the same readings go out on the next try."""
    link, queue, publisher, _ = rig
    queue.append(readings(range(5), 10**18), now_ns=10**18)
    link.refuse_next = 1
    task = await running(publisher)
    await link.wait_sent(1)
    await stop(task)
    assert link.sent[0].values() == [0, 1, 2, 3, 4]


async def test_no_puback_republishes_after_the_ack_timeout(rig) -> None:  # type: ignore[no-untyped-def]
    """A message whose PUBACK never comes is published again once ack_timeout_s passed."""
    link, queue, publisher, _ = rig
    link.auto_ack = False
    queue.append(readings(range(3), 10**18), now_ns=10**18)
    task = await running(publisher)
    await link.wait_sent(2)
    await stop(task)
    assert link.sent[0].values() == link.sent[1].values() == [0, 1, 2]
    assert link.sent[0].payload["msg"] != link.sent[1].payload["msg"]


async def test_rows_stay_until_a_receipt_names_them(rig) -> None:  # type: ignore[no-untyped-def]
    """PUBACK alone keeps the rows (sent again after receipt_timeout_s); the receipt deletes
    exactly the rows of the message it names, and those are never sent again."""
    link, queue, publisher, _ = rig
    queue.append(readings(range(15), 10**18), now_ns=10**18)
    task = await running(publisher)
    await async_wait_for(lambda: _sent_values_cover(link, 15), timeout_s=5, interval_s=0.01)
    assert len(queue) == 15  # all PUBACKed, none receipted
    first = link.sent[0]
    link.receipt(first)
    await async_wait_for(
        lambda: _length_is(queue, 15 - len(first.values())), timeout_s=5, interval_s=0.01
    )
    await async_wait_for(lambda: _resent(link, 14.0), timeout_s=5, interval_s=0.01)
    await stop(task)
    every = [v for sent in link.sent for v in sent.values()]
    assert all(every.count(v) == 1 for v in first.values())  # receipted: never again
    assert every.count(14.0) >= 2  # not receipted: sent again


async def _sent_values_cover(link: FakeLink, n: int) -> bool:
    return {v for sent in link.sent for v in sent.values()} >= set(map(float, range(n)))


async def _resent(link: FakeLink, value: float) -> bool:
    return [v for sent in link.sent for v in sent.values()].count(value) >= 2


async def test_a_forged_or_foreign_receipt_deletes_nothing(rig) -> None:  # type: ignore[no-untyped-def]
    """Receipts for unknown message ids, for another site, or malformed, leave the queue alone."""
    link, queue, publisher, _ = rig
    queue.append(readings(range(3), 10**18), now_ns=10**18)
    task = await running(publisher)
    await link.wait_sent(1)
    link.messages.put_nowait(Message("t", b"not json", 1, False, 1, 1))
    other = {"v": 1, "site": "s2", "msgs": [link.sent[0].payload["msg"]], "ts": 1}
    link.messages.put_nowait(Message("t", orjson.dumps(other), 1, False, 1, 1))
    unknown = {"v": 1, "site": "s1", "msgs": [12345], "ts": 1}
    link.messages.put_nowait(Message("t", orjson.dumps(unknown), 1, False, 1, 1))
    await async_wait_for(lambda: _consumed(link), timeout_s=5, interval_s=0.01)
    await publisher.drain_deletes()  # a wrong delete would have landed by now
    await stop(task)
    assert len(queue) == 3


async def test_live_readings_go_before_the_backlog(rig) -> None:  # type: ignore[no-untyped-def]
    """After a (re)connect, rows queued later go out before the older backlog is replayed."""
    link, queue, publisher, executor = rig
    link.connected.clear()
    queue.append(readings(range(40), 10**18), now_ns=10**18)
    task = await running(publisher)
    await asyncio.sleep(0.05)
    link.connected.set()
    await link.wait_sent(1)
    await asyncio.get_running_loop().run_in_executor(
        executor, lambda: queue.append(readings(range(100, 101), 2 * 10**18), now_ns=2 * 10**18)
    )
    publisher.notify()
    await link.wait_sent(3)
    await stop(task)
    firsts = [s.values() for s in link.sent[:3]]
    assert [100] in firsts[1:], firsts  # the live reading overtook the rest of the backlog


async def _length_is(queue: ReadingQueue, n: int) -> bool:
    return len(queue) == n


async def _consumed(link: FakeLink) -> bool:
    return link.messages.empty()


async def test_receipt_round_trips_measure_the_clock_offset(rig) -> None:  # type: ignore[no-untyped-def]
    """A collector clock 120 s ahead of ours shows as +120,000 ms (within the round trip)."""
    link, queue, publisher, _ = rig
    queue.append(readings(range(3), 10**18), now_ns=10**18)
    task = await running(publisher)
    await link.wait_sent(1)
    assert publisher.clock_offset_ms is None
    link.receipt(link.sent[0], ts=time.time_ns() + 120 * 10**9)
    await async_wait_for(lambda: _length_is(queue, 0), timeout_s=5, interval_s=0.01)
    await stop(task)
    assert publisher.clock_offset_ms == pytest.approx(120_000, abs=500)
