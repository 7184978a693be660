"""The stream probe: open the camera's RTSP video, decode a few seconds and judge the picture.

Decoding is CPU work, so it runs in a worker thread; the agent limits how many run at once.
Each fault comes with the measured value that triggered it, so thresholds can be tuned per
camera from the data.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import av
import av.error
import numpy as np
import numpy.typing as npt

from pantau.core.contract import StreamFault

log = logging.getLogger(__name__)

ANALYSIS_STEP = 2  # analyse every 2nd pixel in each direction: faults are large-scale


@dataclass(frozen=True, kw_only=True)
class StreamThresholds:
    """Where a measurement becomes a fault (per camera, from its config)."""

    dark_luma: float = 35.0  # mean luma (0-255) below this is dark
    frozen_motion: float = 0.3  # mean absolute change between frames below this is "no change"
    frozen_ratio: float = 0.9  # share of unchanged frame pairs that makes the picture frozen
    blur_sharpness: float = 40.0  # variance of the Laplacian below this is blurred / covered
    min_frames: int = 5  # fewer decoded frames than this in the sample is "no video"
    stall_s: float = 2.0  # no new video packet for this long (wall time) is "no video"


@dataclass(frozen=True, kw_only=True)
class StreamResult:
    """One stream probe: what was received and what it showed."""

    fault: StreamFault
    faults: list[StreamFault] = field(default_factory=list)
    detail: str = ""
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    frames: int = 0
    fps: float | None = None
    bitrate_kbps: float | None = None
    first_frame_ms: float | None = None
    luma: float | None = None
    sharpness: float | None = None
    motion: float | None = None
    frozen_ratio: float | None = None
    cpu_s: float = 0.0


def sharpness(gray: npt.NDArray[np.float32]) -> float:
    """Variance of the 4-neighbour Laplacian: high for a detailed picture, near 0 for a blur."""
    lap = 4 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:]
    return float(lap.var())


def judge(
    lumas: list[float],
    sharps: list[float],
    motions: list[float],
    thresholds: StreamThresholds,
) -> tuple[list[StreamFault], str, float | None]:
    """Faults found in per-frame measurements, most severe first, with the values behind them."""
    t = thresholds
    if len(lumas) < t.min_frames:
        return [StreamFault.NO_VIDEO], f"{len(lumas)} frames decoded (< {t.min_frames})", None
    faults, details = [], []
    luma, sharp = statistics.median(lumas), statistics.median(sharps)
    still = sum(1 for m in motions if m < t.frozen_motion) / len(motions) if motions else 1.0
    if luma < t.dark_luma:
        faults.append(StreamFault.DARK)
        details.append(f"luma {luma:.1f} < {t.dark_luma:g}")
    if still >= t.frozen_ratio:
        faults.append(StreamFault.FROZEN)
        details.append(f"{still:.0%} of frames unchanged")
    if sharp < t.blur_sharpness:
        faults.append(StreamFault.BLURRED)
        details.append(f"sharpness {sharp:.1f} < {t.blur_sharpness:g}")
    return faults, "; ".join(details), still


@dataclass
class _Sample:
    """Per-frame measurements of one probe."""

    lumas: list[float] = field(default_factory=list)
    sharps: list[float] = field(default_factory=list)
    motions: list[float] = field(default_factory=list)
    stream_bytes: int = 0
    first_frame: float | None = None
    first_pts: float | None = None
    last_pts: float | None = None
    distinct_pts: set[float] = field(default_factory=set)
    last_packet: float | None = None  # wall time of the last video packet with data
    longest_gap_s: float = 0.0  # longest wall time between video packets after the first frame
    previous: npt.NDArray[np.float32] | None = None

    def packet(self, size: int) -> None:
        """Count one received video packet and the wall time since the one before."""
        now = time.monotonic()
        if self.first_frame is not None and self.last_packet is not None:
            self.longest_gap_s = max(self.longest_gap_s, now - self.last_packet)
        self.last_packet = now
        self.stream_bytes += size

    def add(self, frame: av.VideoFrame) -> None:
        """Measure one decoded frame."""
        if self.first_frame is None:
            self.first_frame = time.monotonic()
        if frame.pts is not None and frame.time_base is not None:
            seconds = float(frame.pts * frame.time_base)
            self.first_pts = seconds if self.first_pts is None else self.first_pts
            self.last_pts = seconds
            self.distinct_pts.add(seconds)
        image = frame.to_ndarray(format="gray")[::ANALYSIS_STEP, ::ANALYSIS_STEP].astype(np.float32)
        self.lumas.append(float(image.mean()))
        self.sharps.append(sharpness(image))
        if self.previous is not None:
            self.motions.append(float(np.abs(image - self.previous).mean()))
        self.previous = image

    def span_s(self) -> float:
        """Stream time between the first and the last frame."""
        if self.first_pts is None or self.last_pts is None:
            return 0.0
        return self.last_pts - self.first_pts


def _redact(text: str, url: str) -> str:
    """``text`` without the credentials that ``url`` may carry."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return text
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return text.replace(url, urlunsplit(parts._replace(netloc=netloc)))


