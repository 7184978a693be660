"""What a picture shows: measurements of decoded keyframes, a camera's learned normal, verdicts.

Verdicts are made on keyframes only: a real encoder keeps refining a still picture in the frames
after each keyframe, so frame-to-frame change says little, while two keyframes of a frozen
picture encode the same image. Change is measured on 16x16-pixel block means (the encoder's
quantization and sensor noise average out, a moving object does not) and summarised by a high
percentile, so an object crossing a small part of the view counts as change.
"""

from __future__ import annotations

import itertools
import statistics
from collections import deque
from dataclasses import dataclass, field

import av
import numpy as np
import numpy.typing as npt

from pantau.core.contract import StreamFault

Gray = npt.NDArray[np.float32]
BLOCK = 16  # pixels per side of the blocks compared between keyframes
CHANGE_PERCENTILE = 99.5  # of the block-mean differences: the "largest local change"
_Y_PLANE_FORMATS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "nv12"})


@dataclass(frozen=True, kw_only=True)
class StreamThresholds:
    """Where a measurement becomes a fault (per camera, from its config)."""

    dark_luma: float = 35.0  # mean luma (0-255) below this is dark, whatever the camera's normal
    dark_ratio: float = 0.25  # luma below this share of the camera's normal is dark
    frozen_motion: float = 4.0  # largest local change between keyframes below this: unchanged
    frozen_ratio: float = 0.9  # share of unchanged keyframe pairs that makes the picture frozen
    blur_sharpness: float = 40.0  # Laplacian variance below this is blurred, whatever the normal
    blur_ratio: float = 0.2  # sharpness below this share of the camera's normal is blurred
    min_frames: int = 5  # fewer video frames than this in the sample is "no video"
    stall_s: float = 2.0  # no new video packet for this long (wall time) is "no video"
    baseline_probes: int = 3  # healthy probes before the camera's own normal is used
    frozen_memory_s: float = 3600.0  # compare with the previous probe's keyframe if this recent


@dataclass(frozen=True)
class Keyframe:
    """One decoded keyframe's measurements and its block means (for change detection)."""

    luma: float
    sharpness: float
    blocks: npt.NDArray[np.float16]


def luma_plane(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    """The frame's luma as a 2-D array, without a colour conversion where the format has one."""
    if frame.format.name in _Y_PLANE_FORMATS:
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
        return rows[:, : plane.width]
    return np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)


def sharpness(gray: Gray) -> float:
    """Variance of the 4-neighbour Laplacian: high for a detailed picture, near 0 for a blur."""
    lap = 4 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:]
    return float(lap.var())


def measure(luma: npt.NDArray[np.uint8]) -> Keyframe:
    """Mean luma, sharpness (every 2nd pixel: faults are large-scale) and block means."""
    height, width = luma.shape
    h, w = height - height % BLOCK, width - width % BLOCK
    blocks = luma[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).mean(axis=(1, 3))
    half = luma[::2, ::2].astype(np.float32)
    return Keyframe(
        luma=float(blocks.mean()) if blocks.size else float(luma.mean()),
        sharpness=sharpness(half),
        blocks=blocks.astype(np.float16),
    )


def change(a: Keyframe, b: Keyframe) -> float | None:
    """Largest local change between two keyframes (luma levels); None if sizes differ."""
    if a.blocks.shape != b.blocks.shape or not a.blocks.size:
        return None
    diff = np.abs(a.blocks.astype(np.float32) - b.blocks.astype(np.float32))
    return float(np.percentile(diff, CHANGE_PERCENTILE))


def wants_more(keyframes: list[Keyframe], previous: Keyframe | None, frozen_motion: float) -> bool:
    """Whether a probe should decode another keyframe: two are needed to call a picture frozen,
    one is enough when it differs from the previous probe's (the common, healthy case)."""
    if len(keyframes) >= 2:
        return False
    if previous is None or not keyframes:
        return True
    moved = change(previous, keyframes[0])
    return moved is None or moved < frozen_motion


@dataclass
class CameraNormal:
    """What one camera's picture usually looks like: learned from its healthy probes."""

    window: int = 12
    lumas: deque[float] = field(default_factory=deque)
    sharps: deque[float] = field(default_factory=deque)
    last_keyframe: Keyframe | None = None
    last_keyframe_at: float = 0.0  # monotonic time

    def reference(self, needed: int) -> tuple[float, float] | None:
        """(luma, sharpness) medians once ``needed`` healthy probes were seen."""
        if len(self.lumas) < max(1, needed):
            return None
        return statistics.median(self.lumas), statistics.median(self.sharps)

    def learn(self, luma: float, sharp: float) -> None:
        """Add one healthy probe's picture."""
        self.lumas.append(luma)
        self.sharps.append(sharp)
        while len(self.lumas) > self.window:
            self.lumas.popleft()
            self.sharps.popleft()


@dataclass(frozen=True)
class Verdict:
    """Picture faults, most severe first, and the measured values behind them."""

    faults: list[StreamFault]
    detail: str
    luma: float | None = None
    sharpness: float | None = None
    motion: float | None = None
    frozen_ratio: float | None = None


def judge(
    keyframes: list[Keyframe],
    *,
    thresholds: StreamThresholds,
    normal: CameraNormal | None,
    previous: Keyframe | None,
) -> Verdict:
    """Dark, frozen and blurred verdicts from a probe's keyframes and the camera's normal.

    ``previous`` is the last keyframe of the camera's previous probe, compared with this probe's
    first: a picture that changed since then is not frozen, and the probe needs to decode only
    one keyframe to know it (``wants_more``).
    """
    t = thresholds
    if not keyframes:
        return Verdict([StreamFault.NO_VIDEO], "no keyframe decoded")
    luma = statistics.median(k.luma for k in keyframes)
    sharp = statistics.median(k.sharpness for k in keyframes)
    pairs = list(itertools.pairwise(keyframes))
    if previous is not None:
        pairs.insert(0, (previous, keyframes[0]))
    changes = [c for a, b in pairs if (c := change(a, b)) is not None]
    reference = normal.reference(t.baseline_probes) if normal is not None else None
    faults, details = [], []
    if luma < t.dark_luma:
        faults.append(StreamFault.DARK)
        details.append(f"luma {luma:.1f} < {t.dark_luma:g}")
    elif reference is not None and luma < reference[0] * t.dark_ratio:
        faults.append(StreamFault.DARK)
        details.append(
            f"luma {luma:.1f}, {luma / reference[0]:.0%} of this camera's {reference[0]:.1f}"
        )
    still = sum(1 for c in changes if c < t.frozen_motion) / len(changes) if changes else None
    if still is not None and still >= t.frozen_ratio:
        faults.append(StreamFault.FROZEN)
        largest, alike = max(changes), len(changes) + 1
        details.append(
            f"{alike} keyframes alike (largest change {largest:.1f} < {t.frozen_motion:g})"
        )
    if sharp < t.blur_sharpness:
        faults.append(StreamFault.BLURRED)
        details.append(f"sharpness {sharp:.1f} < {t.blur_sharpness:g}")
    elif reference is not None and sharp < reference[1] * t.blur_ratio:
        faults.append(StreamFault.BLURRED)
        details.append(
            f"sharpness {sharp:.1f}, {sharp / reference[1]:.0%} of this camera's {reference[1]:.1f}"
        )
    return Verdict(
        faults,
        "; ".join(details),
        luma=luma,
        sharpness=sharp,
        motion=max(changes) if changes else None,
        frozen_ratio=still,
    )
