"""HTTP snapshot probe: fetch the camera's JPEG and check it is one."""

from __future__ import annotations

import time
from collections.abc import Generator

import httpx

from edge_agent.probes.auth import authorization, choose_challenge
from edge_agent.probes.results import StageFailedError, StageResult
from pantau.contract import Cause, ProbeStage

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
    """GET the snapshot; succeed on 200 with a JPEG body, else raise ``StageFailedError``."""
    auth = CameraAuth(username, password or "") if username else None
    started = time.perf_counter()
    try:
        response = await client.get(url, auth=auth, timeout=timeout_s)
    except httpx.ConnectError as exc:
        cause = Cause.REFUSED if _is_refused(exc) else Cause.UNREACHABLE
        raise _fail(cause, f"snapshot connect: {exc!r}") from exc
    except httpx.TimeoutException as exc:
        raise _fail(Cause.TIMEOUT, "snapshot timed out") from exc
    except httpx.HTTPError as exc:
        raise _fail(Cause.BAD_RESPONSE, f"snapshot: {exc!r}") from exc
    ms = (time.perf_counter() - started) * 1000
    status = response.status_code
    if status in (401, 403):
        raise _fail(Cause.AUTH if username else Cause.BAD_RESPONSE, f"snapshot -> {status}", status)
    if status != 200:
        raise _fail(Cause.BAD_RESPONSE, f"snapshot -> {status}", status)
    body = response.content[:MAX_SNAPSHOT_BYTES]
    if not body.startswith(JPEG_MAGIC):
        raise _fail(Cause.BAD_RESPONSE, "snapshot is not a JPEG", 200)
    return StageResult(ms=ms, status=200, size=len(body))
