"""The collector's ordering rules on fakes: writes before answers before acks, acks in arrival
order, dead letters kept before their ack, and an answer for every message in the agent's
contract minor (no broker, no InfluxDB: the real-service tests prove the adapters)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from cloud.budget import DeviceBudget
from cloud.decode import DecodeLimits
from cloud.ingest.births import Birth
from cloud.ingest.core import IngestCore
from cloud.ingest.pipeline import IngestPipeline, PipelineSettings
from cloud.metrics import CollectorMetrics, counter_value
from pantau.core.contract import (
    CONTRACT_VERSION,
    ContractNotice,
    Receipt,
    TopicKind,
    site_receipts_topic,
    site_topic,
)
from tests.fakes import FakeDeadLetters, FakeLink, FakeSink

NOW = time.time_ns()
LIMITS = DecodeLimits(max_payload_bytes=262_144, max_future_ns=300 * 10**9)


@dataclass
class Rig:
    link: FakeLink
    sink: FakeSink
    dead: FakeDeadLetters
    metrics: CollectorMetrics

    def answers(self, site: str = "s1") -> list[dict[str, Any]]:
        topic = site_receipts_topic(site)
        return [json.loads(p) for t, p in self.link.published if t == topic]

    def receipts(self, site: str = "s1") -> list[Receipt]:
        return [Receipt.model_validate(a) for a in self.answers(site) if "ts" in a]


@asynccontextmanager
async def pipeline(max_lines: int = 1, concurrency: int = 2) -> AsyncIterator[Rig]:
    """A running pipeline on fakes; each message is its own batch unless ``max_lines`` says."""
    link = FakeLink()
    rig = Rig(link, FakeSink(link.events), FakeDeadLetters(link.events), CollectorMetrics())
    core = IngestCore(
        limits=LIMITS,
        budget=DeviceBudget(max_devices=50, max_sites=10),
        metrics=rig.metrics,
    )
    runner = IngestPipeline(
        core=core,
        link=link,
        sink=rig.sink,
        dead_letters=rig.dead,
        metrics=rig.metrics,
        settings=PipelineSettings(
            max_lines=max_lines, max_delay_s=0.01, write_concurrency=concurrency
        ),
    )
    task = asyncio.create_task(runner.run())
    try:
        yield rig
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    """Wait for ``condition`` (the pipeline runs on this loop) with a deadline."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 (the fakes have no events to wait on)
            await asyncio.sleep(0.001)
    assert condition(), what


def batch(msg: int, *, minor: int | None = None, ts: int = NOW, **extra: Any) -> bytes:
    body: dict[str, Any] = {"v": 1, "site": "s1", "district": "d1", "msg": msg}
    if minor is not None:
        body["minor"] = minor
    body["cameras"] = [{"camera": "c1", "ts": ts, "up": True, "cause": "ok", **extra}]
    return json.dumps(body).encode()


READINGS = site_topic("s1", TopicKind.READINGS)
STATUS = site_topic("s1", TopicKind.STATUS)


async def test_acks_follow_arrival_order_when_a_later_write_finishes_first() -> None:
    """Two batches written at once: the second's write returns first, yet it is acked second,
    and each batch's answer goes out only after its own write."""
    async with pipeline() as rig:
        rig.sink.hold = True
        first = rig.link.fire(READINGS, batch(1, minor=1))
        second = rig.link.fire(READINGS, batch(2, minor=1, ts=NOW + 1))
        await until(lambda: len(rig.sink.gates) == 2, "both writes in flight")
        rig.sink.gates[1].set()
        await until(lambda: len(rig.receipts()) == 1, "the second batch answered")
        assert rig.link.acked == [], "acked before the earlier batch was stored"
        assert [r.msgs for r in rig.receipts()] == [[2]]
        rig.sink.gates[0].set()
        await until(lambda: len(rig.link.acked) == 2, "both acked")
        assert rig.link.acked == [first, second]
        assert [r.msgs for r in rig.receipts()] == [[2], [1]]


async def test_no_answer_and_no_ack_before_the_write_returns() -> None:
    """While the sink holds the write, nothing is answered or acked."""
    async with pipeline() as rig:
        rig.sink.hold = True
        rig.link.fire(READINGS, batch(7, minor=1))
        await until(lambda: len(rig.sink.gates) == 1, "the write started")
        await asyncio.sleep(0.05)  # give a wrong implementation the chance to answer early
        assert rig.receipts() == [] and rig.link.acked == []
        rig.sink.gates[0].set()
        await until(lambda: rig.link.acked == [1], "acked after the write")
        timeline = [e.split(" ")[0] for e in rig.link.events]
        assert timeline.index("write") < timeline.index("publish") < timeline.index("ack")


