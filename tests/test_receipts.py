"""Storage receipts: an agent forgets a reading only when the collector says InfluxDB has it, so
readings the broker acknowledged and then dropped are sent again and stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloud.collector import Collector
from cloud.config import CollectorConfig
from cloud.influx import InfluxClient, InfluxSettings
from devtools.localsvc import InfluxProcess, MosquittoProcess
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from simulators.ledger import compare
from tests.helpers import async_wait_for, counters

RECEIPT_TIMEOUT_S = 2.0


def agent_config(broker: MosquittoProcess, queue: Path) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
            "broker": {"url": broker.url, "reconnect_max_s": 1},
            "probe": {"interval_s": 0.5, "timeout_s": 0.3},
            "sensors": [{"type": "simulated", "id": "cab"}],
            "queue": {"path": str(queue)},
            # No wait for a first receipt to measure the clock: these tests publish while no
            # collector is there to answer (tests/test_clock_skew.py covers the wait).
            "publish": {"receipt_timeout_s": RECEIPT_TIMEOUT_S, "clock_hold_s": 0},
            "ledger": True,
        }
    )


@pytest.fixture
async def running_agent(broker: MosquittoProcess, tmp_path: Path) -> AsyncIterator[Agent]:
    agent = Agent(agent_config(broker, tmp_path / "q.sqlite"))
    task = asyncio.create_task(agent.run(), name="receipts-agent")
    await asyncio.wait_for(agent.link.connected.wait(), 10)
    yield agent
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def start_collector(  # type: ignore[no-untyped-def]
    broker: MosquittoProcess,
    influx_url: str,
    database: str,
    tmp: Path,
    *,
    client_id: str = "receipts-collector",
    replaces: list[str] | None = None,
):
    config = CollectorConfig.model_validate(
        {
            "mqtt": {"url": broker.url, "client_id": client_id, "replaces": replaces or []},
            "influx": {"url": influx_url, "database": database},
            "batch": {"max_delay_s": 0.05},
            "dead_letter_path": str(tmp / f"{client_id}-dl.sqlite"),
            "http_port": 0,
        }
    )
    collector = Collector(config)
    task = asyncio.create_task(collector.run(), name="receipts-collector")
    await asyncio.wait_for(collector.ready.wait(), 15)
    return collector, task


async def test_readings_the_broker_dropped_after_puback_are_sent_again(
    running_agent: Agent,
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
) -> None:
    """With no collector subscribed the broker PUBACKs and drops every message (issue 13's
    'collectors away' rows); the agent keeps them, and once a collector is there, all of them
    are stored exactly once and the queue empties."""
    queue = running_agent.config.queue.path

    async def published_unreceipted() -> bool:
        return await asyncio.to_thread(lambda: len(_ledger_keys(queue)) >= 20)

    await async_wait_for(published_unreceipted, timeout_s=20, what="readings published")
    collector, task = await start_collector(broker, influxd.url, database, tmp_path)
    try:
        async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:

            async def all_stored() -> bool:
                result = await compare(influx, {"s1": queue})
                return result.lost == 0 and result.queued <= 40  # one live cycle in flight

            await async_wait_for(
                all_stored, timeout_s=RECEIPT_TIMEOUT_S * 5 + 20, what="every reading stored"
            )
            result = await compare(influx, {"s1": queue})
            assert (result.lost, result.dup) == (0, 0), result.lost_examples
            assert result.readings >= 20
        seen = await counters(collector.http_port)
        assert seen["pantau_receipts_sent_total"] > 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _ledger_keys(queue: Path) -> list[int]:
    import sqlite3  # noqa: PLC0415

    db = sqlite3.connect(f"file:{queue}?mode=ro", uri=True, timeout=5)
    try:
        return [row[0] for row in db.execute("SELECT id FROM ledger")]
    finally:
        db.close()


async def test_a_collector_replaced_under_a_new_client_id_clears_its_predecessor(
    running_agent: Agent,
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
) -> None:
    """Collector A leaves its persistent session in the shared group (as after a crash); B
    starts under a new client id with `replaces: [A]`: A's session is ended, so nothing more is
    routed to it, and what A's session held is sent again by the agent (no receipt) and stored."""
    queue = running_agent.config.queue.path
    _, first_task = await start_collector(broker, influxd.url, database, tmp_path)
    first_task.cancel()  # gone; its session (7-day expiry) stays in the group at the broker
    await asyncio.gather(first_task, return_exceptions=True)

    async def some_queued() -> bool:
        return await asyncio.to_thread(lambda: len(_ledger_keys(queue)) >= 20)

    await async_wait_for(some_queued, timeout_s=20, what="readings while no collector runs")
    second, second_task = await start_collector(
        broker, influxd.url, database, tmp_path, client_id="collector-b",
        replaces=["receipts-collector"],
    )  # fmt: skip
    try:
        async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:

            async def all_stored() -> bool:
                result = await compare(influx, {"s1": queue})
                return result.lost == 0 and result.queued <= 40

            await async_wait_for(
                all_stored, timeout_s=RECEIPT_TIMEOUT_S * 5 + 20, what="every reading stored"
            )
            result = await compare(influx, {"s1": queue})
            assert (result.lost, result.dup) == (0, 0), result.lost_examples
        # Nothing is routed to the old session any more: what B receives is everything sent.
        before = (await counters(second.http_port))["pantau_messages_received_total"]
        await asyncio.sleep(2)  # a few probe cycles (0.5 s each)
        after = (await counters(second.http_port))["pantau_messages_received_total"]
        assert after - before >= 3
    finally:
        second_task.cancel()
        await asyncio.gather(second_task, return_exceptions=True)
