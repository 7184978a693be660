"""Natural-looking camera video encoded as cameras encode it, for real RTSP servers.

A scene is a 1/f ("pink") noise landscape, the statistics of natural images, with textured
objects crossing it and a little sensor noise, encoded with libx264 or libx265 (through PyAV)
with no B-frames, a 2 s keyframe interval and a bitrate cap, so a still picture is refined by
the encoder after every keyframe as a real camera's is.

Pictures:
    moving     the scene with objects crossing it (healthy)
    frozen     one frame of ``moving``, repeated (a hung camera's encoder keeps encoding it)
    black      a black picture (a dead sensor)
    dark       ``moving`` at a tenth of its brightness (night without IR, a covered lens)
    defocused  ``moving`` out of focus (a blur of a few pixels: sharpness ~20x lower)
    night      ``moving`` at night: dimmer, flatter, noisier, with headlights ahead of the traffic
    turned     ``moving`` with the camera panned by a third of its view (re-aimed, knocked)
    covered    a hand or cloth over the lens: the light through it, no structure
"""

from __future__ import annotations

import enum
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
FPS = 25
KEYFRAME_INTERVAL_S = 2


class Scene(enum.StrEnum):
    """What a generated video shows."""

    MOVING = "moving"
    FROZEN = "frozen"
    BLACK = "black"
    DARK = "dark"
    DEFOCUSED = "defocused"
    NIGHT = "night"
    TURNED = "turned"
    COVERED = "covered"


