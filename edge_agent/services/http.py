"""One HTTP/1.1 exchange on an open stream, every answer treated as hostile: the status line and
headers are bounded in length and count, the body is read up to a cap (Content-Length, chunked
or until close), and anything malformed is an ``HttpError`` saying what."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

MAX_LINE_BYTES = 8192  # one status or header line
MAX_HEADERS = 100
MAX_CHUNKS = 10_000  # a body of many one-byte chunks costs a read per chunk


class HttpError(Exception):
    """The server's answer is not well-formed HTTP."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What one request got: status, headers (lower-case names; the last of repeats wins) and
    the body, at most ``cap`` bytes (``truncated`` if there was more)."""

    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool


def request_bytes(method: str, target: str, host: str) -> bytes:
    """The request: no body, no keep-alive."""
    return (
        f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: pantau-service-probe\r\n"
        "Accept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        raise HttpError("connection closed in the headers") from exc
    except asyncio.LimitOverrunError as exc:
        raise HttpError(f"a header line longer than {MAX_LINE_BYTES} bytes") from exc
    return line.rstrip(b"\r\n")


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """The status and headers."""
    status_line = await _line(reader)
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HttpError(f"not an HTTP status line: {status_line[:40]!r}")
    status = int(parts[1])
    if not 100 <= status <= 599:
        raise HttpError(f"status {status} out of range")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = await _line(reader)
        if not line:
            return status, headers
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            raise HttpError(f"malformed header line: {line[:40]!r}")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    raise HttpError(f"more than {MAX_HEADERS} headers")


async def read_body(
    reader: asyncio.StreamReader, headers: dict[str, str], cap: int
) -> tuple[bytes, bool]:
    """The body up to ``cap`` bytes and whether there was more."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return await _chunked(reader, cap)
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HttpError(f"bad Content-Length {length[:20]!r}")
        want = int(length)
        data = await _up_to(reader, min(want, cap))
        return data, want > cap
    data = await _up_to(reader, cap + 1)  # until the server closes
    return data[:cap], len(data) > cap


async def _up_to(reader: asyncio.StreamReader, n: int) -> bytes:
    parts: list[bytes] = []
    left = n
    while left > 0:
        chunk = await reader.read(min(left, 65536))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


async def _chunked(reader: asyncio.StreamReader, cap: int) -> tuple[bytes, bool]:
    parts: list[bytes] = []
    kept = 0
    for _ in range(MAX_CHUNKS):
        size_line = (await _line(reader)).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError as exc:
            raise HttpError(f"bad chunk size {size_line[:20]!r}") from exc
        if size == 0:
            return b"".join(parts), False
        if kept + size > cap:  # stop reading: the rest is not needed
            parts.append(await _up_to(reader, cap - kept))
            return b"".join(parts), True
        chunk = await _up_to(reader, size)
        if len(chunk) < size:
            raise HttpError("connection closed inside a chunk")
        parts.append(chunk)
        kept += size
        await _line(reader)  # the CRLF after the chunk
    raise HttpError(f"more than {MAX_CHUNKS} chunks")
