"""The stream probe against real H.264 over RTSP from the fake cameras: every picture fault is
found, with the measured value behind it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from edge_agent.probes.stream import StreamResult, StreamThresholds, probe_stream
from pantau.core.contract import StreamFault
from simulators.cameras import CameraMode, FakeCamera
from simulators.video import FPS, Picture


@pytest.fixture
async def cameras() -> AsyncIterator[dict[Picture, FakeCamera]]:
    found = {}
    for picture in Picture:
        camera = FakeCamera(f"cam-{picture}")
        await camera.start()
        camera.set_picture(picture)
        found[picture] = camera
    yield found
    for camera in found.values():
        await camera.stop()


def url(camera: FakeCamera, password: str = "pantau") -> str:
    return f"rtsp://admin:{password}@127.0.0.1:{camera.rtsp_port}/stream1"


async def probe(target: str) -> StreamResult:
    return await asyncio.to_thread(
        probe_stream, target, sample_s=2.0, timeout_s=3.0, thresholds=StreamThresholds()
    )


async def test_every_picture_gets_its_verdict(cameras: dict[Picture, FakeCamera]) -> None:
    """Moving: healthy, with codec, size, fps and bitrate; frozen, black, blurred and stopped
    each named, with the value that tripped the threshold."""
    results = dict(
        zip(cameras, await asyncio.gather(*(probe(url(c)) for c in cameras.values())), strict=True)
    )
    healthy = results[Picture.MOVING]
    assert (healthy.fault, healthy.codec, healthy.width, healthy.height) == (
        StreamFault.NONE,
        "h264",
        320,
        176,
    )
    assert healthy.fps is not None and abs(healthy.fps - FPS) < 2
    assert healthy.bitrate_kbps and healthy.bitrate_kbps > 10
    assert healthy.first_frame_ms is not None and healthy.frames >= 15
    assert healthy.sharpness and healthy.sharpness > 1000 and healthy.motion and healthy.motion > 1

    assert results[Picture.FROZEN].fault is StreamFault.FROZEN
    assert results[Picture.FROZEN].frozen_ratio == 1.0
    assert "keyframes alike" in results[Picture.FROZEN].detail
    assert results[Picture.BLACK].fault is StreamFault.DARK
    assert results[Picture.BLACK].luma is not None and results[Picture.BLACK].luma < 35
    assert results[Picture.BLURRED].faults == [StreamFault.BLURRED]
    assert "sharpness" in results[Picture.BLURRED].detail
    stopped = results[Picture.STOPPED]
    assert stopped.fault is StreamFault.NO_VIDEO and "none for" in stopped.detail
    assert "pantau@" not in stopped.detail  # credentials never reach the data


async def test_unreachable_or_refused_streams_fail_to_open(
    cameras: dict[Picture, FakeCamera],
) -> None:
    """A wrong password and a closed port: open_failed, without the password in the detail."""
    wrong = await probe(url(cameras[Picture.MOVING], password="nope"))
    assert wrong.fault is StreamFault.OPEN_FAILED and "nope" not in wrong.detail
    await cameras[Picture.FROZEN].set_mode(CameraMode.DOWN)
    closed = await probe(url(cameras[Picture.FROZEN]))
    assert closed.fault is StreamFault.OPEN_FAILED