async def test_an_invalid_message_is_dead_lettered_before_its_ack_and_answered() -> None:
    """A schema error from a minor-1 agent: dead letter, then a receipt naming the message as
    rejected with the reason, then the ack; nothing is written."""
    async with pipeline() as rig:
        rig.link.fire(READINGS, batch(9, minor=1, up="maybe"))
        await until(lambda: rig.link.acked == [1], "acked")
        assert rig.sink.lines == []
        assert [d.reason for d in rig.dead.letters] == ["schema"]
        (receipt,) = rig.receipts()
        assert receipt.msgs == [] and receipt.contract == CONTRACT_VERSION
        assert [(r.msg, r.reason, r.retry) for r in receipt.rejected] == [(9, "schema", False)]
        order = [e.split(" ")[0] for e in rig.link.events]
        assert order.index("dead") < order.index("ack")


async def test_a_minor_zero_agent_is_answered_in_its_own_dialect() -> None:
    """An agent of minor 0 cannot read rejections: its refused message is named as done (the
    cloud keeps it as a dead letter) in a receipt with only the fields it knows."""
    async with pipeline() as rig:
        rig.link.fire(READINGS, batch(11, up="maybe"))
        rig.link.fire(READINGS, batch(12, ts=NOW + 5))
        await until(lambda: len(rig.link.acked) == 2, "both acked")
        for raw in rig.answers():
            if "msgs" in raw:
                assert set(raw) == {"v", "site", "msgs", "ts"}
        assert sorted(m for r in rig.receipts() for m in r.msgs) == [11, 12]


async def test_future_readings_are_answered_retry_or_not_at_all() -> None:
    """Stamped 10 minutes ahead: a minor-1 agent hears "retry", a minor-0 agent hears nothing
    (it keeps the readings, as before); neither is written."""
    async with pipeline() as rig:
        ahead = time.time_ns() + 600 * 10**9  # NOW is the import time: maybe minutes ago
        rig.link.fire(READINGS, batch(21, minor=1, ts=ahead))
        rig.link.fire(READINGS, batch(22, ts=ahead + 1))
        await until(lambda: len(rig.link.acked) == 2, "both acked")
        (receipt,) = rig.receipts()
        assert [(r.msg, r.reason, r.retry) for r in receipt.rejected] == [
            (21, "future_timestamp", True)
        ]
        assert rig.sink.lines == []


async def test_a_newer_minor_is_stored_for_the_fields_this_collector_knows() -> None:
    """A batch from minor 99 with fields nobody here knows: its readings are stored, the unknown
    fields counted, and the message receipted as stored."""
    async with pipeline() as rig:
        payload = batch(31, minor=99, thermal_c=41.5)
        body = json.loads(payload)
        body["gizmos"] = [{"id": 1}]
        rig.link.fire(READINGS, json.dumps(body).encode())
        await until(lambda: rig.link.acked == [1], "acked")
        assert any(line.startswith("camera,") for line in rig.sink.lines)
        assert "thermal_c" not in "".join(rig.sink.lines)
        assert [r.msgs for r in rig.receipts()] == [[31]]
        assert counter_value(rig.metrics.unknown_fields) == 2


async def test_the_contract_version_is_announced_on_first_contact_and_after_a_birth() -> None:
    """A site hears the collector's contract once, then again after each birth."""
    birth = {
        "v": 1,
        "site": "s1",
        "district": "d1",
        "online": True,
        "ts": NOW,
        "lat": 0,
        "lon": 0,
        "session": 1,
    }
    async with pipeline() as rig:
        rig.link.fire(READINGS, batch(41, minor=1))
        rig.link.fire(READINGS, batch(42, minor=1, ts=NOW + 1))
        await until(lambda: len(rig.link.acked) == 2, "acked")
        notices = [a for a in rig.answers() if "minor" in a and "msgs" not in a]
        assert [ContractNotice.model_validate(n).contract for n in notices] == [CONTRACT_VERSION]
        rig.link.fire(STATUS, json.dumps(birth).encode())
        await until(lambda: len(rig.link.acked) == 3, "birth acked")
        notices = [a for a in rig.answers() if "minor" in a and "msgs" not in a]
        assert len(notices) == 2


async def test_lines_refused_by_the_store_are_dead_lettered_and_the_message_still_acked() -> None:
    """A point the store refuses for good is kept as a dead letter; the message is done."""
    async with pipeline() as rig:
        rig.link.fire(READINGS, batch(51, minor=1))
        await until(lambda: rig.link.acked == [1], "acked")
        assert rig.dead.letters == [] and len(rig.sink.lines) >= 1
        rig.sink.refuse = {"camera,"}
        rig.link.fire(READINGS, batch(52, minor=1, ts=NOW + 1))
        await until(lambda: rig.link.acked == [1, 2], "second acked")
        assert {d.reason for d in rig.dead.letters} == {"influx_refused"}
        assert [r.msgs for r in rig.receipts()] == [[51], [52]]


