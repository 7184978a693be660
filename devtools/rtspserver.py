"""GStreamer's RTSP server (``gst_rtsp_server.py``) as a local service for tests and the bench."""

from __future__ import annotations

import subprocess
from pathlib import Path

from devtools.localsvc import ManagedProcess, ServiceError, free_port

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).with_name("gst_rtsp_server.py")


def gst_rtsp_available() -> str | None:
    """None if the server can run here, else what is missing and how to install it."""
    probe = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0');"
            "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
            "assert Gst.ElementFactory.find('h265parse'), 'h265parse'",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode == 0:
        return None
    return (
        "GStreamer's RTSP server is missing: `make setup` installs the Debian packages "
        "gir1.2-gst-rtsp-server-1.0, python3-gi, gstreamer1.0-plugins-good and -bad "
        f"({probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else 'no detail'})"
    )


def make_gst_rtsp(
    base: Path,
    mounts: dict[str, str],
    *,
    auth: str = "none",
    user: str = "admin:pantau",
    port: int | None = None,
) -> ManagedProcess:
    """A server (not started) offering ``mounts``: name -> "file:codec[:udp][:stall=S]"."""
    missing = gst_rtsp_available()
    if missing:
        raise ServiceError(missing)
    port = port or free_port()
    base.mkdir(parents=True, exist_ok=True)
    argv = [SYSTEM_PYTHON, str(SCRIPT), "--port", str(port), "--auth", auth, "--user", user]
    for name, spec in mounts.items():
        argv += ["--mount", f"{name}={spec}"]
    return ManagedProcess(
        name=f"gst-rtsp-server ({auth})",
        argv=argv,
        port=port,
        workdir=base,
        log_path=base / f"gst-rtsp-{port}.log",
    )
