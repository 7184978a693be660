"""The agent's wire: batches assembled from queued bodies validate as the contract's
``ReadingBatch`` for every reading kind, in this minor and downgraded for a minor-0 collector;
the agent learns its collectors' minor and keeps it; refused messages are set aside, counted and
never sent again."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import orjson

from edge_agent.rejects import EdgeRejects
from edge_agent.wire import PeerContract, encode_batch, encode_status
from pantau.core.commands import Action, CommandResult
from pantau.core.compat import fields_newer_than, reading_model
from pantau.core.contract import (
    CONTRACT_MINOR,
    READING_KINDS,
    AgentReading,
    CameraReading,
    Cause,
    CommandReading,
    ContractNotice,
    DeviceReading,
    DiskStatus,
    GapReading,
    PoeState,
    PortReading,
    ReadingBatch,
    RecorderDiskReading,
    RecordGap,
    RecordingReading,
    SensorReading,
    ServiceReading,
    SiteStatus,
    StreamFault,
    StreamReading,
)
from pantau.core.mqtt import Message
from tests.helpers import async_wait_for
from tests.test_publisher_unit import rig, running, stop  # noqa: F401 (fixtures)

TS = 1_800_000_000 * 10**9
ONE_OF_EACH = {
    "cameras": CameraReading(camera="c1", ts=TS, up=True, cause=Cause.OK, latency_ms=3.5),
    "sensors": SensorReading(sensor="cab", kind="temp_c", ts=TS, value=41.5),
    "agent": AgentReading(ts=TS, backlog=3, dropped_total=0, oldest_age_s=1.0, rejected_total=2),
    "gaps": GapReading(ts=TS, start_ts=TS - 10, end_ts=TS - 1, count=4),
    "streams": StreamReading(camera="c1", ts=TS, fault=StreamFault.NONE, frames=25),
    "recordings": RecordingReading(
        camera="c1",
        recorder="nvr1",
        ts=TS,
        window_s=3600,
        recorded_s=3500.0,
        gaps=[RecordGap(start_ts=TS - 100 * 10**9, end_ts=TS - 50 * 10**9)],
    ),
    "disks": RecorderDiskReading(recorder="nvr1", disk="1", ts=TS, status=DiskStatus.OK),
    "devices": DeviceReading(device="c1", ts=TS, ok=True, serial="X1", clock_offset_ms=5.0),
    "commands": CommandReading(
        device="c1",
        ts=TS,
        result=CommandResult.DONE,
        action=Action.POWER_CYCLE,
        trigger="policy",
        up_after=True,
        recovery_s=12.5,
    ),
    "ports": PortReading(
        switch="sw1", port=3, camera="c1", ts=TS, link_up=True, poe=PoeState.DELIVERING
    ),
    "services": ServiceReading(service="web", ts=TS, ok=True, status=200, cert_days=10.0),
}


def rows() -> list[tuple[str, bytes]]:
    return [(kind, r.model_dump_json().encode()) for kind, r in ONE_OF_EACH.items()]


def test_every_reading_kind_is_covered() -> None:
    """A new reading kind must be added here too."""
    assert set(ONE_OF_EACH) == set(READING_KINDS)


def test_a_batch_in_this_minor_is_the_contract_batch() -> None:
    """Equal to the model built from the readings, message id and minor included."""
    raw = encode_batch("s1", "d1", rows(), msg=42, minor=CONTRACT_MINOR)
    parsed = ReadingBatch.model_validate_json(raw)
    expected = ReadingBatch(
        site="s1", district="d1", msg=42, minor=CONTRACT_MINOR,
        **{kind: [r] for kind, r in ONE_OF_EACH.items()},
    )  # fmt: skip
    assert parsed == expected


def test_a_batch_for_a_minor_zero_collector_has_no_newer_field() -> None:
    """Every field added after minor 0 is left out, at the top and in every reading."""
    data = orjson.loads(encode_batch("s1", "d1", rows(), msg=7, minor=0))
    assert fields_newer_than(ReadingBatch, 0).isdisjoint(data)
    for kind in READING_KINDS:
        newer = fields_newer_than(reading_model(kind), 0)
        for item in data.get(kind, []):
            assert newer.isdisjoint(item), (kind, item)
    assert "rejected_total" not in data["agent"][0] and data["agent"][0]["backlog"] == 3
    # Whole kinds of minor 1 (recordings, disks, devices) are left out, the rest kept.
    assert set(data) & set(READING_KINDS) == {"cameras", "sensors", "agent", "gaps", "streams"}
    ReadingBatch.model_validate(data)


def test_a_status_for_a_minor_zero_collector_has_no_newer_field() -> None:
    status = SiteStatus(site="s1", district="d1", online=True, ts=TS, lat=0, lon=0, session=1)
    assert fields_newer_than(SiteStatus, 0).isdisjoint(orjson.loads(encode_status(status, 0)))
    assert SiteStatus.model_validate_json(encode_status(status, 1)).minor == CONTRACT_MINOR


def test_the_peer_minor_is_learnt_kept_and_capped(tmp_path: Path) -> None:
    """A notice of a newer minor is capped at ours; the state survives a restart; a corrupt state
    file means minor 0 (the safe dialect), not a crash."""
    path = tmp_path / "q.contract.json"
    peer = PeerContract(path)
    assert peer.minor == 0
    assert peer.learn(ContractNotice(contract="1.9", minor=9))
    assert peer.minor == CONTRACT_MINOR
    assert not peer.learn(ContractNotice(contract="1.9", minor=9))
    assert PeerContract(path).minor == CONTRACT_MINOR
    path.write_text("{not json")
    assert PeerContract(path).minor == 0


async def test_a_refused_message_is_set_aside_and_never_sent_again(rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """A receipt refusing a message (schema): its rows leave the queue for the edge dead letters,
    counted; after the receipt timeout nothing is sent again. A refusal marked retry stays."""
    link, queue, publisher, _ = rig
    rejects = EdgeRejects(tmp_path / "rejected.sqlite")
    publisher._rejects = rejects  # the agent passes it at construction
    queue.append(
        [("sensors", TS + v, SensorReading(sensor="s", kind="k", ts=TS + v, value=v)
          .model_dump_json().encode()) for v in range(5)],
        now_ns=TS,
    )  # fmt: skip
    task = await running(publisher)
    try:
        await link.wait_sent(1)
        msg = link.sent[0].payload["msg"]
        await asyncio.sleep(0)  # the PUBACK callback moves it to awaiting
        body = {
            "v": 1, "site": "s1", "msgs": [], "ts": time.time_ns(), "contract": "1.1",
            "rejected": [{"msg": msg, "reason": "schema", "detail": "x: bad"}],
        }  # fmt: skip
        link.messages.put_nowait(
            Message("pantau/v1/sites/s1/receipts", json.dumps(body).encode(), 1, False, 1, 1)
        )
        await async_wait_for(
            lambda: asyncio.sleep(0, len(queue) == 0), timeout_s=5, what="queue emptied"
        )
        assert rejects.total == 5 and publisher.rejected_total == 5
        await asyncio.sleep(0.6)  # two receipt timeouts: a wrong publisher resends by now
        assert len(link.sent) == 1
    finally:
        await stop(task)
    rejects.close()
    assert EdgeRejects(tmp_path / "rejected.sqlite").total == 5  # the count survives


async def test_a_refusal_to_retry_keeps_the_readings(rig) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """``retry`` (a clock ahead): the rows stay queued and are sent again after the timeout."""
    link, queue, publisher, _ = rig
    queue.append(
        [("sensors", TS, SensorReading(sensor="s", kind="k", ts=TS, value=1)
          .model_dump_json().encode())],
        now_ns=TS,
    )  # fmt: skip
    task = await running(publisher)
    try:
        await link.wait_sent(1)
        msg = link.sent[0].payload["msg"]
        await asyncio.sleep(0)
        body = {
            "v": 1, "site": "s1", "ts": time.time_ns(),
            "rejected": [{"msg": msg, "reason": "future_timestamp", "retry": True}],
        }  # fmt: skip
        link.messages.put_nowait(
            Message("pantau/v1/sites/s1/receipts", json.dumps(body).encode(), 1, False, 1, 1)
        )
        await link.wait_sent(2)
        assert link.sent[1].values() == [1] and len(queue) == 1
    finally:
        await stop(task)
