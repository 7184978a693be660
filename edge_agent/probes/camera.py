"""Probe one camera through all its configured stages and summarise it as a reading."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx

from edge_agent.config import CameraConfig
from edge_agent.probes.results import StageFailedError, rounded
from edge_agent.probes.rtsp import probe_rtsp
from edge_agent.probes.snapshot import probe_snapshot
from pantau.core.contract import CameraReading, Cause, ProbeStage

log = logging.getLogger(__name__)

STAGES = 3  # tcp, rtsp, snapshot: each has its own timeout; the whole probe gets all three


UNSTAMPED = 0  # a probe's reading gets its timestamp (and ``since``) from the agent's clock


@dataclass(frozen=True, slots=True)
class CameraProbe:
    """The outcome of probing one camera: its reading (stamped by the agent) and, for the log,
    what went wrong."""

    reading: CameraReading
    detail: str = ""


def _reading(
    camera: str,
    up: bool,
    cause: Cause,
    stage: ProbeStage | None,
    *,
    started: float,
    found: dict[str, float | int | None],
) -> CameraReading:
    measured = {k: rounded(v) if k.endswith("_ms") else v for k, v in found.items()}
    return CameraReading(
        camera=camera,
        ts=UNSTAMPED,
        up=up,
        cause=cause,
        stage=stage,
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        **measured,  # type: ignore[arg-type]
    )


async def probe_camera(
    camera: CameraConfig, http: httpx.AsyncClient, *, timeout_s: float
) -> CameraProbe:
    """Run TCP + RTSP (if ``rtsp_url``) then the snapshot (if ``snapshot_url``).

    The camera is up only if every configured stage passed; otherwise the first failing stage and
    its cause are reported. Never raises: whatever the camera does, the result is a reading (an
    unforeseen error is ``bad_response`` with a short detail, and its trace is logged once).
    """
    started = time.perf_counter()
    found: dict[str, float | int | None] = {}
    stage = ProbeStage.RTSP if camera.rtsp_url else ProbeStage.SNAPSHOT

    def failed(cause: Cause, failed_stage: ProbeStage, detail: str) -> CameraProbe:
        return CameraProbe(
            _reading(camera.id, False, cause, failed_stage, started=started, found=found), detail
        )

    try:
        async with asyncio.timeout(timeout_s * STAGES):
            if camera.rtsp_url:
                tcp, rtsp = await probe_rtsp(
                    camera.rtsp_url,
                    username=camera.username,
                    password=camera.password,
                    timeout_s=timeout_s,
                )
                found.update(tcp_ms=tcp.ms, rtsp_ms=rtsp.ms, rtsp_status=rtsp.status)
            if camera.snapshot_url:
                stage = ProbeStage.SNAPSHOT
                snap = await probe_snapshot(
                    http,
                    camera.snapshot_url,
                    username=camera.username,
                    password=camera.password,
                    timeout_s=timeout_s,
                )
                found.update(snapshot_ms=snap.ms, snapshot_bytes=snap.size)
    except StageFailedError as exc:
        if exc.stage is ProbeStage.RTSP and exc.status is not None:
            found["rtsp_status"] = exc.status
        return failed(exc.cause, exc.stage, str(exc))
    except TimeoutError:
        return failed(Cause.TIMEOUT, stage, f"probe took over {timeout_s * STAGES:g} s")
    except Exception as exc:  # one camera's surprise is its own reading, never the site's outage
        log.exception("camera %s: unexpected probe error", camera.id)
        return failed(Cause.BAD_RESPONSE, stage, f"unexpected: {type(exc).__name__}: {exc}"[:200])
    return CameraProbe(_reading(camera.id, True, Cause.OK, None, started=started, found=found))
