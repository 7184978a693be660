"""A hostile device zoo: RTSP and HTTP servers that misbehave the way field devices do.

Each ``Behaviour`` is a real TCP server on loopback that answers a camera probe wrongly: malformed
or huge headers, binary garbage, a byte per second, bodies that never end, TLS on a plain port,
a wrong CSeq, redirects, a 500 MB snapshot, a picture that is not a JPEG. Tests point one agent at
all of them and check that it never stops and that each device gets its own reading and cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

from pantau.core.contract import Cause, ProbeStage

DRIP_INTERVAL_S = 1.0  # slowloris: one byte per second
_CSEQ = re.compile(rb"CSeq:\s*(\d+)", re.IGNORECASE)


class Behaviour(enum.StrEnum):
    """How a zoo device misbehaves."""

    BAD_CONTENT_LENGTH = "bad_content_length"  # RTSP 200 with ``Content-Length: x``
    NEGATIVE_CONTENT_LENGTH = "negative_content_length"
    HUGE_CONTENT_LENGTH = "huge_content_length"  # claims a 10 GB SDP
    GARBAGE = "garbage"  # random binary bytes, then close
    ENDLESS_GARBAGE = "endless_garbage"  # binary bytes forever, never a header end
    HUGE_HEADER = "huge_header"  # one 1 MB header line
    NON_ASCII_STATUS = "non_ascii_status"  # ``RTSP/1.0 ²00 OK``: str.isdigit() says yes
    SLOWLORIS = "slowloris"  # a valid answer at one byte per second
    SILENT = "silent"  # accepts and never answers
    WRONG_CSEQ = "wrong_cseq"
    REDIRECT = "redirect"  # 302 to another camera
    TLS = "tls"  # a TLS server where plain RTSP is expected
    CLOSE_IN_BODY = "close_in_body"  # promises an SDP, closes half way
    SNAPSHOT_ENDLESS = "snapshot_endless"  # chunked JPEG body that never ends
    SNAPSHOT_HUGE = "snapshot_huge"  # Content-Length of 500 MB, streamed as fast as it goes
    SNAPSHOT_DRIP = "snapshot_drip"  # JPEG body at one byte per second
    SNAPSHOT_NOT_JPEG = "snapshot_not_jpeg"  # an HTML error page with status 200
    SNAPSHOT_GARBAGE = "snapshot_garbage"  # not HTTP at all
    SNAPSHOT_HUGE_HEADER = "snapshot_huge_header"
    SNAPSHOT_REDIRECT = "snapshot_redirect"


SNAPSHOT_BEHAVIOURS = frozenset(b for b in Behaviour if b.value.startswith("snapshot_"))

# What a correct probe must report for each behaviour: (cause, stage).
EXPECTED: dict[Behaviour, tuple[Cause, ProbeStage]] = {
    **{
        b: (Cause.BAD_RESPONSE, ProbeStage.RTSP)
        for b in Behaviour
        if b not in SNAPSHOT_BEHAVIOURS and b not in {Behaviour.SLOWLORIS, Behaviour.SILENT}
    },
    Behaviour.SLOWLORIS: (Cause.TIMEOUT, ProbeStage.RTSP),
    Behaviour.SILENT: (Cause.TIMEOUT, ProbeStage.RTSP),
    **dict.fromkeys(SNAPSHOT_BEHAVIOURS, (Cause.BAD_RESPONSE, ProbeStage.SNAPSHOT)),
    Behaviour.SNAPSHOT_DRIP: (Cause.TIMEOUT, ProbeStage.SNAPSHOT),
}


@dataclass
class ZooDevice:
    """One misbehaving device; ``url`` is what a camera config points at."""

    behaviour: Behaviour
    port: int = 0
    server: asyncio.Server | None = None

    @property
    def is_snapshot(self) -> bool:
        """True if the device misbehaves as an HTTP snapshot server."""
        return self.behaviour in SNAPSHOT_BEHAVIOURS

    @property
    def url(self) -> str:
        """``rtsp://`` or ``http://`` URL of the device."""
        if self.is_snapshot:
            return f"http://127.0.0.1:{self.port}/snapshot.jpg"
        return f"rtsp://127.0.0.1:{self.port}/stream"


class DeviceZoo:
    """Every behaviour (or the ones given) served at once on loopback."""

    def __init__(self, behaviours: list[Behaviour] | None = None, *, tls_dir: Path) -> None:
        self.devices = [ZooDevice(b) for b in (behaviours or list(Behaviour))]
        self._tls_dir = tls_dir
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Listen on a free port per device."""
        for device in self.devices:
            tls = self._tls_context() if device.behaviour is Behaviour.TLS else None

            async def handle(
                reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter,
                device: ZooDevice = device,
            ) -> None:
                serving = asyncio.ensure_future(_serve(device.behaviour, reader, writer))
                stopping = asyncio.ensure_future(self._stopping.wait())
                await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                for task in (serving, stopping):
                    task.cancel()
                # The probe gave up on us or the zoo closes: either is the point.
                await asyncio.gather(serving, stopping, return_exceptions=True)
                writer.close()

            device.server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
            device.port = device.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every server and every connection still being dripped to."""
        for device in self.devices:
            if device.server is not None:
                device.server.close()
        self._stopping.set()
        for device in self.devices:
            if device.server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(device.server.wait_closed(), 2)

    def _tls_context(self) -> ssl.SSLContext:
        from pantau.ops.pki import init_ca, issue_broker  # noqa: PLC0415 - cryptography only here

        init_ca(self._tls_dir, force=True)
        issued = issue_broker(self._tls_dir, ["127.0.0.1"])
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(issued.cert, issued.key)
        return context


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def _cseq(head: bytes) -> bytes:
    found = _CSEQ.search(head)
    return found.group(1) if found else b"1"


