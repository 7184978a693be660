"""Nothing left behind: a running ``pantau demo`` stopped by SIGTERM, by SIGHUP, or by closing
its terminal takes its whole process tree with it (mosquitto, influxd, snmpd, the collector,
the agents); a wrapped process is stopped with everything it started."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devtools.processes import stop_popen, stop_process
from devtools.proctree import ProcessId, alive, cmdline, descendants, group_members
from tests.helpers import wait_for

pytestmark = pytest.mark.services  # runs `pantau demo`, which starts real services

SITES = 2
# What a demo of two sites runs: its broker and database, s1's UPS, a collector, two agents.
EXPECTED = {"mosquitto": 1, "influxd": 1, "snmpd": 1, "pantau collector": 1, "pantau agent": SITES}
START_TIMEOUT_S = 90.0
GONE_TIMEOUT_S = 60.0  # agents flush (shutdown_flush_s), collectors drain, services stop


def demo_argv(workdir: Path) -> list[str]:
    """A demo that would run for 10 minutes unless stopped."""
    return [
        *(sys.executable, "-m", "pantau", "demo", "--sites", str(SITES), "--cameras", "1"),
        *("--duration", "600", "--page-port", "0", "--workdir", str(workdir)),
    ]


def started(procs: set[ProcessId], expected: dict[str, int]) -> bool:
    """True once ``procs`` holds, alive, at least the expected number of each kind."""
    lines = [cmdline(p.pid) for p in procs.copy() if alive(p)]  # copy: the watcher adds
    return all(sum(kind in line for line in lines) >= n for kind, n in expected.items())


def watch_tree(pid: int, seen: set[ProcessId], until: Callable[[], bool]) -> None:
    """Add every descendant of ``pid`` to ``seen`` until ``until()`` (an agent restarted after a
    power cut is a new process, and a process started during shutdown counts too)."""
    while not until():
        seen.update(descendants(pid))
        time.sleep(0.05)


@contextmanager
def process_tree(
    process: subprocess.Popen[bytes], expected: dict[str, int] = EXPECTED
) -> Iterator[set[ProcessId]]:
    """Record the process's descendants until it ends, once the ``expected`` ones run; kill
    whatever is left at the end (so a failing test does not leak into the next one)."""
    seen: set[ProcessId] = set()
    watcher = threading.Thread(
        target=watch_tree, args=(process.pid, seen, lambda: process.poll() is not None)
    )
    watcher.start()
    try:
        wait_for(
            lambda: started(seen, expected),
            timeout_s=START_TIMEOUT_S,
            what=f"the processes {expected}",
        )
        yield seen
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        watcher.join(10)
        for proc in seen.copy():
            if alive(proc):
                os.kill(proc.pid, signal.SIGKILL)


def assert_all_gone(
    process: subprocess.Popen[bytes], seen: set[ProcessId], expected: dict[str, int] = EXPECTED
) -> None:
    """The process exits and none of its descendants outlives it."""
    process.wait(GONE_TIMEOUT_S)
    deadline = time.monotonic() + GONE_TIMEOUT_S
    while any(alive(p) for p in seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p.describe() for p in seen if alive(p)]
    assert not left, f"left behind: {left}"
    assert len(seen) >= sum(expected.values())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signalled_demo_stops_its_whole_process_tree(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGTERM or SIGHUP to a running demo (in its own session, as from another terminal): the
    demo exits and mosquitto, influxd, snmpd, the collector and both agents are gone."""
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        demo_argv(tmp_path / "work"), stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    with process_tree(demo) as seen:
        demo.send_signal(sig)
        assert_all_gone(demo, seen)
    log.close()


def test_closing_the_demos_terminal_stops_its_whole_process_tree(tmp_path: Path) -> None:
    """The demo runs on a terminal (a pseudo-terminal it controls); closing the terminal hangs
    it up (SIGHUP from the kernel, and every later write fails): nothing is left running."""
    master, slave = os.openpty()
    # As the leader of its new session, the demo opens the terminal: it becomes its own.
    take_terminal = (
        "import os, sys; os.close(os.open(os.ttyname(0), os.O_RDWR)); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    demo = subprocess.Popen(
        [sys.executable, "-c", take_terminal, *demo_argv(tmp_path / "work")[1:]],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    hang_up = threading.Event()
    output = bytearray()

    def drain() -> None:  # the terminal's screen: read what the demo draws, close on hang-up
        try:
            while not hang_up.is_set():
                if select.select([master], [], [], 0.1)[0]:
                    try:
                        output.extend(os.read(master, 65536))
                    except OSError:
                        return
        finally:
            os.close(master)

    screen = threading.Thread(target=drain)
    screen.start()
    with process_tree(demo) as seen:
        hang_up.set()
        screen.join(10)
        assert_all_gone(demo, seen)
    assert b"technician page" in output  # it really wrote to the terminal


def test_a_signalled_chaos_run_stops_its_whole_process_tree(tmp_path: Path) -> None:
    """SIGHUP in the middle of `pantau chaos`: the schedule ends early, it says so and exits 1,
    and its broker, InfluxDB, both collectors and four agents are gone."""
    expected = {"mosquitto": 1, "influxd": 1, "pantau collector": 2, "pantau agent": 4}
    with (tmp_path / "chaos.log").open("wb") as log:
        chaos = subprocess.Popen(
            [sys.executable, "-m", "pantau", "chaos", "--duration", "150",
             "--workdir", str(tmp_path / "work")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    with process_tree(chaos, expected) as seen:
        chaos.send_signal(signal.SIGHUP)
        assert_all_gone(chaos, seen, expected)
    assert chaos.returncode == 1
    assert "interrupted: the schedule did not finish" in (tmp_path / "chaos.log").read_text()


WRAPPER = ["sh", "-c", "sleep 600 & wait"]  # a shell that does not pass SIGTERM on


def wrapper_group(pid: int) -> list[ProcessId]:
    """The wrapper and its child, once both run."""

    def both() -> list[ProcessId] | None:
        members = group_members(pid)
        return members if len(members) == 2 else None

    return wait_for(both, timeout_s=10, what="the wrapper and its child")


async def test_stopping_a_wrapped_process_stops_what_it_started() -> None:
    """An agent started in its own session through a wrapper that does not pass signals on (a
    shell here; ``faketime`` is one): ``stop_process`` stops the child too, politely (SIGTERM
    reaches it, so no wait for the SIGKILL)."""
    started = await asyncio.create_subprocess_exec(*WRAPPER, start_new_session=True)
    group = await asyncio.to_thread(wrapper_group, started.pid)
    t0 = time.monotonic()
    await stop_process(started, timeout_s=10)
    assert not [p.describe() for p in group if alive(p)]
    assert time.monotonic() - t0 < 5


def test_stopping_a_wrapped_popen_stops_what_it_started() -> None:
    """The same for ``subprocess.Popen`` processes (``stop_popen``)."""
    started = subprocess.Popen(WRAPPER, start_new_session=True)
    group = wrapper_group(started.pid)
    t0 = time.monotonic()
    stop_popen(started, 10)
    assert not [p.describe() for p in group if alive(p)]
    assert time.monotonic() - t0 < 5
