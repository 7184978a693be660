"""Starting and stopping pantau's own processes (agents, collectors) for simulations, chaos runs,
the benchmark and tests: one argv per role, logs appended to a file, polite then firm stops."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

import httpx

STOP_TIMEOUT_S = 10.0  # SIGTERM, then SIGKILL after this long


def pantau_argv(*args: str) -> list[str]:
    """``python -m pantau ARGS`` with this interpreter."""
    return [sys.executable, "-m", "pantau", *args]


def collector_argv(
    *,
    mqtt: str,
    influx: str,
    database: str,
    http_port: int,
    client_id: str,
    instance: str,
    dead_letter: Path,
    share_group: str | None = None,
    log_level: str | None = None,
    rollup_live_every_s: float | None = None,
) -> list[str]:
    """The command line of a collector."""
    argv = pantau_argv(
        "collector", "--mqtt", mqtt, "--influx", influx, "--database", database,
        "--http-port", str(http_port), "--client-id", client_id, "--instance", instance,
        "--dead-letter", str(dead_letter),
    )  # fmt: skip
    if share_group:
        argv += ["--share-group", share_group]
    if log_level:
        argv += ["--log-level", log_level]
    if rollup_live_every_s is not None:
        argv += ["--rollup-live-every", str(rollup_live_every_s)]
    return argv


def agent_argv(config: Path, *, log_level: str) -> list[str]:
    """The command line of an agent."""
    return pantau_argv("agent", "--config", str(config), "--log-level", log_level)


async def start_logged(
    argv: list[str], log_path: Path, *, new_session: bool = False, **kwargs: Any
) -> asyncio.subprocess.Process:
    """Start ``argv`` with stdout and stderr appended to ``log_path``."""
    with log_path.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            *argv, stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=new_session,
            **kwargs,
        )  # fmt: skip


async def kill_process(process: asyncio.subprocess.Process | None) -> None:
    """SIGKILL a process and reap it."""
    if process is None or process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()


async def stop_process(
    process: asyncio.subprocess.Process | None, timeout_s: float = STOP_TIMEOUT_S
) -> None:
    """SIGTERM a process, SIGKILL it if it does not leave in time."""
    if process is None or process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(timeout_s):
            await process.wait()
    except TimeoutError:
        await kill_process(process)


async def collector_health(http: httpx.AsyncClient, port: int) -> dict[str, Any]:
    """A collector's ``/healthz`` answer, or ``{}`` while it does not answer."""
    try:
        response = await http.get(f"http://127.0.0.1:{port}/healthz")
        return dict(response.json())
    except (httpx.HTTPError, ValueError):
        return {}


async def wait_collector_connected(port: int, timeout_s: float = 30.0) -> None:
    """Wait until the collector on ``port`` is connected to its broker and subscribed."""
    async with httpx.AsyncClient(timeout=1.0) as http, asyncio.timeout(timeout_s):
        while True:  # another process: poll its health endpoint
            if (await collector_health(http, port)).get("mqtt_connected"):
                return
            await asyncio.sleep(0.1)