async def _drip(writer: asyncio.StreamWriter, data: bytes) -> None:
    for byte in data:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(DRIP_INTERVAL_S)


async def _serve(  # noqa: PLR0912, PLR0915 - one branch per behaviour reads best as a flat list
    behaviour: Behaviour, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    b = Behaviour
    if behaviour in (b.GARBAGE, b.SNAPSHOT_GARBAGE):
        writer.write(os.urandom(4096).replace(b"\r\n\r\n", b"xxxx"))
        await writer.drain()
        return
    if behaviour is b.ENDLESS_GARBAGE:
        while True:
            writer.write(os.urandom(65536).replace(b"\r\n\r\n", b"xxxx"))
            await writer.drain()
    head = await _read_head(reader)
    cseq = _cseq(head)
    rtsp_ok = b"RTSP/1.0 200 OK\r\nCSeq: " + cseq + b"\r\n"
    http_ok = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n"
    if behaviour is b.BAD_CONTENT_LENGTH:
        writer.write(rtsp_ok + b"Content-Length: x\r\n\r\n")
    elif behaviour is b.NEGATIVE_CONTENT_LENGTH:
        writer.write(rtsp_ok + b"Content-Length: -5\r\n\r\n")
    elif behaviour is b.HUGE_CONTENT_LENGTH:
        writer.write(rtsp_ok + b"Content-Length: 10000000000\r\n\r\nv=0\r\n")
    elif behaviour in (b.HUGE_HEADER, b.SNAPSHOT_HUGE_HEADER):
        ok = http_ok if behaviour is b.SNAPSHOT_HUGE_HEADER else rtsp_ok
        writer.write(ok + b"X-Pad: " + b"a" * (1 << 20) + b"\r\n\r\n")
    elif behaviour is b.NON_ASCII_STATUS:
        writer.write("RTSP/1.0 ²00 OK\r\nCSeq: ".encode() + cseq + b"\r\n\r\n")
    elif behaviour in (b.SLOWLORIS, b.SNAPSHOT_DRIP):
        if behaviour is b.SLOWLORIS:
            await _drip(writer, rtsp_ok + b"Public: OPTIONS, DESCRIBE\r\n\r\n")
        else:
            writer.write(http_ok + b"Content-Length: 100000\r\n\r\n")
            await _drip(writer, b"\xff\xd8\xff" + b"\0" * 99_997)
    elif behaviour is b.SILENT:
        await asyncio.Event().wait()
    elif behaviour is b.WRONG_CSEQ:
        writer.write(b"RTSP/1.0 200 OK\r\nCSeq: " + str(int(cseq) + 98).encode() + b"\r\n\r\n")
    elif behaviour is b.REDIRECT:
        writer.write(
            b"RTSP/1.0 302 Moved\r\nCSeq: " + cseq + b"\r\n"
            b"Location: rtsp://admin:pw@192.0.2.1/elsewhere\r\n\r\n"
        )
    elif behaviour is b.TLS:  # the TLS handshake already failed on our plain request
        return
    elif behaviour is b.CLOSE_IN_BODY:
        writer.write(rtsp_ok + b"Content-Length: 500\r\n\r\nv=0\r\n")
    elif behaviour is b.SNAPSHOT_ENDLESS:
        writer.write(http_ok.replace(b"Connection", b"Transfer-Encoding: chunked\r\nConnection"))
        writer.write(b"\r\n")
        chunk = b"\xff\xd8\xff" + b"\0" * 65533
        for _ in itertools.count():
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
    elif behaviour is b.SNAPSHOT_HUGE:
        writer.write(http_ok + f"Content-Length: {500 * 2**20}\r\n\r\n".encode())
        block = b"\xff\xd8\xff" + b"\0" * (2**20 - 3)
        for _ in range(500):
            writer.write(block)
            await writer.drain()
    elif behaviour is b.SNAPSHOT_NOT_JPEG:
        page = b"<html><body>503 Service Unavailable</body></html>"
        writer.write(http_ok + f"Content-Length: {len(page)}\r\n\r\n".encode() + page)
    elif behaviour is b.SNAPSHOT_REDIRECT:
        writer.write(
            b"HTTP/1.1 302 Found\r\nLocation: http://192.0.2.1/login\r\nContent-Length: 0\r\n\r\n"
        )
    await writer.drain()
    await asyncio.sleep(0.5)  # let the probe read before the close