async def test_over_budget_devices_are_answered_as_partly_stored() -> None:
    """Readings of devices over the site's budget are dead-lettered; the message is stored (in
    part) and its agent told which part was refused."""
    async with pipeline(max_lines=1000) as rig:
        cams = [{"camera": f"c{i}", "ts": NOW, "up": True, "cause": "ok"} for i in range(60)]
        body = {"v": 1, "minor": 1, "site": "s1", "district": "d1", "msg": 61, "cameras": cams}
        rig.link.fire(READINGS, json.dumps(body).encode())
        await until(lambda: rig.link.acked == [1], "acked")
        (receipt,) = rig.receipts()
        assert receipt.msgs == [61]
        assert [(r.msg, r.reason) for r in receipt.rejected] == [(61, "device_budget")]
        assert [d.reason for d in rig.dead.letters] == ["device_budget"]
        assert sum(line.startswith("camera,") for line in rig.sink.lines) == 49  # + district


async def test_an_oversized_message_is_answered_so_it_is_not_resent_forever() -> None:
    """Over the payload limit: dead-lettered and named as refused (oversized) to its agent."""
    async with pipeline() as rig:
        body = json.loads(batch(71, minor=1))
        body["cameras"] *= 4000
        payload = json.dumps(body).encode()
        assert len(payload) > LIMITS.max_payload_bytes
        rig.link.fire(READINGS, payload)
        await until(lambda: rig.link.acked == [1], "acked")
        (receipt,) = rig.receipts()
        assert [(r.msg, r.reason) for r in receipt.rejected] == [(71, "oversized")]
        assert [d.reason for d in rig.dead.letters] == ["oversized"]


def status(online: bool, seq: int | None, ts: int | None = NOW) -> bytes:
    body: dict[str, Any] = {
        "v": 1, "site": "s1", "district": "d1", "online": online, "ts": ts,
        "lat": 0, "lon": 0, "session": 1, "seq": seq, "minor": 1,
    }  # fmt: skip
    return json.dumps(body).encode()


def stored_ts(line: str) -> int:
    return int(line.rsplit(" ", 1)[1])


async def test_a_late_will_of_an_older_connection_is_stored_before_the_newer_birth() -> None:
    """Birth of connection 8, then the will of connection 7 (a broker restart's late delivery):
    the will is kept, just before the birth, so the newest status point says online; the will of
    connection 8 itself is stored at its arrival."""
    async with pipeline() as rig:
        rig.link.fire(STATUS, status(True, 8))
        rig.link.fire(STATUS, status(False, 7, ts=None))
        rig.link.fire(STATUS, status(False, None, ts=None))  # an unnumbered (older) one too
        await until(lambda: len(rig.link.acked) == 3, "acked")
        birth, late, unnumbered = (line for line in rig.sink.lines if line.startswith("site,"))
        assert stored_ts(late) == stored_ts(unnumbered) == stored_ts(birth) - 1
        assert counter_value(rig.metrics.stale_wills) == 2
        rig.link.fire(STATUS, status(False, 8, ts=None))
        await until(lambda: len(rig.link.acked) == 4, "acked")
        assert stored_ts(rig.sink.lines[-1]) > stored_ts(birth)


async def test_a_birth_written_by_another_collector_is_looked_up_before_a_will() -> None:
    """This collector never saw the birth (the share group gave it to another): it asks the
    store, and the late will still goes before that birth."""

    @dataclass
    class Store:
        asked: list[str]

        async def latest_birth(self, site: str) -> Birth | None:
            self.asked.append(site)
            return Birth(seq=12, ts_ns=NOW - 10**9)

    store = Store([])
    link = FakeLink()
    sink, dead, metrics = FakeSink(link.events), FakeDeadLetters(link.events), CollectorMetrics()
    core = IngestCore(
        limits=LIMITS, budget=DeviceBudget(max_devices=5, max_sites=5), metrics=metrics
    )
    runner = IngestPipeline(
        core=core, link=link, sink=sink, dead_letters=dead, metrics=metrics,
        settings=PipelineSettings(max_lines=1, max_delay_s=0.01, write_concurrency=1),
        births=store,
    )  # fmt: skip
    task = asyncio.create_task(runner.run())
    try:
        link.fire(STATUS, status(False, 11, ts=None))
        await until(lambda: link.acked == [1], "acked")
        (will,) = sink.lines
        assert store.asked == ["s1"] and stored_ts(will) == NOW - 10**9 - 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
