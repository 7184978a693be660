"""Read the process tree from ``/proc`` (Linux): who descends from whom, and who carries an
environment marker. Used to prove that a run leaves no process behind."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcessId:
    """A process as the kernel knows it: its pid plus its start time (clock ticks since boot),
    so a pid reused by a new process is never taken for the old one."""

    pid: int
    start_ticks: int
    ppid: int
    pgid: int
    name: str

    def describe(self) -> str:
        """``pid name: command line`` (the command line read now, if still readable)."""
        return f"{self.pid} {self.name}: {cmdline(self.pid) or '?'}"


def _stat(pid: int) -> ProcessId | None:
    """The process's identity from ``/proc/PID/stat``; None if it is gone or a zombie."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ")".
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] in {"Z", "X"}:  # exited, waiting to be reaped: no longer running anything
        return None
    return ProcessId(
        pid=pid, start_ticks=int(fields[19]), ppid=int(fields[1]), pgid=int(fields[2]), name=name
    )


def processes() -> list[ProcessId]:
    """Every live (not zombie) process visible in ``/proc``."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (proc := _stat(int(entry.name))) is not None:
            found.append(proc)
    return found


def descendants(root: int) -> list[ProcessId]:
    """Live processes below ``root`` (children, their children, ...), parents first."""
    children: dict[int, list[ProcessId]] = {}
    for proc in processes():
        children.setdefault(proc.ppid, []).append(proc)
    found: list[ProcessId] = []
    frontier = [root]
    while frontier:
        below = children.get(frontier.pop(), [])
        found += below
        frontier += [p.pid for p in below]
    return found


def group_members(pgid: int) -> list[ProcessId]:
    """Live processes of process group ``pgid`` (a group outlives its leader while any member
    runs, and its number is not reused until then)."""
    return [proc for proc in processes() if proc.pgid == pgid]


def alive(proc: ProcessId) -> bool:
    """True while this very process (same pid and start time) runs."""
    now = _stat(proc.pid)
    return now is not None and now.start_ticks == proc.start_ticks


def cmdline(pid: int) -> str:
    """The process's command line, space separated ("" if gone or unreadable)."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def with_environ(name: str, value: str) -> list[ProcessId]:
    """Live processes whose environment (as they were started) holds ``name=value``, except
    this one. Processes of other users are skipped unless we may read them (root)."""
    needle = f"{name}={value}".encode()
    found = []
    for proc in processes():
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
            if needle in (PROC / str(proc.pid) / "environ").read_bytes().split(b"\0"):
                found.append(proc)
    return found
