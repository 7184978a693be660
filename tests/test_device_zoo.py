"""The hostile device zoo against one real agent: it never stops, and every device gets its own
reading with the right cause every interval."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import av
import numpy as np
import pytest

from devtools.localsvc import MosquittoProcess
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig, CameraConfig
from edge_agent.probes.camera import probe_camera
from edge_agent.probes.snapshot import make_http_client
from edge_agent.probes.stream import StreamThresholds, probe_stream
from pantau.core.contract import (
    CONTRACT_MINOR,
    CONTRACT_VERSION,
    Cause,
    DeviceReading,
    ProbeStage,
    ReadingBatch,
    RecordingReading,
    StreamFault,
    TopicKind,
    all_sites_filter,
)
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from simulators.cameras import FakeCamera
from simulators.onvif_recording_sim import RecordingStore, SimRecording
from simulators.onvif_sim import OnvifDevice, OnvifSimulator
from simulators.zoo import EXPECTED, Behaviour, DeviceZoo, ZooDevice
from simulators.zoo_devices import EXPECTED as DEVICE_EXPECTED
from simulators.zoo_devices import DeviceZooMember, OnvifNvrZoo

PROBE_TIMEOUT_S = 0.6
INTERVAL_S = 1.0
CYCLES = 4


@pytest.fixture
async def zoo(tmp_path: Path) -> AsyncIterator[DeviceZoo]:
    devices = DeviceZoo(tls_dir=tmp_path / "tls")
    await devices.start()
    yield devices
    await devices.stop()


def camera_for(device: ZooDevice) -> CameraConfig:
    if device.is_snapshot:
        return CameraConfig(id=device.behaviour.value, snapshot_url=device.url)
    return CameraConfig(id=device.behaviour.value, rtsp_url=device.url)


async def test_each_hostile_device_gets_its_own_cause(zoo: DeviceZoo) -> None:
    """Probed directly, every misbehaviour ends in its documented cause and stage, in bounded
    time, and none of them raises."""
    async with make_http_client() as http:
        results = await asyncio.gather(
            *(probe_camera(camera_for(d), http, timeout_s=PROBE_TIMEOUT_S) for d in zoo.devices)
        )
    for device, result in zip(zoo.devices, results, strict=True):
        expected_cause, expected_stage = EXPECTED[device.behaviour]
        assert (result.reading.up, result.reading.cause, result.reading.stage) == (
            False,
            expected_cause,
            expected_stage,
        ), f"{device.behaviour}: {result}"
        assert result.reading.latency_ms < PROBE_TIMEOUT_S * 3 * 1000 + 500, device.behaviour
        assert result.detail and "\n" not in result.detail
    details = {d.behaviour: r.detail for d, r in zip(zoo.devices, results, strict=True)}
    assert "Content-Length" in details[Behaviour.BAD_CONTENT_LENGTH]
    assert "CSeq" in details[Behaviour.WRONG_CSEQ]
    assert "redirect" in details[Behaviour.REDIRECT]
    assert "pw" not in details[Behaviour.REDIRECT]  # credentials in a Location are not echoed
    assert "over" in details[Behaviour.SNAPSHOT_HUGE]
    assert "not a JPEG" in details[Behaviour.SNAPSHOT_NOT_JPEG]


async def test_agent_survives_the_zoo_and_reports_every_device_every_interval(
    zoo: DeviceZoo, broker: MosquittoProcess, tmp_path: Path
) -> None:
    """One agent with the whole zoo and one healthy camera runs ``CYCLES`` intervals: it is
    still running, every zoo device has a reading per cycle with its cause, the healthy camera is
    up each time."""
    healthy = FakeCamera("s1/ok")
    await healthy.start()
    cameras = [camera_for(d) for d in zoo.devices]
    cameras.append(CameraConfig(id="healthy", rtsp_url=healthy.rtsp_url))
    config = AgentConfig.model_validate(
        {
            "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
            "broker": {"url": broker.url},
            "probe": {"interval_s": INTERVAL_S, "timeout_s": PROBE_TIMEOUT_S},
            "cameras": [c.model_dump() for c in cameras],
            "queue": {"path": str(tmp_path / "queue.sqlite")},
            # No collector answers here: publish at once, without waiting for a first receipt
            # to measure the clock (tests/test_clock_skew.py covers the wait).
            "publish": {"clock_hold_s": 0},
        }
    )
    listener = MqttLink(LinkSettings(address=BrokerAddress.parse(broker.url), client_id="zoo-l"))
    await listener.subscribe([all_sites_filter(TopicKind.READINGS)])
    await listener.start()
    await listener.wait_connected(10)
    agent_task = asyncio.create_task(Agent(config).run(), name="zoo-agent")
    readings: list[tuple[str, bool, Cause, ProbeStage | None]] = []
    try:
        deadline = time.monotonic() + CYCLES * INTERVAL_S + 20
        while Counter(r[0] for r in readings)["healthy"] < CYCLES:
            assert not agent_task.done(), agent_task  # raises the agent's error if it died
            async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                message = await listener.messages.get()
            batch = ReadingBatch.model_validate_json(message.payload)
            readings += [(c.camera, c.up, c.cause, c.stage) for c in batch.cameras]
        assert not agent_task.done()
    finally:
        agent_task.cancel()
        await asyncio.gather(agent_task, return_exceptions=True)
        await listener.close()
        await healthy.stop()
    counts = Counter(r[0] for r in readings)
    for device in zoo.devices:
        name = device.behaviour.value
        # Every interval that the healthy camera was reported, so was each zoo device.
        assert counts[name] >= CYCLES, (name, counts[name])
        seen = {(up, cause, stage) for camera, up, cause, stage in readings if camera == name}
        assert seen == {(False, *EXPECTED[device.behaviour])}, (name, seen)
    assert {(up, cause) for camera, up, cause, _ in readings if camera == "healthy"} == {
        (True, Cause.OK)
    }


def test_stream_probe_of_an_audio_only_source_is_no_video(tmp_path: Path) -> None:
    """A source without a video track is ``no_video`` naming what it has, not an IndexError."""
    path = tmp_path / "audio.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 8000), dtype=np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    result = probe_stream(str(path), sample_s=1, timeout_s=2, thresholds=StreamThresholds())
    assert result.fault is StreamFault.NO_VIDEO
    assert "no video track (audio streams only)" in result.detail


DEVICE_INTERVAL_S = 5.0  # the shortest devices.interval_s
# Room for zeep's WSDL loading: the first round loads the service definitions for 16 devices at
# once (the library caches them only once one load finished); 3 s was too short for the healthy
# camera's first check once under a loaded CI run.
DEVICE_TIMEOUT_S = 5.0
DEVICE_ROUNDS = 2


def zoo_site(
    members: list[DeviceZooMember],
    good: OnvifSimulator,
    rtsp_url: str,
    broker_url: str,
    queue: Path,
) -> AgentConfig:
    """Every member as a camera's ONVIF device and as a recorder (``type: onvif``, or
    ``hikvision`` for an NVR), beside a healthy camera whose ONVIF device records to its card."""
    cameras: list[dict[str, object]] = [
        {"id": "healthy", "rtsp_url": rtsp_url, "onvif": {"host": "127.0.0.1", "port": good.port}}
    ]
    recorders: list[dict[str, object]] = [
        {"type": "onvif", "id": "good-card", "host": "127.0.0.1", "port": good.port,
         "cameras": [{"camera": "healthy"}]},
    ]  # fmt: skip
    for m in members:
        camera: dict[str, object] = {"id": m.name, "rtsp_url": rtsp_url}
        if m.is_nvr:
            recorders.append(
                {"type": "hikvision", "id": m.name, "url": f"http://127.0.0.1:{m.port}",
                 "username": "admin", "password": "hik12345",
                 "cameras": [{"camera": m.name, "channel": 1}]}
            )  # fmt: skip
        else:
            camera["onvif"] = {"host": "127.0.0.1", "port": m.port}
            recorders.append(
                {"type": "onvif", "id": m.name, "host": "127.0.0.1", "port": m.port,
                 "cameras": [{"camera": m.name}]}
            )  # fmt: skip
        cameras.append(camera)
    return AgentConfig.model_validate(
        {
            "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
            "broker": {"url": broker_url},
            "probe": {"interval_s": INTERVAL_S, "timeout_s": PROBE_TIMEOUT_S},
            "cameras": cameras,
            "recorders": recorders,
            "devices": {
                "interval_s": DEVICE_INTERVAL_S, "timeout_s": DEVICE_TIMEOUT_S,
                "concurrency": 64,
            },
            "queue": {"path": str(queue)},
            # No collector here: no receipts to wait for, no clock hold.
            "publish": {"clock_hold_s": 0, "receipts": False},
        }
    )  # fmt: skip


async def test_agent_survives_the_onvif_and_nvr_zoo(
    broker: MosquittoProcess, tmp_path: Path
) -> None:
    """One agent with every ONVIF and NVR zoo member configured as a camera's ONVIF device and
    as a recorder: it keeps running, probes the healthy camera every interval and checks its
    good ONVIF device and card every device interval, and reports each member's own verdict
    every round (a device check ``ok: false``, recordings with an error and no numbers)."""
    now = time.time()
    card = SimRecording("REC1")
    card.record(*(dt_utc(now - 86400 * 3), dt_utc(now + 86400)))
    good = OnvifSimulator(OnvifDevice(recordings=RecordingStore([card])))
    healthy = FakeCamera("s1/ok")
    await healthy.start()
    await good.start()
    listener = MqttLink(LinkSettings(address=BrokerAddress.parse(broker.url), client_id="dzoo"))
    await listener.subscribe([all_sites_filter(TopicKind.READINGS)])
    await listener.start()
    await listener.wait_connected(10)
    devices: list[DeviceReading] = []
    recordings: list[RecordingReading] = []
    probes: list[int] = []
    async with OnvifNvrZoo() as zoo:
        queue = tmp_path / "q.sqlite"
        # A collector of this contract minor was heard before (the agent keeps that on disk):
        # recordings and device readings go out.
        peer = {"minor": CONTRACT_MINOR, "contract": CONTRACT_VERSION}
        queue.with_suffix(".contract.json").write_text(json.dumps(peer))
        config = zoo_site(zoo.members, good, healthy.rtsp_url, broker.url, queue)
        agent_task = asyncio.create_task(Agent(config).run(), name="device-zoo-agent")
        names = [m.name for m in zoo.members] + ["healthy"]
        try:
            deadline = time.monotonic() + 90
            while min(Counter(r.camera for r in recordings)[n] for n in names) < DEVICE_ROUNDS:
                assert not agent_task.done(), agent_task  # raises the agent's error if it died
                assert time.monotonic() < deadline, Counter(r.camera for r in recordings)
                try:
                    async with asyncio.timeout(1):  # then look at the agent and the deadline
                        message = await listener.messages.get()
                except TimeoutError:
                    continue
                batch = ReadingBatch.model_validate_json(message.payload)
                devices += batch.devices
                recordings += batch.recordings
                probes += [c.ts for c in batch.cameras if c.camera == "healthy" and c.up]
            assert not agent_task.done()
        finally:
            agent_task.cancel()
            await asyncio.gather(agent_task, return_exceptions=True)
            await listener.close()
            await healthy.stop()
            await good.stop()
    # The healthy camera was probed every interval throughout: no member held the agent up.
    steps = [(b - a) / 1e9 for a, b in itertools.pairwise(sorted(probes))]
    assert len(probes) >= 10 and max(steps) < INTERVAL_S * 2.5, steps
    good_checks = sorted(d.ts for d in devices if d.device == "healthy")
    failed = [d.error for d in devices if d.device == "healthy" and not d.ok]
    assert len(good_checks) >= DEVICE_ROUNDS and not failed, (good_checks, failed)
    assert all(
        (b - a) / 1e9 < DEVICE_INTERVAL_S + DEVICE_TIMEOUT_S
        for a, b in itertools.pairwise(good_checks)
    ), good_checks
    good_recordings = [r for r in recordings if r.camera == "healthy"]
    assert all(r.error is None and r.recorded_s == 3600 for r in good_recordings), good_recordings
    for member in zoo.members:
        ok, words = DEVICE_EXPECTED[member.behaviour]
        mine = [r for r in recordings if r.camera == member.name]
        assert all(r.recorded_s is None and r.error for r in mine), (member.name, mine)
        assert all(any(w in (r.error or "") for w in words) for r in mine), (member.name, mine)
        checks = [d for d in devices if d.device == member.name]
        if ok is None:
            assert checks == [], member.name  # an NVR has no camera ONVIF section here
            continue
        assert len(checks) >= 1 and {d.ok for d in checks} == {ok}, (member.name, checks)
        if not ok:
            assert all(any(w in (d.error or "") for w in words) for d in checks), checks


def dt_utc(epoch_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(epoch_s), dt.UTC)
