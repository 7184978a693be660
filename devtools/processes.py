"""Starting and stopping pantau's own processes (agents, collectors) for simulations, chaos runs,
the benchmark and tests: one argv per role, logs appended to a file, polite then firm stops that
reach the whole process group of a process started in its own session."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from devtools.proctree import group_members

STOP_TIMEOUT_S = 10.0  # SIGTERM, then SIGKILL after this long
GROUP_POLL_S = 0.05  # how often a stop looks whether a group's last member has left


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


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to every live process of group ``pgid``; False if it has none.

    A process started in its own session leads a group holding whatever it started (a
    ``faketime`` wrapper's agent, a server's workers): signalling the group reaches them even
    after the leader is gone, and the group's number is not reused while a member lives.
    """
    if not group_members(pgid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
    return True


async def kill_process(process: asyncio.subprocess.Process | None) -> None:
    """SIGKILL a process (with its whole group, if it leads one) and reap it."""
    if process is None:
        return
    if not signal_group(process.pid, signal.SIGKILL) and process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    await process.wait()


async def stop_process(
    process: asyncio.subprocess.Process | None, timeout_s: float = STOP_TIMEOUT_S
) -> None:
    """SIGTERM a process (with its whole group, if it leads one) and wait until all of it has
    left; SIGKILL whatever has not left in time."""
    if process is None:
        return
    if not signal_group(process.pid, signal.SIGTERM) and process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(timeout_s):
            await process.wait()
            while True:  # the group's other processes are not ours to wait for: poll
                if not group_members(process.pid):
                    return
                await asyncio.sleep(GROUP_POLL_S)
    except TimeoutError:
        await kill_process(process)


def kill_popen(process: subprocess.Popen[bytes] | None) -> None:
    """``kill_process`` for a process started with ``subprocess.Popen``."""
    if process is None:
        return
    if not signal_group(process.pid, signal.SIGKILL) and process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    process.wait()


def stop_popen(
    process: subprocess.Popen[bytes] | None,
    timeout_s: float = STOP_TIMEOUT_S,
    *,
    sig: signal.Signals = signal.SIGTERM,
    whole_group: bool = True,
) -> None:
    """``stop_process`` for a process started with ``subprocess.Popen``: ``sig`` to its group
    (or to the leader alone if not ``whole_group``: a server that stops its own workers), wait
    until the group is empty, SIGKILL what is left after ``timeout_s``."""
    if process is None:
        return
    if not (whole_group and signal_group(process.pid, sig)) and process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
    deadline = time.monotonic() + timeout_s
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        kill_popen(process)
        return
    while group_members(process.pid):  # the group's other processes: poll the kernel's table
        if time.monotonic() > deadline:
            kill_popen(process)
            return
        time.sleep(GROUP_POLL_S)


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
