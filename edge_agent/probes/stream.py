"""The stream probe: open the camera's RTSP video, read a few seconds and judge the picture.

It is cheap by design: every packet is counted (frame rate, bitrate, stalls come from packet
timestamps and arrival times) but only keyframes are decoded, single-threaded; picture verdicts
come from them (``picture``). The sample is measured in stream time from the first keyframe, so
the buffer FFmpeg fills while opening counts towards it instead of being decoded on top of it.
The probe runs in a worker thread; the agent limits how many run at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit, urlunsplit

import av
import av.error

from edge_agent.probes.picture import (
    CameraNormal,
    Keyframe,
    StreamThresholds,
    Verdict,
    judge,
    luma_plane,
    measure,
    wants_more,
)
from pantau.core.contract import StreamFault

__all__ = ["CameraNormal", "StreamResult", "StreamThresholds", "probe_stream"]

log = logging.getLogger(__name__)


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
    keyframes: int = 0
    fps: float | None = None
    bitrate_kbps: float | None = None
    first_frame_ms: float | None = None
    luma: float | None = None
    sharpness: float | None = None
    motion: float | None = None
    frozen_ratio: float | None = None
    view_score: float | None = None
    relearned: bool = False  # this probe's new view became the camera's learned view
    cpu_s: float = 0.0


@dataclass
class _Sample:
    """What one probe received, from its first keyframe on."""

    previous: Keyframe | None = None  # the last keyframe of the camera's previous probe
    keyframes: list[Keyframe] = field(default_factory=list)
    decoding: bool = True  # more keyframes are wanted
    first_frame: float | None = None  # wall (monotonic) time of the first decoded keyframe
    first_pts: float | None = None
    last_pts: float | None = None
    distinct_pts: set[float] = field(default_factory=set)
    stream_bytes: int = 0
    last_packet: float | None = None  # wall time of the last video packet with data
    longest_gap_s: float = 0.0  # longest wall time between video packets after the first frame
    tick_s: float | None = None  # the track's time base: PyAV makes a Fraction per packet

    def packet(self, packet: av.Packet, now: float) -> None:  # type: ignore[type-arg]
        """Count one video packet received after the first keyframe."""
        if self.last_packet is not None:
            self.longest_gap_s = max(self.longest_gap_s, now - self.last_packet)
        self.last_packet = now
        self.stream_bytes += packet.size
        stamp = packet.pts if packet.pts is not None else packet.dts
        if self.tick_s is None and packet.time_base is not None:
            self.tick_s = float(packet.time_base)
        if stamp is not None and self.tick_s is not None:
            seconds = stamp * self.tick_s
            self.first_pts = seconds if self.first_pts is None else self.first_pts
            self.last_pts = max(seconds, self.last_pts if self.last_pts is not None else seconds)
            self.distinct_pts.add(seconds)

    def span_s(self) -> float:
        """Stream time from the first keyframe to the newest packet."""
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
    normal: CameraNormal | None = None,
) -> StreamResult:
    """Read ``sample_s`` seconds of ``url`` (RTSP over ``transport``) and judge them. Blocking.

    ``normal`` is the camera's learned picture: verdicts are made against it and a healthy
    probe is added to it. Waits at most ``timeout_s`` for the first keyframe and never runs past
    ``sample_s + stall_s`` after it, whatever the server sends, and never raises for anything
    the stream contains.
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
    sample = _Sample(previous=_recent(normal, thresholds, started))
    try:
        video, outcome = _play(container, sample, sample_s, started + timeout_s, thresholds)
    except (av.error.FFmpegError, OSError) as exc:
        video, outcome = None, _redact(f"stream failed: {exc}", url)[:200]
    finally:
        container.close()
    if sample.first_frame is None and outcome in {"ended", "late"}:
        outcome = f"no keyframe within {timeout_s:g} s"
    ended = time.monotonic()
    verdict = judge(
        sample.keyframes,
        thresholds=thresholds,
        normal=normal,
        previous=sample.previous,
    )
    faults, details = list(verdict.faults), [verdict.detail] if verdict.detail else []
    if sample.keyframes and StreamFault.NO_VIDEO not in faults:
        cut = _cut_short(sample, outcome, thresholds, ended)
        if cut:
            faults.insert(0, StreamFault.NO_VIDEO)
            details.insert(0, cut)
    elif outcome not in {"complete", "ended", "late"}:
        details.insert(0, outcome)
    relearned = False
    if normal is not None:
        relearned = _remember(normal, sample.keyframes, faults, verdict, ended, thresholds)
    if relearned:
        details.append(f"view stable for {thresholds.view_relearn_probes} probes: learned")
    result = _result(sample, video, faults, "; ".join(details), verdict, started, cpu0)
    return replace(result, relearned=relearned) if relearned else result


