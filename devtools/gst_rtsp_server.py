"""A real RTSP server nobody here wrote: GStreamer's gst-rtsp-server serving encoded files.

Run with the system Python (it needs Debian's python3-gi and gir1.2-gst-rtsp-server-1.0, which
are not in the project's venv), e.g. by ``devtools.rtspserver.make_gst_rtsp``:

    /usr/bin/python3 devtools/gst_rtsp_server.py --port 8554 --auth basic --user admin:pw \
        --mount moving=/tmp/moving.mkv:h264 --mount stalled=/tmp/moving.mkv:h264:stall=2

Each client gets its own pipeline from the start of the file, paced in real time; the file's
end is the end of stream. ``stall=S`` stops the video after S seconds and keeps the session open;
``udp`` offers only UDP transport (TCP is refused with 461). Prints "ready <port>" when serving.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

PARSERS = {"h264": ("h264parse", "rtph264pay"), "h265": ("h265parse", "rtph265pay")}


def _factory(spec: str) -> tuple[str, GstRtspServer.RTSPMediaFactory]:
    name, _, rest = spec.partition("=")
    path, codec, *flags = rest.split(":")
    parse, pay = PARSERS[codec]
    stall = next((float(f.split("=", 1)[1]) for f in flags if f.startswith("stall=")), None)
    gate = " ! identity name=gate" if stall is not None else ""
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( filesrc location={path} ! matroskademux ! {parse} config-interval=-1{gate}"
        f" ! {pay} name=pay0 pt=96 config-interval=-1 )"
    )
    factory.set_shared(False)
    if "udp" in flags:
        factory.set_protocols(GstRtsp.RTSPLowerTrans.UDP)
    if stall is not None:
        factory.connect("media-configure", _stall_after, stall)
    return f"/{name}", factory


def _stall_after(
    _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia, seconds: float
) -> None:
    """Drop every buffer from ``seconds`` of stream time on, and the end of the file: the
    session stays open and silent."""
    limit = int(seconds * Gst.SECOND)

    def gate(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        if info.type & Gst.PadProbeType.EVENT_DOWNSTREAM:
            eos = info.get_event().type == Gst.EventType.EOS
            return Gst.PadProbeReturn.DROP if eos else Gst.PadProbeReturn.OK
        buffer = info.get_buffer()
        if buffer.pts != Gst.CLOCK_TIME_NONE and buffer.pts >= limit:
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK

    pad = media.get_element().get_by_name("gate").get_static_pad("src")
    pad.add_probe(Gst.PadProbeType.BUFFER | Gst.PadProbeType.EVENT_DOWNSTREAM, gate)


def _auth(method: str, user: str) -> tuple[GstRtspServer.RTSPAuth, GstRtspServer.RTSPPermissions]:
    name, _, password = user.partition(":")
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "camera-user")
    if method == "digest":
        auth.add_digest(name, password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    else:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(name, password), token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_permission_for_role("camera-user", "media.factory.access", True)
    permissions.add_permission_for_role("camera-user", "media.factory.construct", True)
    return auth, permissions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mount", action="append", default=[], help="name=file:codec[:flags]")
    parser.add_argument("--auth", choices=("none", "basic", "digest"), default="none")
    parser.add_argument("--user", default="admin:pantau", help="user:password for --auth")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    access = _auth(args.auth, args.user) if args.auth != "none" else None
    if access is not None:
        server.set_auth(access[0])
    for spec in args.mount:
        path, factory = _factory(spec)
        if access is not None:
            factory.set_permissions(access[1])
        mounts.add_factory(path, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print(f"ready {args.port}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
