"""What a picture shows: measurements of decoded keyframes, a camera's learned normal, verdicts.

Verdicts are made on keyframes only: a real encoder keeps refining a still picture in the frames
after each keyframe, so frame-to-frame change says little, while two keyframes of a frozen
picture encode the same image. A probe decodes the first two keyframes of its sample, so a
picture that froze since the camera's previous probe is called frozen on the first probe that
sees it. Change is measured on 16x16-pixel block means (the encoder's
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

from edge_agent.probes import view
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
    view_change: float = 0.4  # view distance (0 same, 1 unrelated) from which the view changed
    view_relearn_probes: int = 12  # probes of one stable new view before it becomes the normal


@dataclass(frozen=True)
class Keyframe:
    """One decoded keyframe's measurements, its block means (for change detection) and its
    structure (``view.signature``, None for a picture too small to judge)."""

    luma: float
    sharpness: float
    blocks: npt.NDArray[np.float16]
    view: view.View | None = None


def luma_plane(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    """The frame's luma as a 2-D array, without a colour conversion where the format has one."""
    if frame.format.name in _Y_PLANE_FORMATS:
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
        return rows[:, : plane.width]
    return np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)


def sharpness(luma: npt.NDArray[np.uint8]) -> float:
    """Variance of the 4-neighbour Laplacian: high for a detailed picture, near 0 for a blur."""
    # Integers hold every step exactly (|4a - b - c - d - e| <= 1020 in int16, its square in
    # int32, the sums in int64) and are several times faster than float arithmetic.
    gray = luma.astype(np.int16)
    lap = gray[1:-1, 1:-1] * 4
    for neighbour in (gray[:-2, 1:-1], gray[2:, 1:-1], gray[1:-1, :-2], gray[1:-1, 2:]):
        lap -= neighbour
    if not lap.size:
        return float("nan")
    total = int(lap.sum(dtype=np.int64))
    squares = lap.astype(np.int32)
    squares *= squares
    count = lap.size
    return (int(squares.sum(dtype=np.int64)) - total * total / count) / count


