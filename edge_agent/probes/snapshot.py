"""HTTP snapshot probe: fetch the camera's JPEG and check it is one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from edge_agent.probes.auth import authorization, choose_challenge
from edge_agent.probes.results import StageFailedError, StageResult
from pantau.core.contract import Cause, ProbeStage

JPEG_MAGIC = b"\xff\xd8\xff"
MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024


class CameraAuth(httpx.Auth):
    """Answer a 401 with Digest or Basic, whichever the camera asks for."""

    def __init__(self, username: str, password: str) -> None:
        self._username, self._password = username, password

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        if response.status_code != 401:
            return
        challenge = choose_challenge(response.headers.get_list("www-authenticate"))
        if challenge is None:
            return
        request.headers["Authorization"] = authorization(
            challenge,
            method=request.method,
            uri=request.url.raw_path.decode(),
            username=self._username,
            password=self._password,
        )
        yield request


def make_http_client() -> httpx.AsyncClient:
    """A client that opens a fresh connection per probe (a pooled one could hide a dead camera)."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_keepalive_connections=0, max_connections=256),
        follow_redirects=False,
        verify=False,  # noqa: S501 - cameras use self-signed certificates; we check liveness only
    )


def _fail(cause: Cause, detail: str, status: int | None = None) -> StageFailedError:
    return StageFailedError(cause, detail, status, stage=ProbeStage.SNAPSHOT)


def _is_refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "connection refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def probe_snapshot(
    client: httpx.AsyncClient,
    url: str,
    *,
    username: str | None,
    password: str | None,
    timeout_s: float,
) -> StageResult:
    """GET the snapshot; succeed on 200 with a JPEG body, else raise ``StageFailedError``.

    The whole exchange, body included, must end within ``timeout_s`` (a camera dripping an
    endless body is a timeout), and at most ``MAX_SNAPSHOT_BYTES`` are read. Credentials in the
    URL are used like configured ones: only in answer to a 401 challenge, never sent up front.
    """
    url, username, password = _credentials_out_of(url, username, password)
    auth = CameraAuth(username, password or "") if username else None
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            status, body, size = await _get_capped(client, url, auth, timeout_s)
    except TimeoutError as exc:
        raise _fail(Cause.TIMEOUT, f"snapshot took over {timeout_s:g} s") from exc
    except httpx.ConnectError as exc:
        cause = Cause.REFUSED if _is_refused(exc) else Cause.UNREACHABLE
        raise _fail(cause, f"snapshot connect: {exc!r}"[:200]) from exc
    except httpx.TimeoutException as exc:
        raise _fail(Cause.TIMEOUT, "snapshot timed out") from exc
    except httpx.HTTPError as exc:
        raise _fail(Cause.BAD_RESPONSE, f"snapshot: {exc!r}"[:200]) from exc
    ms = (time.perf_counter() - started) * 1000
    if status in (401, 403):
        raise _fail(Cause.AUTH if username else Cause.BAD_RESPONSE, f"snapshot -> {status}", status)
    if status != 200:
        raise _fail(Cause.BAD_RESPONSE, f"snapshot -> {status}", status)
    if size > MAX_SNAPSHOT_BYTES:
        raise _fail(Cause.BAD_RESPONSE, f"snapshot over {MAX_SNAPSHOT_BYTES} bytes", 200)
    if not body.startswith(JPEG_MAGIC):
        raise _fail(Cause.BAD_RESPONSE, f"snapshot is not a JPEG (starts {body[:8]!r})", 200)
    return StageResult(ms=ms, status=200, size=size)


async def _get_capped(
    client: httpx.AsyncClient, url: str, auth: httpx.Auth | None, timeout_s: float
) -> tuple[int, bytes, int]:
    """Status, the body's first bytes, and its size up to one byte past the cap."""
    async with client.stream("GET", url, auth=auth, timeout=timeout_s) as response:
        if response.status_code != 200:
            return response.status_code, b"", 0
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_SNAPSHOT_BYTES:
                break
        return 200, b"".join(chunks)[:16], size


def _credentials_out_of(
    url: str, username: str | None, password: str | None
) -> tuple[str, str | None, str | None]:
    """Move ``user:pass@`` out of ``url`` (httpx would send it as Basic before any challenge)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, username, password
    netloc = parts.netloc.rpartition("@")[2]
    return (
        urlunsplit(parts._replace(netloc=netloc)),
        username or unquote(parts.username),
        password or (unquote(parts.password) if parts.password else None),
    )
