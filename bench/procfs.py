"""CPU time and peak memory of a process, read from /proc."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class ProcessUsage:
    """CPU seconds and peak RSS of a process, read from /proc."""

    cpu_s: float
    peak_rss_mb: float


def process_usage(pid: int) -> ProcessUsage:
    """utime+stime and VmHWM of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return ProcessUsage(cpu, peak)
