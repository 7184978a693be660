"""RTSP liveness probe: TCP connect, OPTIONS, DESCRIBE (with Digest/Basic auth if configured)."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from edge_agent.probes.auth import authorization, choose_challenge
from edge_agent.probes.results import StageFailedError, StageResult, connect_error_cause
from pantau.core.contract import Cause, ProbeStage

MAX_HEADER_BYTES = 16_384  # a camera's answer head is a few hundred bytes; more is hostile
MAX_BODY_BYTES = 65_536  # an SDP is a few kB; a larger body is refused, not buffered
USER_AGENT = "pantau-probe/1"
_USERINFO = re.compile(r"//[^/@]*@")
_STATUS_LINE = re.compile(rb"^(RTSP|HTTP)/\d\.\d ([0-9]{3})(?: |$)")


@dataclass(frozen=True, slots=True)
class RtspResponse:
    """A parsed RTSP response."""

    status: int
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """First value of a header (case-insensitive)."""
        values = self.headers.get(name.lower())
        return values[0] if values else None


async def read_response(reader: asyncio.StreamReader, expected_proto: bytes) -> RtspResponse:
    """Read one ``PROTO/1.0 200 OK`` style response with headers and body.

    Whatever the peer sends, this returns a response or raises ``StageFailedError``: the head is
    capped by the reader's limit, the body by ``MAX_BODY_BYTES``.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise StageFailedError(Cause.BAD_RESPONSE, "connection closed before a response") from exc
    except asyncio.LimitOverrunError as exc:
        raise StageFailedError(
            Cause.BAD_RESPONSE, f"response head over {MAX_HEADER_BYTES} bytes"
        ) from exc
    lines = head.decode("latin-1").split("\r\n")
    status_line = _STATUS_LINE.match(head)
    if status_line is None or not status_line.group(1).startswith(expected_proto.rstrip(b"/")):
        raise StageFailedError(Cause.BAD_RESPONSE, f"not an RTSP response: {lines[0][:80]!r}")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers.setdefault(key.strip().lower(), []).append(value.strip())
    raw_length = (headers.get("content-length") or ["0"])[0] or "0"
    if not raw_length.isascii() or not raw_length.isdigit():
        raise StageFailedError(Cause.BAD_RESPONSE, f"bad Content-Length {raw_length[:20]!r}")
    length = int(raw_length)
    if length > MAX_BODY_BYTES:
        raise StageFailedError(
            Cause.BAD_RESPONSE, f"response body of {length} bytes (over {MAX_BODY_BYTES})"
        )
    try:
        body = await reader.readexactly(length) if length else b""
    except asyncio.IncompleteReadError as exc:
        raise StageFailedError(Cause.BAD_RESPONSE, "connection closed inside the body") from exc
    return RtspResponse(int(status_line.group(2)), headers, body)


def _strip_credentials(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


class _Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.cseq = reader, writer, 0

    async def request(self, method: str, url: str, extra: dict[str, str]) -> RtspResponse:
        self.cseq += 1
        headers = {"CSeq": str(self.cseq), "User-Agent": USER_AGENT, **extra}
        text = f"{method} {url} RTSP/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write((text + "\r\n").encode())
        await self.writer.drain()
        response = await read_response(self.reader, b"RTSP/")
        cseq = response.header("cseq")
        if cseq is not None and cseq != str(self.cseq):
            raise StageFailedError(
                Cause.BAD_RESPONSE,
                f"{method} answered with CSeq {cseq[:20]!r}, expected {self.cseq}",
                response.status,
            )
        return response


async def probe_rtsp(
    url: str, *, username: str | None, password: str | None, timeout_s: float
) -> tuple[StageResult, StageResult]:
    """Probe an RTSP server; return the TCP and RTSP stage results or raise ``StageFailedError``.

    A 401 answer proves the server is alive: without credentials it counts as up; with
    credentials that the camera refuses, the probe fails with cause ``auth``.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 554
    username = username or (parts.username or None)
    password = password or (parts.password or None)
    clean_url = _strip_credentials(url)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEADER_BYTES)
    except (OSError, TimeoutError) as exc:
        raise StageFailedError(
            connect_error_cause(exc), f"tcp {host}:{port}: {exc!r}", stage=ProbeStage.TCP
        ) from exc
    tcp = StageResult(ms=(time.perf_counter() - started) * 1000)
    rtsp_started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            status = await _options_describe(
                _Session(reader, writer), clean_url, username, password
            )
    except TimeoutError as exc:
        raise StageFailedError(Cause.TIMEOUT, "no RTSP answer in time") from exc
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        raise StageFailedError(Cause.UNREACHABLE, f"connection lost: {exc!r}") from exc
    finally:
        writer.close()
    return tcp, StageResult(ms=(time.perf_counter() - rtsp_started) * 1000, status=status)


async def _options_describe(
    session: _Session, url: str, username: str | None, password: str | None
) -> int:
    options = await session.request("OPTIONS", url, {})
    if options.status not in (200, 401):
        raise StageFailedError(Cause.BAD_RESPONSE, _unexpected("OPTIONS", options), options.status)
    accept = {"Accept": "application/sdp"}
    describe = await session.request("DESCRIBE", url, accept)
    if describe.status == 401:
        challenge = choose_challenge(describe.headers.get("www-authenticate", []))
        if challenge is None:
            raise StageFailedError(Cause.BAD_RESPONSE, "401 without WWW-Authenticate", 401)
        if username is None:
            return 401  # alive, and asking for credentials we were not given
        header = authorization(
            challenge, method="DESCRIBE", uri=url, username=username, password=password or ""
        )
        describe = await session.request("DESCRIBE", url, {**accept, "Authorization": header})
        if describe.status in (401, 403):
            raise StageFailedError(Cause.AUTH, "camera rejected the credentials", describe.status)
    if describe.status != 200:
        raise StageFailedError(
            Cause.BAD_RESPONSE, _unexpected("DESCRIBE", describe), describe.status
        )
    if b"v=0" not in describe.body:
        raise StageFailedError(Cause.BAD_RESPONSE, "DESCRIBE answered without an SDP body", 200)
    return describe.status


def _unexpected(method: str, response: RtspResponse) -> str:
    """``OPTIONS -> 302 (to rtsp://...)``: redirects name where they point, and are not followed."""
    text = f"{method} -> {response.status}"
    location = response.header("location")
    if 300 <= response.status < 400 and location:
        text += f" (redirect to {_USERINFO.sub('//', location)[:120]!r}, not followed)"
    return text