def block_means(luma: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Means of the whole ``BLOCK`` x ``BLOCK`` blocks of ``luma`` (edge remainders dropped)."""
    height, width = luma.shape
    rows, cols = height // BLOCK, width // BLOCK
    # Integer sums, rows first (whole image rows added at once), are 5-8x faster than a float64
    # mean over the 4-D view and give the same values: a block sums to at most 65,280 (uint16
    # holds it) and a sum / 256 is exact in float32.
    strips = luma[: rows * BLOCK, : cols * BLOCK].reshape(rows, BLOCK, cols * BLOCK)
    sums = (
        strips.sum(axis=1, dtype=np.uint16).reshape(rows, cols, BLOCK).sum(axis=2, dtype=np.uint16)
    )
    means: npt.NDArray[np.float32] = sums.astype(np.float32) / (BLOCK * BLOCK)
    return means


def measure(luma: npt.NDArray[np.uint8]) -> Keyframe:
    """Mean luma, sharpness (every 2nd pixel: faults are large-scale) and block means."""
    blocks = block_means(luma)
    means = blocks.astype(np.float16)
    return Keyframe(
        luma=float(blocks.mean(dtype=np.float64)) if blocks.size else float(luma.mean()),
        sharpness=sharpness(luma[::2, ::2]),
        blocks=means,
        view=view.signature(means),
    )


def change(a: Keyframe, b: Keyframe) -> float | None:
    """Largest local change between two keyframes (luma levels); None if sizes differ."""
    if a.blocks.shape != b.blocks.shape or not a.blocks.size:
        return None
    diff = np.abs(a.blocks.astype(np.float32) - b.blocks.astype(np.float32))
    return float(np.percentile(diff, CHANGE_PERCENTILE))


KEYFRAMES_DECODED = 2  # per probe: two tell a frozen picture (and a passing truck) in the sample


def wants_more(keyframes: list[Keyframe]) -> bool:
    """Whether a probe should decode another keyframe: the first two of the sample are needed
    to call a picture frozen on the first probe after it froze (the previous probe's keyframe
    alone cannot: a picture that froze since differs from it)."""
    return len(keyframes) < KEYFRAMES_DECODED


@dataclass
class CameraNormal:
    """What one camera's picture usually looks like: learned from its healthy probes."""

    window: int = 12
    lumas: deque[float] = field(default_factory=deque)
    sharps: deque[float] = field(default_factory=deque)
    views: deque[view.View] = field(default_factory=deque)  # one per healthy probe
    candidate: list[view.View] = field(default_factory=list)  # a new view, probe after probe
    last_keyframe: Keyframe | None = None
    last_keyframe_at: float = 0.0  # monotonic time

    def reference(self, needed: int) -> tuple[float, float] | None:
        """(luma, sharpness) medians once ``needed`` healthy probes were seen."""
        if len(self.lumas) < max(1, needed):
            return None
        return statistics.median(self.lumas), statistics.median(self.sharps)

    def view_reference(self, needed: int) -> view.View | None:
        """The learned view once ``needed`` healthy probes gave one."""
        if len(self.views) < max(1, needed):
            return None
        return view.reference(list(self.views))

    def learn(self, luma: float, sharp: float, seen: view.View | None = None) -> None:
        """Add one healthy probe's picture (and its view); a healthy probe ends any candidate."""
        self.lumas.append(luma)
        self.sharps.append(sharp)
        self.candidate.clear()
        if seen is not None:
            if self.views and self.views[0].shape != seen.shape:  # the stream's size changed
                self.views.clear()
            self.views.append(seen)
        for kept in (self.lumas, self.sharps, self.views):
            while len(kept) > self.window:
                kept.popleft()

    def consider(self, seen: view.View, *, limit: float, needed: int) -> bool:
        """One more probe whose only fault is a changed view: once ``needed`` probes in a row
        showed the same new view, it becomes the learned view (True)."""
        ref = view.reference(self.candidate)
        moved = view.distance(seen, ref) if ref is not None else None
        if moved is None or moved >= limit:
            self.candidate.clear()
        self.candidate.append(seen)
        if len(self.candidate) < needed:
            return False
        self.views = deque(self.candidate[-self.window :])
        self.candidate.clear()
        return True

    def adopt(self, *, limit: float, needed: int) -> bool:
        """Take the latest probe's view as the learned view at once (a person said it is the
        intended one), with the candidate probes that showed the same view; False if no probe
        has seen a view yet."""
        latest = self.last_keyframe.view if self.last_keyframe is not None else None
        if latest is None:
            return False
        same = [
            v for v in self.candidate if (d := view.distance(v, latest)) is not None and d < limit
        ]
        learned = [*same, latest]
        learned += [latest] * (max(1, needed) - len(learned))  # a reference at once
        self.views = deque(learned[-max(self.window, needed) :])
        self.candidate.clear()
        return True


@dataclass(frozen=True)
class Verdict:
    """Picture faults, most severe first, and the measured values behind them."""

    faults: list[StreamFault]
    detail: str
    luma: float | None = None
    sharpness: float | None = None
    motion: float | None = None
    frozen_ratio: float | None = None
    view_score: float | None = None  # distance from the learned view (0 same, 1 unrelated)
    seen: view.View | None = None  # this probe's view, to learn


def judge(
    keyframes: list[Keyframe],
    *,
    thresholds: StreamThresholds,
    normal: CameraNormal | None,
    previous: Keyframe | None,
) -> Verdict:
    """Dark, frozen, view-changed and blurred verdicts from a probe's keyframes and the camera's
    normal, most severe first.

    ``previous`` is the last keyframe of the camera's previous probe: it decides "frozen" when
    the sample has only one keyframe (a keyframe interval longer than the sample); otherwise
    the sample's own keyframes do, so a picture that froze since the previous probe is frozen.
    """
    t = thresholds
    if not keyframes:
        return Verdict([StreamFault.NO_VIDEO], "no keyframe decoded")
    luma = statistics.median(k.luma for k in keyframes)
    sharp = statistics.median(k.sharpness for k in keyframes)
    inside = [c for a, b in itertools.pairwise(keyframes) if (c := change(a, b)) is not None]
    since = change(previous, keyframes[0]) if previous is not None else None
    changes = inside or ([since] if since is not None else [])
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
        alike = len(changes) + 1
        details.append(
            f"{alike} keyframes alike (largest change {max(changes):.1f} < {t.frozen_motion:g})"
        )
    score = _view_score(keyframes, normal, t)
    if score is not None and score >= t.view_change:
        faults.append(StreamFault.VIEW_CHANGED)
        details.append(f"view changed: {score:.2f} from this camera's view (>= {t.view_change:g})")
    if sharp < t.blur_sharpness:
        faults.append(StreamFault.BLURRED)
        details.append(f"sharpness {sharp:.1f} < {t.blur_sharpness:g}")
    elif reference is not None and sharp < reference[1] * t.blur_ratio:
        faults.append(StreamFault.BLURRED)
        details.append(
            f"sharpness {sharp:.1f}, {sharp / reference[1]:.0%} of this camera's {reference[1]:.1f}"
        )
    moved = [*changes, since] if inside and since is not None else changes
    return Verdict(
        faults,
        "; ".join(details),
        luma=luma,
        sharpness=sharp,
        motion=max(moved) if moved else None,
        frozen_ratio=still,
        view_score=score,
        seen=keyframes[0].view,
    )


def _view_score(
    keyframes: list[Keyframe], normal: CameraNormal | None, t: StreamThresholds
) -> float | None:
    """The smallest distance of the probe's keyframes from the learned view: a view changed
    shows in every keyframe, a truck filling the picture in one."""
    ref = normal.view_reference(t.baseline_probes) if normal is not None else None
    if ref is None:
        return None
    scores = [view.distance(k.view, ref) for k in keyframes if k.view is not None]
    known = [d for d in scores if d is not None]
    return min(known) if known else None
