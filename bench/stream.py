"""Stream-probe cost: CPU seconds per probe beside a bare demux of the same stream, and cameras
per core at a 5-minute cycle.

Realistic video: a natural-looking moving scene at 25 fps, encoded as cameras encode it
(libx264/libx265, no B-frames, 2 s keyframe interval, bitrate cap), served by GStreamer's
gst-rtsp-server. The project's own synthetic fake-camera stream is measured beside it, labelled.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import av

from bench.harness import Harness
from devtools.rtspserver import make_gst_rtsp
from edge_agent.probes.stream import CameraNormal, StreamResult, StreamThresholds, probe_stream
from pantau.core.contract import StreamFault
from simulators.cameras import FakeCamera
from simulators.scenes import Scene, encode

SYNTHETIC_SIZES = ((640, 360), (1280, 720))  # the fake camera: test pattern, 10 fps
CODECS = {"h264": "libx264", "h265": "libx265"}
STREAM_CYCLE_S = 300.0
PROBE_TIMEOUT_S = 10.0


def bare_demux(url: str, sample_s: float) -> float:
    """CPU seconds to open ``url`` and read ``sample_s`` of it from its first keyframe, decoding
    nothing: the floor any stream probe pays."""
    cpu0 = time.thread_time()
    options = {"analyzeduration": "1000000", "rtsp_transport": "tcp"}
    with av.open(url, options=options, timeout=(PROBE_TIMEOUT_S, PROBE_TIMEOUT_S)) as container:
        first = None
        for packet in container.demux(container.streams.video[0]):
            if packet.pts is None or packet.time_base is None:
                continue
            if first is None and packet.is_keyframe:
                first = float(packet.pts * packet.time_base)
            if first is not None and float(packet.pts * packet.time_base) - first >= sample_s:
                break
    return time.thread_time() - cpu0


def _probe(url: str, sample_s: float, normal: CameraNormal | None = None) -> StreamResult:
    result = probe_stream(
        url,
        sample_s=sample_s,
        timeout_s=PROBE_TIMEOUT_S,
        thresholds=StreamThresholds(),
        normal=normal,
    )
    if result.fault is not StreamFault.NONE:
        raise RuntimeError(f"stream bench probe of {url} failed: {result.fault} {result.detail}")
    return result


async def real_stream_cost(bench: Harness) -> None:
    """Probe and bare demux of realistic H.264 and H.265 through a real RTSP server."""
    config = bench.config
    width, height = config.real_stream_size
    folder = Path(bench.workdir) / "video"
    folder.mkdir(exist_ok=True)
    mounts = {}
    for codec, encoder in CODECS.items():
        bench.say(
            f"encoding {config.real_stream_s:g} s of a natural scene, {codec} {width}x{height}"
        )
        path = await asyncio.to_thread(
            encode,
            Scene.MOVING,
            folder / f"moving-{codec}.mkv",
            codec=encoder,
            size=(width, height),
            seconds=config.real_stream_s,
        )
        mounts[codec] = f"{path}:{codec}"
    server = make_gst_rtsp(folder, mounts)
    await asyncio.to_thread(server.start)
    try:
        for codec in CODECS:
            url = f"rtsp://127.0.0.1:{server.port}/{codec}"
            probes, demuxes = [], []
            normal = CameraNormal()  # as the agent keeps one per camera
            for _ in range(config.stream_runs):  # alternate, so drift hits both alike
                demuxes.append(await asyncio.to_thread(bare_demux, url, config.stream_sample_s))
                result = await asyncio.to_thread(_probe, url, config.stream_sample_s, normal)
                probes.append(result.cpu_s)
            _record(bench, f"{codec} {width}x{height} 25fps natural", probes, demuxes)
    finally:
        await asyncio.to_thread(server.stop)


async def synthetic_stream_cost(bench: Harness) -> None:
    """The fake camera's synthetic H.264 (10 fps test pattern), for comparison with older runs."""
    for width, height in SYNTHETIC_SIZES:
        camera = FakeCamera("stream-bench", video_size=(width, height))
        await camera.start()
        url = f"rtsp://admin:pantau@127.0.0.1:{camera.rtsp_port}/stream1"
        probes = []
        normal = CameraNormal()
        try:
            for _ in range(bench.config.stream_runs):
                sample_s = bench.config.stream_sample_s
                result = await asyncio.to_thread(_probe, url, sample_s, normal)
                probes.append(result.cpu_s)
        finally:
            await camera.stop()
        _record(bench, f"synthetic {width}x{height} 10fps", probes, None)


def _record(bench: Harness, label: str, probes: list[float], demuxes: list[float] | None) -> None:
    per_probe = statistics.median(probes)
    row: dict[str, float] = {
        "sample_s": bench.config.stream_sample_s,
        "cpu_s_per_probe": round(per_probe, 4),
        "cameras_per_core_5min": int(STREAM_CYCLE_S / per_probe),
    }
    line = f"stream probe {label}: {per_probe:.3f} CPU s"
    if demuxes:
        demux = statistics.median(demuxes)
        row |= {"demux_cpu_s": round(demux, 4), "ratio_to_demux": round(per_probe / demux, 2)}
        line += f", bare demux {demux:.3f} s (x{per_probe / demux:.2f})"
    bench.results.stream[label] = row
    bench.say(f"{line} -> {row['cameras_per_core_5min']:,} cameras per core every 5 min")