def landscape(width: int, height: int, seed: int = 7) -> npt.NDArray[np.float32]:
    """A 1/f noise picture (0-255): large soft shapes with fine detail, like a real view."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    radius[0, 0] = 1.0
    spectrum = rng.normal(size=radius.shape) + 1j * rng.normal(size=radius.shape)
    spectrum /= radius**1.25
    spectrum[0, 0] = 0.0
    picture = np.fft.irfft2(spectrum, s=(height, width))
    picture = (picture - picture.mean()) / (picture.std() + 1e-9)
    shaped: npt.NDArray[np.float32] = np.clip(120 + 45 * picture, 0, 255).astype(np.float32)
    return shaped


def box_blur(
    image: npt.NDArray[np.float32], radius: int, passes: int = 3
) -> npt.NDArray[np.float32]:
    """``image`` through ``passes`` box blurs of ``radius`` (close to a Gaussian defocus)."""
    out = image.astype(np.float64)
    span = 2 * radius + 1
    for _ in range(passes):
        for axis in (0, 1):
            pad = [(radius + 1, radius) if a == axis else (0, 0) for a in (0, 1)]
            sums = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis)
            ahead = np.take(sums, range(span, sums.shape[axis]), axis=axis)
            behind = np.take(sums, range(sums.shape[axis] - span), axis=axis)
            out = (ahead - behind) / span
    blurred: npt.NDArray[np.float32] = out.astype(np.float32)
    return blurred


class SceneFrames:
    """Frames of one scene at one size; cheap enough for 1080p at encoding speed."""

    def __init__(self, scene: Scene, width: int, height: int) -> None:
        self.scene = scene
        self.width, self.height = width, height
        self._rng = np.random.default_rng(11)
        self._background = landscape(width, height)
        if scene is Scene.TURNED:  # the landscape is periodic: a roll is a pan without a seam
            self._background = np.roll(self._background, width // 3, axis=1)
        patch = min(width, height) // 5
        texture = landscape(patch * 2, patch * 2, seed=3)[:patch, :patch]
        self._objects = [(texture * 0.6 + 90, row) for row in (0.35, 0.6, 0.78)]
        self._still: Image | None = None

    def frame(self, index: int) -> Image:
        """The gray picture for frame ``index``."""
        if self.scene is Scene.BLACK:
            return np.zeros((self.height, self.width), np.uint8)
        if self.scene is Scene.FROZEN:
            if self._still is None:
                self._still = self._moving(0, noise=True)
            return self._still
        picture = self._moving(index, noise=True)
        if self.scene is Scene.DARK:
            return (picture // 10).astype(np.uint8)
        if self.scene is Scene.COVERED:
            cover = 0.5 * box_blur(picture.astype(np.float32), max(4, self.width // 16)) + 10
            cover += self._rng.normal(0.0, 1.5, cover.shape).astype(np.float32)
            covered: Image = np.clip(cover, 0, 255).astype(np.uint8)
            return covered
        return picture

    def _moving(self, index: int, *, noise: bool) -> Image:
        canvas = self._background.copy()
        for number, (texture, row) in enumerate(self._objects):
            size = texture.shape[0]
            speed = (number + 1) * self.width / (FPS * 8)  # crosses the view in 8 s or less
            left = int(index * speed) % (self.width + size) - size
            top = int(row * self.height) - size // 2
            lo, hi = max(0, left), min(self.width, left + size)
            if hi > lo:
                canvas[top : top + size, lo:hi] = texture[:, lo - left : hi - left]
        if self.scene is Scene.DEFOCUSED:
            canvas = box_blur(canvas, max(1, self.width // 640))
        if self.scene is Scene.NIGHT:
            canvas = self._night(canvas, index)
        if noise:
            sigma = 3.0 if self.scene is Scene.NIGHT else 1.0  # a sensor's gain at night
            canvas += self._rng.normal(0.0, sigma, canvas.shape).astype(np.float32)
        return np.clip(canvas, 0, 255).astype(np.uint8)

    def _night(self, canvas: npt.NDArray[np.float32], index: int) -> npt.NDArray[np.float32]:
        """Night: half the light through a camera's night curve (darks crushed), and a pair of
        headlights glaring ahead of each crossing object."""
        lit: npt.NDArray[np.float32] = (255 * (canvas / 255) ** 1.4 * 0.55 + 15).astype(np.float32)
        for number, (texture, row) in enumerate(self._objects):
            size = texture.shape[0]
            speed = (number + 1) * self.width / (FPS * 8)
            front = int(index * speed) % (self.width + size)
            reach = size // 2  # the glare beyond this is below a luma level
            left, right = max(0, front - reach), min(self.width, front + reach)
            for lamp in (0.3, 0.7):
                cy, radius = int(int(row * self.height) - size // 2 + lamp * size), size / 6
                top, bottom = max(0, cy - reach), min(self.height, cy + reach)
                if right <= left or bottom <= top:
                    continue
                ys, xs = np.ogrid[top - cy : bottom - cy, left - front : right - front]
                glare = np.exp(-(ys * ys + xs * xs) / (2 * radius**2)).astype(np.float32)
                lit[top:bottom, left:right] += 170 * glare
        return lit


def encode(
    scene: Scene,
    path: Path,
    *,
    codec: str = "libx264",
    size: tuple[int, int] = (640, 360),
    seconds: float = 20.0,
    bitrate_kbps: int | None = None,
    start_s: float = 0.0,
) -> Path:
    """Write ``seconds`` of ``scene`` from ``start_s`` on to ``path`` (Matroska) as a camera
    encodes it (a later start shows the traffic elsewhere)."""
    width, height = size
    rate = bitrate_kbps or max(300, width * height * 2 // 1000)  # ~4 Mb/s at 1080p
    keyint = FPS * KEYFRAME_INTERVAL_S
    frames = SceneFrames(scene, width, height)
    tmp = path.with_suffix(".part")
    with av.open(str(tmp), "w", format="matroska") as out:
        stream = out.add_stream(codec, rate=FPS)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.bit_rate = rate * 1000
        stream.codec_context.gop_size = keyint
        stream.codec_context.max_b_frames = 0
        vbv = f"vbv-maxrate={rate}:vbv-bufsize={rate}"
        if codec == "libx265":
            stream.options = {
                "preset": "ultrafast",
                "x265-params": f"keyint={keyint}:min-keyint={keyint}:bframes=0:{vbv}:"
                "log-level=error",
            }
        else:
            stream.options = {
                "preset": "veryfast",
                "x264-params": f"keyint={keyint}:min-keyint={keyint}:bframes=0:scenecut=0:{vbv}",
            }
        chroma = np.full((height // 2, width // 2), 128, np.uint8)
        first = int(start_s * FPS)
        for index in range(int(seconds * FPS)):
            gray = frames.frame(first + index)
            yuv = np.concatenate(
                [gray, chroma.reshape(height // 4, width), chroma.reshape(height // 4, width)]
            )
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = index
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    tmp.rename(path)
    return path
