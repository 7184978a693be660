"""The stream probe against a real RTSP server nobody here wrote (GStreamer's gst-rtsp-server),
serving natural-looking scenes encoded as cameras encode them (libx264/libx265, no B-frames,
2 s keyframe interval, a bitrate cap): every picture gets its verdict in H.264 and H.265."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devtools.localsvc import ManagedProcess
from devtools.rtspserver import make_gst_rtsp
from edge_agent.probes.stream import CameraNormal, StreamResult, StreamThresholds
from edge_agent.streams import probe_with_fallback
from pantau.core.contract import StreamFault
from simulators.scenes import FPS, Scene, encode

CODECS = {"h264": "libx264", "h265": "libx265"}
SIZE = (640, 360)
SAMPLE_S = 3.0


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Every scene in both codecs: 6 s each (a probe reads about 4), 1 s for the end of stream."""
    folder = tmp_path_factory.mktemp("scenes")
    jobs: dict[tuple[str, str], tuple[Scene, float]] = {}
    for codec in CODECS:
        jobs |= {(codec, scene): (scene, 6.0) for scene in Scene}
        jobs[codec, "short"] = (Scene.MOVING, 1.0)

    def make(key: tuple[str, str]) -> Path:
        codec, name = key
        scene, seconds = jobs[key]
        path = folder / f"{name}-{codec}.mkv"
        return encode(scene, path, codec=CODECS[codec], size=SIZE, seconds=seconds)

    with ThreadPoolExecutor(2) as pool:  # the encoders release the GIL
        return dict(zip(jobs, pool.map(make, jobs), strict=True))


def _mounts(videos: dict[tuple[str, str], Path]) -> dict[str, str]:
    mounts = {}
    for (codec, scene), path in videos.items():
        mounts[f"{scene}-{codec}"] = f"{path}:{codec}"
        if scene is Scene.MOVING:
            mounts[f"stalled-{codec}"] = f"{path}:{codec}:stall=2"
            mounts[f"udponly-{codec}"] = f"{path}:{codec}:udp"
    return mounts


