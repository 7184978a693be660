"""The hostile device zoo against one real agent: it never stops, and every device gets its own
reading with the right cause every interval."""

from __future__ import annotations

import asyncio
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
    Cause,
    ProbeStage,
    ReadingBatch,
    StreamFault,
    TopicKind,
    all_sites_filter,
)
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from simulators.cameras import FakeCamera
from simulators.zoo import EXPECTED, Behaviour, DeviceZoo, ZooDevice

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