def _play(
    container: av.container.InputContainer,
    sample: _Sample,
    sample_s: float,
    first_frame_by: float,
    thresholds: StreamThresholds,
) -> tuple[av.VideoStream | None, str]:
    """The video track and how reading it went ("complete", "ended", "late" or a problem)."""
    if not container.streams.video:
        kinds = sorted({str(s.type) for s in container.streams}) or ["no"]
        return None, f"no video track ({', '.join(kinds)} streams only)"
    video = container.streams.video[0]
    video.codec_context.thread_count = 1
    video.codec_context.skip_frame = "NONKEY"
    video.codec_context.options = {"flags2": "+chunks"}  # a frame may come in several packets
    return video, _read(container, video, sample, sample_s, first_frame_by, thresholds)


def _cut_short(sample: _Sample, outcome: str, thresholds: StreamThresholds, now: float) -> str:
    """Why a sample that started is no video ("" if it is video): what arrived, in how long."""
    frames = len(sample.distinct_pts)
    completed = outcome == "complete"
    silent = now - sample.last_packet if sample.last_packet is not None else 0.0
    stall = max(sample.longest_gap_s, 0.0 if completed else silent)
    if completed and stall < thresholds.stall_s and frames >= thresholds.min_frames:
        return ""
    got = f"{sample.span_s():.1f} s of video ({frames} frames)"
    waited = now - (sample.first_frame or now)
    if stall >= thresholds.stall_s:
        return f"{got} in {waited:.1f} s, none for {stall:.1f} s"
    if outcome == "ended":
        return f"stream ended after {got}"
    return f"{got} in {waited:.1f} s"


def _read(  # noqa: PLR0917
    container: av.container.InputContainer,
    video: av.VideoStream,
    sample: _Sample,
    sample_s: float,
    first_frame_by: float,
    thresholds: StreamThresholds,
) -> str:
    """Read until ``sample_s`` of stream time after the first keyframe: "complete", or "ended"
    (the server ended the stream) or "late" (the deadline passed first)."""
    deadline = first_frame_by
    keyed = False  # a keyframe packet was seen: decoding can start
    for packet in container.demux(video):
        now = time.monotonic()
        keyed = keyed or (packet.is_keyframe and packet.size > 0)
        if keyed and packet.size:
            # Every packet goes to the decoder (a keyframe may arrive in several chunks), which
            # skips all but keyframes itself (skip_frame NONKEY), until the verdict has the
            # keyframes it needs.
            for frame in packet.decode() if sample.decoding else ():
                if sample.first_frame is None:
                    sample.first_frame = now
                    deadline = now + sample_s + thresholds.stall_s
                sample.keyframes.append(measure(luma_plane(frame)))
                sample.decoding = wants_more(sample.keyframes)
            if sample.first_frame is not None:
                sample.packet(packet, now)
                if sample.span_s() >= sample_s:
                    return "complete"
        if now >= deadline:
            return "late"
    return "ended"


def _recent(
    normal: CameraNormal | None, thresholds: StreamThresholds, now: float
) -> Keyframe | None:
    if normal is None or normal.last_keyframe is None:
        return None
    if now - normal.last_keyframe_at > thresholds.frozen_memory_s:
        return None
    return normal.last_keyframe


def _remember(  # noqa: PLR0917
    normal: CameraNormal,
    keyframes: list[Keyframe],
    faults: list[StreamFault],
    verdict: Verdict,
    now: float,
    thresholds: StreamThresholds,
) -> bool:
    """Learn a healthy probe; count a probe whose only fault is a new view towards adopting it
    (True when this probe adopted it)."""
    if keyframes:
        normal.last_keyframe, normal.last_keyframe_at = keyframes[-1], now
    if not faults and verdict.luma is not None and verdict.sharpness is not None:
        normal.learn(verdict.luma, verdict.sharpness, verdict.seen)
    elif faults == [StreamFault.VIEW_CHANGED] and verdict.seen is not None:
        return normal.consider(
            verdict.seen,
            limit=thresholds.view_change,
            needed=thresholds.view_relearn_probes,
        )
    return False


def _result(  # noqa: PLR0917
    sample: _Sample,
    video: av.VideoStream | None,
    faults: list[StreamFault],
    detail: str,
    verdict: Verdict,
    started: float,
    cpu0: float,
) -> StreamResult:
    span = sample.span_s()
    codec = video.codec_context if video is not None else None
    return StreamResult(
        fault=faults[0] if faults else StreamFault.NONE,
        faults=faults,
        detail=detail,
        codec=codec.name if codec is not None else None,
        width=(codec.width or None) if codec is not None else None,
        height=(codec.height or None) if codec is not None else None,
        frames=len(sample.distinct_pts),
        keyframes=len(sample.keyframes),
        fps=(len(sample.distinct_pts) - 1) / span if span > 0 else None,
        bitrate_kbps=sample.stream_bytes * 8 / 1000 / span if span > 0 else None,
        first_frame_ms=(sample.first_frame - started) * 1000
        if sample.first_frame is not None
        else None,
        luma=verdict.luma,
        sharpness=verdict.sharpness,
        motion=verdict.motion,
        frozen_ratio=verdict.frozen_ratio,
        view_score=verdict.view_score,
        cpu_s=time.thread_time() - cpu0,
    )