@pytest.fixture(scope="module")
def servers(
    videos: dict[tuple[str, str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ManagedProcess]]:
    """One open server and one each with Basic and Digest authentication."""
    base = tmp_path_factory.mktemp("gst")
    started = {
        auth: make_gst_rtsp(base, _mounts(videos), auth=auth, user="admin:s3cret")
        for auth in ("none", "basic", "digest")
    }
    for server in started.values():
        server.start()
    yield started
    for server in started.values():
        server.stop()


def url(server: ManagedProcess, mount: str, login: str = "") -> str:
    return f"rtsp://{login}127.0.0.1:{server.port}/{mount}"


async def probe(
    target: str,
    *,
    transport: str = "tcp",
    normal: CameraNormal | None = None,
    thresholds: StreamThresholds | None = None,
) -> StreamResult:
    return await asyncio.to_thread(
        probe_with_fallback,
        target,
        transport=transport,
        sample_s=SAMPLE_S,
        timeout_s=4.0,
        thresholds=thresholds or StreamThresholds(),
        normal=normal,
    )


@pytest.mark.parametrize("codec", sorted(CODECS))
async def test_every_picture_gets_its_verdict_on_a_real_server(
    codec: str, servers: dict[str, ManagedProcess]
) -> None:
    """Moving is healthy with exact fps and size; frozen (a still picture the encoder keeps
    refining), black, dark, stalled-with-the-session-open and end of stream each named."""
    open_server = servers["none"]
    pictures = ["moving", "frozen", "black", "dark", "stalled", "short"]
    results = dict(
        zip(
            pictures,
            await asyncio.gather(*(probe(url(open_server, f"{p}-{codec}")) for p in pictures)),
            strict=True,
        )
    )
    healthy = results["moving"]
    assert (healthy.fault, healthy.codec, healthy.width, healthy.height) == (
        StreamFault.NONE,
        {"h264": "h264", "h265": "hevc"}[codec],
        *SIZE,
    ), healthy.detail
    assert healthy.fps is not None and abs(healthy.fps - FPS) < 0.5, healthy.fps
    assert healthy.keyframes == 2  # 3 s of a 2 s keyframe interval; nothing else decoded
    assert SAMPLE_S <= healthy.frames / FPS <= SAMPLE_S + 0.2  # exactly the sample, not more
    assert healthy.motion is not None and healthy.motion > 20

    frozen = results["frozen"]
    assert frozen.faults == [StreamFault.FROZEN], frozen.detail
    assert "keyframes alike" in frozen.detail
    assert results["black"].fault is StreamFault.DARK
    dark = results["dark"]
    assert dark.fault is StreamFault.DARK and dark.luma is not None and dark.luma < 35
    stalled = results["stalled"]
    assert stalled.fault is StreamFault.NO_VIDEO and "none for" in stalled.detail, stalled.detail
    assert stalled.frames < 2.2 * FPS  # it stopped after 2 s
    ended = results["short"]
    assert ended.fault is StreamFault.NO_VIDEO and "stream ended" in ended.detail, ended.detail


@pytest.mark.parametrize("codec", sorted(CODECS))
async def test_a_defocused_lens_is_blurred_against_the_cameras_own_normal(
    codec: str, servers: dict[str, ManagedProcess]
) -> None:
    """The absolute floor misses a defocused natural scene; the camera's learned normal (from
    its healthy probes) does not."""
    target = url(servers["none"], f"defocused-{codec}")
    limits = StreamThresholds(baseline_probes=1)  # the default waits for 3 healthy probes
    normal = CameraNormal()
    unknown, learned = await asyncio.gather(
        probe(target, thresholds=limits),
        probe(url(servers["none"], f"moving-{codec}"), normal=normal, thresholds=limits),
    )
    assert unknown.sharpness is not None and unknown.sharpness > limits.blur_sharpness
    assert StreamFault.BLURRED not in unknown.faults  # never seen sharp: only the floor applies
    assert learned.fault is StreamFault.NONE and learned.sharpness is not None

    blurred = await probe(target, normal=normal, thresholds=limits)
    assert blurred.fault is StreamFault.BLURRED, blurred.detail
    assert blurred.sharpness is not None
    assert blurred.sharpness < learned.sharpness * limits.blur_ratio
    assert "of this camera's" in blurred.detail
    assert list(normal.sharps) == [learned.sharpness]  # a faulty picture is not learned


@pytest.mark.parametrize("codec", sorted(CODECS))
async def test_authentication_and_transport_on_a_real_server(
    codec: str, servers: dict[str, ManagedProcess]
) -> None:
    """Basic and Digest with the right password play, the wrong one fails to open without the
    password in the detail; a UDP-only server plays with transport auto and fails over TCP."""
    mount = f"moving-{codec}"
    basic, digest, wrong, tcp_only, auto = await asyncio.gather(
        probe(url(servers["basic"], mount, "admin:s3cret@")),
        probe(url(servers["digest"], mount, "admin:s3cret@")),
        probe(url(servers["digest"], mount, "admin:nope@")),
        probe(url(servers["none"], f"udponly-{codec}")),
        probe(url(servers["none"], f"udponly-{codec}"), transport="auto"),
    )
    assert basic.fault is StreamFault.NONE, basic.detail
    assert digest.fault is StreamFault.NONE, digest.detail
    assert wrong.fault is StreamFault.OPEN_FAILED and "nope" not in wrong.detail
    assert tcp_only.fault is StreamFault.OPEN_FAILED and "over tcp" in tcp_only.detail
    assert auto.fault is StreamFault.NONE, auto.detail


@pytest.mark.parametrize("codec", sorted(CODECS))
async def test_a_freeze_is_reported_on_the_first_probe_after_it_starts(
    codec: str, servers: dict[str, ManagedProcess]
) -> None:
    """A healthy probe leaves its last keyframe; the next probe sees a picture that froze since
    (it differs from that keyframe) and says frozen at once, from its own two keyframes."""
    normal = CameraNormal()
    healthy = await probe(url(servers["none"], f"moving-{codec}"), normal=normal)
    assert healthy.fault is StreamFault.NONE and normal.last_keyframe is not None
    frozen = await probe(url(servers["none"], f"frozen-{codec}"), normal=normal)
    assert frozen.faults == [StreamFault.FROZEN], frozen.detail
    assert frozen.keyframes == 2 and "2 keyframes alike" in frozen.detail
    assert frozen.motion is not None and frozen.motion > 4  # it did change since the last probe


@pytest.mark.parametrize("codec", sorted(CODECS))
async def test_a_turned_or_covered_camera_is_a_changed_view_and_night_is_not(
    codec: str, servers: dict[str, ManagedProcess]
) -> None:
    """Against the view learned from healthy probes: turned away and covered are view_changed on
    their first probe, with a score; the same road at night (dimmer, noisier, headlights) is
    healthy; a new view stable for ``view_relearn_probes`` probes becomes the learned view."""
    limits = StreamThresholds(baseline_probes=1, view_relearn_probes=2)
    normal = CameraNormal()

    def at(scene: str) -> str:
        return url(servers["none"], f"{scene}-{codec}")

    learned = await probe(at("moving"), normal=normal, thresholds=limits)
    assert learned.fault is StreamFault.NONE and learned.view_score is None  # nothing learned yet
    night, turned, covered = [
        await probe(at(s), normal=normal, thresholds=limits) for s in ("night", "turned", "covered")
    ]
    assert night.fault is StreamFault.NONE, night.detail
    assert night.view_score is not None and night.view_score < limits.view_change
    assert turned.faults == [StreamFault.VIEW_CHANGED], turned.detail
    assert turned.view_score is not None and turned.view_score > 0.8
    assert "view changed" in turned.detail
    assert StreamFault.VIEW_CHANGED in covered.faults, covered.detail
    assert covered.view_score is not None and covered.view_score >= limits.view_change

    again = await probe(at("turned"), normal=normal, thresholds=limits)
    assert again.faults == [StreamFault.VIEW_CHANGED] and again.relearned, again.detail
    adopted = await probe(at("turned"), normal=normal, thresholds=limits)
    assert adopted.fault is StreamFault.NONE, adopted.detail
    back = await probe(at("moving"), normal=normal, thresholds=limits)
    assert back.fault is StreamFault.VIEW_CHANGED  # the old view is now the changed one
