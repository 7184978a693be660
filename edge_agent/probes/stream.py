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

from pantau.contract import StreamFault

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
    previous: npt.NDArray[np.float32] | None = None

    def add(self, frame: av.VideoFrame) -> None:
        """Measure one decoded frame."""
        if self.first_frame is None:
            self.first_frame = time.monotonic()
        if frame.pts is not None and frame.time_base is not None:
            seconds = float(frame.pts * frame.time_base)
            self.first_pts = seconds if self.first_pts is None else self.first_pts
            self.last_pts = seconds
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
) -> StreamResult:
    """Decode ``sample_s`` seconds of ``url`` (RTSP over TCP) and judge them. Blocking."""
    # Decoding stays on this thread (no FFmpeg worker threads): one probe costs at most one
    # core, the site's concurrency bounds the total, and thread_time() measures it exactly.
    cpu0 = time.thread_time()
    started = time.monotonic()
    try:
        container = av.open(
            url,
            options={"rtsp_transport": "tcp", "analyzeduration": "1000000"},
            timeout=(timeout_s, timeout_s),
        )
    except (av.error.FFmpegError, OSError) as exc:
        return StreamResult(
            fault=StreamFault.OPEN_FAILED,
            faults=[StreamFault.OPEN_FAILED],
            detail=_redact(str(exc), url)[:200],
            cpu_s=time.thread_time() - cpu0,
        )
    sample = _Sample()
    error = ""
    completed = False  # the sample reached its full length
    try:
        video = container.streams.video[0]
        video.codec_context.thread_count = 1
        deadline: float | None = None
        for packet in container.demux(video):
            sample.stream_bytes += packet.size
            for frame in packet.decode():
                if sample.first_frame is None:
                    deadline = time.monotonic() + sample_s
                sample.add(frame)
            if deadline is not None and time.monotonic() >= deadline:
                completed = True
                break
    except (av.error.FFmpegError, OSError) as exc:
        error = _redact(f"stream stopped: {exc}", url)[:200]
    finally:
        container.close()
    lumas, sharps, motions = sample.lumas, sample.sharps, sample.motions
    first_frame = sample.first_frame
    codec = video.codec_context.name if "video" in locals() else None
    width = video.codec_context.width or None if "video" in locals() else None
    height = video.codec_context.height or None if "video" in locals() else None
    faults, detail, still = judge(lumas, sharps, motions, thresholds)
    if not completed and StreamFault.NO_VIDEO not in faults:
        faults.insert(0, StreamFault.NO_VIDEO)
        detail = f"frames stopped after {len(lumas)}" + (f"; {detail}" if detail else "")
    if error:
        detail = f"{detail}; {error}"
    span = sample.span_s()
    return StreamResult(
        fault=faults[0] if faults else StreamFault.NONE,
        faults=faults,
        detail=detail,
        codec=codec,
        width=width,
        height=height,
        frames=len(lumas),
        fps=(len(lumas) - 1) / span if span > 0 else None,
        bitrate_kbps=sample.stream_bytes * 8 / 1000 / span if span > 0 else None,
        first_frame_ms=(first_frame - started) * 1000 if first_frame is not None else None,
        luma=statistics.median(lumas) if lumas else None,
        sharpness=statistics.median(sharps) if sharps else None,
        motion=statistics.median(motions) if motions else None,
        frozen_ratio=still,
        cpu_s=time.thread_time() - cpu0,
    )
