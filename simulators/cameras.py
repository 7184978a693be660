"""Fake IP cameras: real RTSP and HTTP servers on loopback, switchable at run time.

Modes:
    up         answers OPTIONS/DESCRIBE (SDP) and serves a JPEG snapshot
    down       ports closed: connections are refused
    hung       accepts connections and never answers
    slow       answers after ``slow_delay_s``
    auth_fail  rejects every credential with 401
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import logging
import secrets

from edge_agent.probes.auth import verify_digest
from simulators.video import HEIGHT, WIDTH, Picture, stream

log = logging.getLogger(__name__)

SNAPSHOT_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABQODxIPDRQSEBIXFRQYHjIhHhwcHj0sLiQySUBMS0dARkVQWnNiUFVtVk"
    "VGZIhlbXd7gYKBTmCNl4x9lnN+gXz/2wBDARUXFx4aHjshITt8U0ZTfHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8"
    "fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHz/wAARCAAQABADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAw"
    "QFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkK"
    "FhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmq"
    "KjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEB"
    "AQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRob"
    "HBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOE"
    "hYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+P"
    "n6/9oADAMBAAIRAxEAPwCvRRRWZkf/2Q=="
)
SDP_BODY = (
    b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=pantau simulated camera\r\nt=0 0\r\n"
    b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    b"a=fmtp:96 packetization-mode=1\r\na=control:trackID=1\r\n"
)
REALM = "pantau-sim"
MAX_REQUEST_BYTES = 16_384


class CameraMode(enum.StrEnum):
    """What a fake camera does with connections."""

    UP = "up"
    DOWN = "down"
    HUNG = "hung"
    SLOW = "slow"
    AUTH_FAIL = "auth_fail"


class FakeCamera:
    """An RTSP responder and an HTTP snapshot endpoint on fixed loopback ports."""

    def __init__(
        self,
        camera_id: str,
        *,
        host: str = "127.0.0.1",
        username: str | None = "admin",
        password: str | None = "pantau",  # noqa: S107 - a simulated camera's well-known login
        slow_delay_s: float = 1.0,
        video_size: tuple[int, int] = (WIDTH, HEIGHT),
    ) -> None:
        self.camera_id = camera_id
        self.host = host
        self.username, self.password = username, password
        self.slow_delay_s = slow_delay_s
        self.mode = CameraMode.UP
        self.picture = Picture.MOVING
        self.video_size = video_size
        self.rtsp_port = 0
        self.http_port = 0
        self._nonce = secrets.token_hex(8)
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.StreamWriter] = set()
        self.requests = 0
        self.playing = 0  # video sessions streaming right now

    @property
    def rtsp_url(self) -> str:
        """The camera's stream URL."""
        return f"rtsp://{self.host}:{self.rtsp_port}/stream1"

    @property
    def snapshot_url(self) -> str:
        """The camera's snapshot URL."""
        return f"http://{self.host}:{self.http_port}/snapshot.jpg"

    async def start(self) -> None:
        """Bind both ports (picking free ones the first time) and serve."""
        rtsp = await asyncio.start_server(self._serve_rtsp, self.host, self.rtsp_port)
        http = await asyncio.start_server(self._serve_http, self.host, self.http_port)
        self.rtsp_port = rtsp.sockets[0].getsockname()[1]
        self.http_port = http.sockets[0].getsockname()[1]
        self._servers = [rtsp, http]

    async def stop(self) -> None:
        """Close the listening ports and every open connection."""
        for server in self._servers:
            server.close()
        for writer in list(self._connections):
            writer.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers = []

    async def set_mode(self, mode: CameraMode) -> None:
        """Switch behaviour; ``down`` closes the ports, leaving it reopens the same ports."""
        if mode == self.mode:
            return
        log.debug("camera %s: %s -> %s", self.camera_id, self.mode, mode)
        if mode is CameraMode.DOWN:
            self.mode = mode
            await self.stop()
            return
        if self.mode is CameraMode.DOWN:
            await self.start()
        elif mode is not CameraMode.HUNG:
            for writer in list(self._connections):  # let hung connections go
                writer.close()
        self.mode = mode

    def set_picture(self, picture: Picture) -> None:
        """What the video shows to sessions that start from now on."""
        self.picture = picture

    # --- protocol handling ----------------------------------------------------------------------

    async def _read_request(
        self, reader: asyncio.StreamReader
    ) -> tuple[str, str, dict[str, str]] | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) < 3:
            return None
        headers = {}
        for line in lines[1:]:
            key, sep, value = line.partition(":")
            if sep:
                headers[key.strip().lower()] = value.strip()
        return parts[0], parts[1], headers

    def _authorized(self, method: str, headers: dict[str, str]) -> bool:
        if self.mode is CameraMode.AUTH_FAIL:
            return False
        if self.username is None:
            return True
        header = headers.get("authorization", "")
        if header.lower().startswith("basic "):
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return secrets.compare_digest(header[6:].strip(), expected)
        return verify_digest(
            header,
            method=method,
            username=self.username,
            password=self.password or "",
            realm=REALM,
            nonce=self._nonce,
        )

    async def _pause(self) -> bool:
        """Apply hung/slow behaviour; False if the connection must not be answered."""
        if self.mode is CameraMode.HUNG:
            await asyncio.Event().wait()  # until the connection is closed or the task cancelled
        if self.mode is CameraMode.SLOW:
            await asyncio.sleep(self.slow_delay_s)
        return self.mode is not CameraMode.DOWN

    async def _serve_rtsp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        video: asyncio.Task[None] | None = None
        try:
            while True:
                request = await self._read_rtsp(reader)
                if request is None:
                    return
                self.requests += 1
                method, _, headers = request
                if not await self._pause():
                    return
                cseq = headers.get("cseq", "0")
                writer.write(self._rtsp_response(method, cseq, headers))
                await writer.drain()
                if method == "PLAY" and video is None:
                    self.playing += 1
                    video = asyncio.create_task(
                        stream(writer, self.picture, size=self.video_size),
                        name=f"video-{self.camera_id}",
                    )
                elif method == "TEARDOWN":
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            if video is not None:
                self.playing -= 1
                video.cancel()
                await asyncio.gather(video, return_exceptions=True)
            self._connections.discard(writer)
            writer.close()

    async def _read_rtsp(
        self, reader: asyncio.StreamReader
    ) -> tuple[str, str, dict[str, str]] | None:
        """The next request, skipping the client's interleaved RTCP (``$``-framed) packets."""
        while True:
            try:
                first = await reader.readexactly(1)
                if first != b"$":
                    break
                header = await reader.readexactly(3)
                await reader.readexactly(int.from_bytes(header[1:], "big"))
            except (asyncio.IncompleteReadError, ConnectionError):
                return None
        request = await self._read_request(reader)
        if request is None:
            return None
        method, target, headers = request
        return first.decode("latin-1") + method, target, headers

    def _rtsp_response(self, method: str, cseq: str, headers: dict[str, str]) -> bytes:
        head = f"CSeq: {cseq}\r\nServer: pantau-sim\r\n"
        if method == "OPTIONS":
            return (
                f"RTSP/1.0 200 OK\r\n{head}Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n"
            ).encode()
        if method in ("SETUP", "PLAY", "TEARDOWN", "GET_PARAMETER"):
            return self._session_response(method, head, headers)
        if method != "DESCRIBE":
            return f"RTSP/1.0 405 Method Not Allowed\r\n{head}\r\n".encode()
        if not self._authorized("DESCRIBE", headers):
            return (
                f"RTSP/1.0 401 Unauthorized\r\n{head}WWW-Authenticate: Digest "
                f'realm="{REALM}", nonce="{self._nonce}"\r\n\r\n'
            ).encode()
        return (
            f"RTSP/1.0 200 OK\r\n{head}Content-Type: application/sdp\r\n"
            f"Content-Base: {self.rtsp_url}/\r\nContent-Length: {len(SDP_BODY)}\r\n\r\n"
        ).encode() + SDP_BODY

    def _session_response(self, method: str, head: str, headers: dict[str, str]) -> bytes:
        session = f"Session: {self._nonce}\r\n"
        if method == "SETUP":
            transport = headers.get("transport", "")
            if "RTP/AVP/TCP" not in transport.upper():
                # Video is only served interleaved on the RTSP connection (no UDP on loopback).
                return f"RTSP/1.0 461 Unsupported Transport\r\n{head}\r\n".encode()
            return (
                f"RTSP/1.0 200 OK\r\n{head}{session}"
                "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
            ).encode()
        if method == "PLAY":
            return (
                f"RTSP/1.0 200 OK\r\n{head}{session}"
                f"RTP-Info: url={self.rtsp_url}/trackID=1;seq=0;rtptime=0\r\n\r\n"
            ).encode()
        return f"RTSP/1.0 200 OK\r\n{head}{session}\r\n".encode()

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            request = await self._read_request(reader)
            if request is None:
                return
            self.requests += 1
            method, path, headers = request
            if not await self._pause():
                return
            if method != "GET" or not path.startswith("/snapshot"):
                writer.write(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            elif not self._authorized("GET", headers):
                writer.write(
                    (
                        f'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm="{REALM}", '
                        f'nonce="{self._nonce}", qop="auth"\r\nContent-Length: 0\r\n'
                        "Connection: close\r\n\r\n"
                    ).encode()
                )
            else:
                writer.write(
                    (
                        f"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: "
                        f"{len(SNAPSHOT_JPEG)}\r\nConnection: close\r\n\r\n"
                    ).encode()
                    + SNAPSHOT_JPEG
                )
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._connections.discard(writer)
            writer.close()
