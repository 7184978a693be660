"""A private net-snmp ``snmpd`` for a simulated device: started on a loopback port with its own
config, persistent dir and log, in its own session; stopped with a deadline."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

STOP_TIMEOUT_S = 10.0


def start_snmpd(binary: str, workdir: Path, config: str) -> subprocess.Popen[bytes]:
    """Write ``config`` to ``workdir/snmpd.conf`` and run snmpd in the foreground on it."""
    conf = workdir / "snmpd.conf"
    conf.write_text(config)
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(workdir), "MIBS": ""}
    with (workdir / "snmpd.log").open("ab") as log:
        return subprocess.Popen(
            [binary, "-f", "-C", "-c", str(conf), "-Lf", str(workdir / "snmpd.log"),
             "-M", str(workdir)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip


def stop_snmpd(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S`` (pass_persist children end with stdin)."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
