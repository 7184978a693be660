"""Real H.264 video for the fake cameras: pictures, encoding (libx264 via PyAV) and RTP over
RTSP-interleaved TCP (RFC 2326 §10.12, RFC 6184), so any RTSP client decodes it.

Pictures:
    moving   a textured test pattern with a moving bar (healthy)
    frozen   the first frame of ``moving``, forever
    black    a black picture
    blurred  ``moving`` through a heavy blur (out of focus, or a covered lens)
    stopped  PLAY succeeds, one second of video, then nothing
"""

from __future__ import annotations

import asyncio
import enum
import re
import struct
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt

WIDTH, HEIGHT, FPS = 320, 176, 10
RTP_CLOCK = 90_000
MAX_RTP_PAYLOAD = 1400
_START_CODE = re.compile(b"\x00\x00\x01")
Image = npt.NDArray[np.uint8]


class Picture(enum.StrEnum):
    """What a fake camera's stream shows."""

    MOVING = "moving"
    FROZEN = "frozen"
    BLACK = "black"
    BLURRED = "blurred"
    STOPPED = "stopped"


def _pattern(index: int, width: int = WIDTH, height: int = HEIGHT) -> Image:
    y, x = np.mgrid[0:height, 0:width]
    checker = (((x // 8) + (y // 8)) % 2) * 120 + 60
    gradient = (x * 100 // width).astype(np.int64)
    gray = checker + gradient
    left = (index * 12) % width
    gray[:, left : left + 24] = 250
    gray[: height // 10, : width // 6] = 30 + (index * 7) % 200  # a ticking on-screen clock
    image: Image = np.clip(gray, 0, 255).astype(np.uint8)
    return image


def _blur(gray: Image, radius: int = 12, passes: int = 3) -> Image:
    out = gray.astype(np.float64)
    for _ in range(passes):
        for axis in (0, 1):
            padded = np.pad(
                out, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], "edge"
            )
            sums = np.cumsum(padded, axis=axis)
            width = 2 * radius
            if axis == 0:
                out = (
                    sums[width:, :]
                    - np.vstack([np.zeros((1, out.shape[1])), sums[: -width - 1, :]])
                ) / (width + 1)
            else:
                out = (
                    sums[:, width:]
                    - np.hstack([np.zeros((out.shape[0], 1)), sums[:, : -width - 1]])
                ) / (width + 1)
    return np.clip(out, 0, 255).astype(np.uint8)  # fmt: skip


def picture_frame(picture: Picture, index: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Image:
    """The gray picture for frame ``index`` at ``size`` (width, height)."""
    width, height = size
    if picture is Picture.BLACK:
        return np.zeros((height, width), np.uint8)
    if picture is Picture.FROZEN:
        return _pattern(0, width, height)
    if picture is Picture.BLURRED:
        return _blur(_pattern(index, width, height))
    return _pattern(index, width, height)


def _nal_units(data: bytes) -> Iterator[bytes]:
    starts = [m.end() for m in _START_CODE.finditer(data)]
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        nal = data[start:end].rstrip(b"\x00") if i + 1 < len(starts) else data[start:end]
        if nal:
            yield nal


def rtp_packets(nal_units: list[bytes], *, seq: int, timestamp: int, ssrc: int) -> list[bytes]:
    """One access unit as RTP packets (single NAL or FU-A); the marker bit ends the unit."""
    payloads: list[bytes] = []
    for nal in nal_units:
        if len(nal) <= MAX_RTP_PAYLOAD:
            payloads.append(nal)
            continue
        indicator = (nal[0] & 0xE0) | 28
        kind = nal[0] & 0x1F
        body = nal[1:]
        chunks = [body[i : i + MAX_RTP_PAYLOAD] for i in range(0, len(body), MAX_RTP_PAYLOAD)]
        for i, chunk in enumerate(chunks):
            header = kind | (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0)
            payloads.append(bytes([indicator, header]) + chunk)
    packets: list[bytes] = []
    for i, payload in enumerate(payloads):
        marker = 0x80 if i == len(payloads) - 1 else 0
        rtp_header = struct.pack(
            "!BBHII", 0x80, marker | 96, (seq + i) & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
        )
        packets.append(rtp_header + payload)
    return packets


class Encoder:
    """libx264, tuned for low latency, SPS/PPS repeated before every key frame."""

    def __init__(self, size: tuple[int, int] = (WIDTH, HEIGHT)) -> None:
        self._context = av.CodecContext.create("libx264", "w")
        self._context.width, self._context.height = size
        self._context.pix_fmt = "yuv420p"
        self._context.time_base = Fraction(1, FPS)
        self._context.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": f"keyint={FPS}:repeat-headers=1:bframes=0",
        }

    def encode(self, gray: Image, index: int) -> list[bytes]:
        """NAL units of one frame."""
        frame = av.VideoFrame.from_ndarray(np.stack([gray] * 3, axis=-1), format="rgb24")
        frame.pts = index
        units: list[bytes] = []
        for packet in self._context.encode(frame):
            units.extend(_nal_units(bytes(packet)))
        return units


async def stream(
    writer: asyncio.StreamWriter,
    picture: Picture,
    *,
    size: tuple[int, int] = (WIDTH, HEIGHT),
    channel: int = 0,
) -> None:
    """Send video on an RTSP connection (interleaved) until it closes or is cancelled."""
    encoder = Encoder(size)
    ssrc, seq = 0x50A7A0, 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    live = int(start * FPS)  # a camera's picture goes on between sessions; it does not restart
    index = 0
    while picture is not Picture.STOPPED or index < FPS:
        frame = picture_frame(picture, live + index, size)
        units = await asyncio.to_thread(encoder.encode, frame, index)
        packets = rtp_packets(units, seq=seq, timestamp=index * RTP_CLOCK // FPS, ssrc=ssrc)
        seq += len(packets)
        for packet in packets:
            writer.write(b"$" + bytes([channel]) + struct.pack("!H", len(packet)) + packet)
        await writer.drain()
        index += 1
        await asyncio.sleep(max(0.0, start + index / FPS - loop.time()))
    await asyncio.Event().wait()  # "stopped": the session stays open, silent
