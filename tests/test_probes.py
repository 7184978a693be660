"""Camera probes against fake cameras that are real RTSP/HTTP servers on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from edge_agent.config import CameraConfig
from edge_agent.probes.auth import authorization, choose_challenge
from edge_agent.probes.camera import probe_camera
from edge_agent.probes.snapshot import make_http_client
from pantau.core.contract import Cause, ProbeStage
from simulators.cameras import CameraMode, FakeCamera

TIMEOUT_S = 0.5


@pytest.fixture
async def camera() -> AsyncIterator[FakeCamera]:
    cam = FakeCamera("s1/c1", username="admin", password="secret", slow_delay_s=0.1)
    await cam.start()
    yield cam
    await cam.stop()


def config_for(
    cam: FakeCamera,
    *,
    password: str | None = "secret",
    rtsp: bool = True,
    snapshot: bool = True,
    username: str | None = "admin",
) -> CameraConfig:
    return CameraConfig(
        id="c1",
        rtsp_url=cam.rtsp_url if rtsp else None,
        snapshot_url=cam.snapshot_url if snapshot else None,
        username=username if password is not None else None,
        password=password,
    )


async def probe(cfg: CameraConfig):  # type: ignore[no-untyped-def]
    async with make_http_client() as http:
        return await probe_camera(cfg, http, timeout_s=TIMEOUT_S)


async def test_up_camera_passes_every_stage_with_digest_auth(camera: FakeCamera) -> None:
    """An up camera answers OPTIONS, DESCRIBE (Digest) and serves a JPEG."""
    result = await probe(config_for(camera))
    assert result.reading.up, result.detail
    assert result.reading.cause is Cause.OK
    assert result.reading.rtsp_status == 200
    assert result.reading.snapshot_bytes and result.reading.snapshot_bytes > 100
    assert result.reading.tcp_ms is not None and result.reading.rtsp_ms is not None


async def test_down_camera_is_refused_at_tcp(camera: FakeCamera) -> None:
    """A closed port gives cause refused at the tcp stage."""
    await camera.set_mode(CameraMode.DOWN)
    result = await probe(config_for(camera))
    assert (result.reading.up, result.reading.cause, result.reading.stage) == (
        False,
        Cause.REFUSED,
        ProbeStage.TCP,
    )


async def test_hung_camera_times_out_at_rtsp(camera: FakeCamera) -> None:
    """A camera that accepts but never answers gives cause timeout at the rtsp stage."""
    await camera.set_mode(CameraMode.HUNG)
    result = await probe(config_for(camera))
    assert (result.reading.up, result.reading.cause, result.reading.stage) == (
        False,
        Cause.TIMEOUT,
        ProbeStage.RTSP,
    )
    assert result.reading.latency_ms >= TIMEOUT_S * 1000


async def test_wrong_credentials_give_auth(camera: FakeCamera) -> None:
    """Credentials the camera rejects give cause auth."""
    result = await probe(config_for(camera, password="wrong"))
    assert (result.reading.up, result.reading.cause, result.reading.stage) == (
        False,
        Cause.AUTH,
        ProbeStage.RTSP,
    )
    assert result.reading.rtsp_status == 401


async def test_auth_failing_camera_on_snapshot_only(camera: FakeCamera) -> None:
    """The snapshot stage reports auth on its own too."""
    await camera.set_mode(CameraMode.AUTH_FAIL)
    result = await probe(config_for(camera, rtsp=False))
    assert (result.reading.up, result.reading.cause, result.reading.stage) == (
        False,
        Cause.AUTH,
        ProbeStage.SNAPSHOT,
    )


async def test_401_without_configured_credentials_proves_liveness(camera: FakeCamera) -> None:
    """With no credentials configured, a 401 + WWW-Authenticate still shows the server is alive."""
    result = await probe(config_for(camera, password=None, snapshot=False))
    assert result.reading.up
    assert result.reading.rtsp_status == 401


async def test_slow_camera_is_up_with_its_latency(camera: FakeCamera) -> None:
    """A slow but answering camera is up and its latency shows the delay."""
    await camera.set_mode(CameraMode.SLOW)
    result = await probe(config_for(camera, snapshot=False))
    assert result.reading.up
    assert result.reading.rtsp_ms is not None and result.reading.rtsp_ms >= 300  # 3 answers x 0.1 s


async def test_basic_auth_camera() -> None:
    """Cameras that only speak Basic auth are handled (Authorization: Basic)."""
    challenge = choose_challenge(['Basic realm="cam"'])
    assert challenge == ("basic", {"realm": "cam"})
    header = authorization(challenge, method="GET", uri="/", username="u", password="p")
    assert header == "Basic dTpw"


async def test_camera_back_up_after_down(camera: FakeCamera) -> None:
    """Down then up reopens the same ports."""
    url = camera.rtsp_url
    await camera.set_mode(CameraMode.DOWN)
    await camera.set_mode(CameraMode.UP)
    assert camera.rtsp_url == url
    assert (await probe(config_for(camera))).reading.up