def probe_stream(
    url: str,
    *,
    sample_s: float,
    timeout_s: float,
    thresholds: StreamThresholds,
    transport: str = "tcp",
) -> StreamResult:
    """Decode ``sample_s`` seconds of ``url`` (RTSP over ``transport``) and judge them. Blocking.

    Never runs past ``timeout_s + sample_s`` of wall time after opening, whatever the server
    sends (a source that never yields a video frame is ``no_video``), and never raises for
    anything the stream contains.
    """
    # Decoding stays on this thread (no FFmpeg worker threads): one probe costs at most one
    # core, the site's concurrency bounds the total, and thread_time() measures it exactly.
    cpu0 = time.thread_time()
    started = time.monotonic()
    options = {"analyzeduration": "1000000"}
    if url.startswith("rtsp"):
        options["rtsp_transport"] = transport
    try:
        container = av.open(url, options=options, timeout=(timeout_s, timeout_s))
    except (av.error.FFmpegError, OSError) as exc:
        return StreamResult(
            fault=StreamFault.OPEN_FAILED,
            faults=[StreamFault.OPEN_FAILED],
            detail=_redact(f"open over {transport}: {exc}", url)[:200],
            cpu_s=time.thread_time() - cpu0,
        )
    sample = _Sample()
    error = ""
    completed = False  # the sample reached its full length
    video = None
    try:
        if not container.streams.video:
            kinds = sorted({str(s.type) for s in container.streams}) or ["no"]
            error = f"no video track ({', '.join(kinds)} streams only)"
        else:
            video = container.streams.video[0]
            video.codec_context.thread_count = 1
            completed = _decode(container, video, sample, sample_s, started + timeout_s)
            if not completed and sample.first_frame is None:
                error = f"no video frame within {timeout_s:g} s"
    except (av.error.FFmpegError, OSError) as exc:
        error = _redact(f"stream stopped: {exc}", url)[:200]
    finally:
        container.close()
    return _result(
        sample,
        video=video,
        completed=completed,
        error=error,
        thresholds=thresholds,
        started=started,
        cpu0=cpu0,
    )


def _decode(
    container: av.container.InputContainer,
    video: av.VideoStream,
    sample: _Sample,
    sample_s: float,
    first_frame_by: float,
) -> bool:
    """Decode until ``sample_s`` after the first frame; False if the stream ends or stays empty."""
    deadline = first_frame_by
    for packet in container.demux(video):
        if packet.size:
            sample.packet(packet.size)
        for frame in packet.decode():
            if sample.first_frame is None:
                deadline = time.monotonic() + sample_s
            sample.add(frame)
        if time.monotonic() >= deadline:
            return sample.first_frame is not None
    return False


def _result(
    sample: _Sample,
    *,
    video: av.VideoStream | None,
    completed: bool,
    error: str,
    thresholds: StreamThresholds,
    started: float,
    cpu0: float,
) -> StreamResult:
    lumas, sharps, motions = sample.lumas, sample.sharps, sample.motions
    faults, detail, still = judge(lumas, sharps, motions, thresholds)
    if StreamFault.NO_VIDEO not in faults:
        if not completed:
            faults.insert(0, StreamFault.NO_VIDEO)
            detail = f"frames stopped after {len(lumas)}" + (f"; {detail}" if detail else "")
        elif sample.longest_gap_s >= thresholds.stall_s:
            faults.insert(0, StreamFault.NO_VIDEO)
            detail = f"no new video for {sample.longest_gap_s:.1f} s" + (
                f"; {detail}" if detail else ""
            )
    if error:
        detail = f"{detail}; {error}" if detail else error
    span = sample.span_s()
    codec = video.codec_context if video is not None else None
    return StreamResult(
        fault=faults[0] if faults else StreamFault.NONE,
        faults=faults,
        detail=detail,
        codec=codec.name if codec is not None else None,
        width=(codec.width or None) if codec is not None else None,
        height=(codec.height or None) if codec is not None else None,
        frames=len(lumas),
        fps=(len(sample.distinct_pts) - 1) / span if span > 0 else None,
        bitrate_kbps=sample.stream_bytes * 8 / 1000 / span if span > 0 else None,
        first_frame_ms=(sample.first_frame - started) * 1000
        if sample.first_frame is not None
        else None,
        luma=statistics.median(lumas) if lumas else None,
        sharpness=statistics.median(sharps) if sharps else None,
        motion=statistics.median(motions) if motions else None,
        frozen_ratio=still,
        cpu_s=time.thread_time() - cpu0,
    )
