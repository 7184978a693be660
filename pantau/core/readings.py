"""The readings an agent sends: one model per kind (``ReadingBatch`` in
``pantau.core.contract`` holds a list of each). ``pantau.core.contract`` re-exports them."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field

from pantau.core.wiretypes import MAX_COUNT, Finite, Ident, Strict, TimestampNs, since


class Cause(enum.StrEnum):
    """Why a camera probe failed (``ok`` when it did not)."""

    OK = "ok"
    REFUSED = "refused"  # TCP connection refused: nothing listens
    TIMEOUT = "timeout"  # connected or connecting, but no answer in time
    AUTH = "auth"  # the camera answered but rejected our credentials
    BAD_RESPONSE = "bad_response"  # the camera answered something that is not RTSP/JPEG
    UNREACHABLE = "unreachable"  # no route, DNS failure, reset


class ProbeStage(enum.StrEnum):
    """The probe stage that decided a camera's state."""

    TCP = "tcp"
    RTSP = "rtsp"
    SNAPSHOT = "snapshot"


class StreamFault(enum.StrEnum):
    """What a stream probe found wrong with the picture (``none``: nothing).

    ``view_changed`` is minor 1: an agent sends it to a minor-0 collector as ``blurred``
    (``pantau.core.compat.NEWER_FAULTS``)."""

    NONE = "none"
    OPEN_FAILED = "open_failed"
    NO_VIDEO = "no_video"
    DARK = "dark"
    FROZEN = "frozen"
    VIEW_CHANGED = "view_changed"  # moved, re-aimed or covered: not the learned view (minor 1)
    BLURRED = "blurred"


class CameraReading(Strict):
    """One probe of one camera."""

    camera: Ident
    ts: TimestampNs
    up: bool
    cause: Cause
    stage: ProbeStage | None = Field(default=None, description="stage that failed, if any")
    latency_ms: Finite | None = Field(default=None, ge=0, description="whole probe duration")
    tcp_ms: Finite | None = Field(default=None, ge=0)
    rtsp_ms: Finite | None = Field(default=None, ge=0)
    snapshot_ms: Finite | None = Field(default=None, ge=0)
    snapshot_bytes: int | None = Field(default=None, ge=0, le=2**31)
    rtsp_status: int | None = Field(default=None, ge=100, le=599)
    since: TimestampNs | None = Field(
        default=None, description="when the camera entered its current up/down state"
    )
    picture: StreamFault | None = Field(
        default=None,
        description="the latest stream probe's verdict (absent when the stream is not probed); "
        "anything but 'none' makes an answering camera 'degraded'; 'view_changed' is minor 1 "
        "(a minor-0 collector gets 'blurred')",
    )


class SensorReading(Strict):
    """One value of one sensor (cabinet temperature, humidity, mains, UPS, host metrics...)."""

    sensor: Ident
    kind: Ident
    ts: TimestampNs
    value: Finite


class AgentReading(Strict):
    """The agent's own health: its store-and-forward backlog and losses."""

    ts: TimestampNs
    backlog: int = Field(ge=0, le=MAX_COUNT, description="readings waiting in the on-disk queue")
    dropped_total: int = Field(
        ge=0, le=MAX_COUNT, description="readings dropped since the queue was created"
    )
    oldest_age_s: Finite = Field(ge=0, description="age of the oldest queued reading")
    clock_offset_ms: Finite | None = Field(
        default=None,
        ge=-1e12,
        le=1e12,
        description="the collector's clock minus this agent's, from receipt round trips "
        "(positive: the site's clock is behind); absent until a receipt came",
    )
    clock_correction_ms: Finite | None = Field(
        default=None,
        ge=-1e12,
        le=1e12,
        description="what this agent adds to its system clock to stamp its readings (the "
        "offset measured from receipts, applied at the edge); absent while readings carry the "
        "system clock's time",
        json_schema_extra=since(1),
    )
    queue_error: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[^\r\n]*$",
        description="set while the disk queue fails (disk full, file lost or corrupt): readings "
        "are held in memory meanwhile, and what does not fit becomes a gap",
    )
    rejected_total: int | None = Field(
        default=None,
        ge=0,
        le=MAX_COUNT,
        description="readings the cloud refused for good (its receipts said why), kept aside in "
        "the agent's edge dead letters instead of being sent again",
        json_schema_extra=since(1),
    )
    services_version: int | None = Field(
        default=None,
        ge=1,
        lt=2**53,
        description="the service catalogue version the agent probes (absent: none received)",
        json_schema_extra=since(1),
    )


class StreamReading(Strict):
    """One stream probe: a few seconds of decoded video and what the picture showed."""

    camera: Ident
    ts: TimestampNs
    fault: StreamFault = Field(
        description="the most severe fault, or none; 'view_changed' is minor 1 (a minor-0 "
        "collector gets 'blurred')"
    )
    faults: list[StreamFault] = Field(default_factory=list, max_length=8)
    detail: str = Field(
        default="", max_length=300, pattern=r"^[^\r\n]*$", description="measured values behind it"
    )
    codec: Ident | None = None
    width: int | None = Field(default=None, ge=0, le=100_000)
    height: int | None = Field(default=None, ge=0, le=100_000)
    frames: int = Field(default=0, ge=0, le=10**7)
    fps: Finite | None = Field(default=None, ge=0)
    bitrate_kbps: Finite | None = Field(default=None, ge=0)
    first_frame_ms: Finite | None = Field(default=None, ge=0)
    luma: Finite | None = Field(default=None, ge=0, le=255, description="median mean luma")
    sharpness: Finite | None = Field(default=None, ge=0, description="variance of Laplacian")
    motion: Finite | None = Field(default=None, ge=0, description="mean change between frames")
    frozen_ratio: Finite | None = Field(default=None, ge=0, le=1)
    view_score: Finite | None = Field(
        default=None,
        ge=0,
        le=1,
        description="distance of the picture's structure from the camera's learned view (0 the "
        "same, 1 unrelated; 'view_changed' from 0.4 by default); absent until a view is learned",
        json_schema_extra=since(1),
    )
    cpu_ms: Finite | None = Field(default=None, ge=0, description="CPU time the probe cost")


class GapReading(Strict):
    """Readings the agent had to drop (queue full or too old): the span is unknown, not down."""

    ts: TimestampNs = Field(description="when the drop happened")
    start_ts: TimestampNs
    end_ts: TimestampNs
    count: int = Field(ge=1, le=MAX_COUNT)


DeviceTimeNs = Annotated[int, Field(ge=0, le=2**63 - 2)]
"""A time a device (a recorder, a camera) reported, in UTC nanoseconds. Taken from the device's
own clock and converted from its time zone, so the agent's clock correction never moves it
(unlike a ``TimestampNs`` stamp)."""

_LINE = r"^[^\r\n]*$"


class RecordGap(Strict):
    """A span without recording within a recording reading's window."""

    start_ts: DeviceTimeNs
    end_ts: DeviceTimeNs = Field(description="the window's end while the gap still lasts")


class RecordingReading(Strict):
    """What a recorder kept of one camera: recorded seconds and gaps in the last window (an
    hour by default), and the oldest recording it still keeps (its retention)."""

    camera: Ident
    recorder: Ident
    ts: TimestampNs
    window_s: int = Field(ge=1, le=7 * 86400, description="the span judged, ending at ``ts``")
    recorded_s: Finite | None = Field(
        default=None, ge=0, description="seconds recorded in the window (absent: unknown)"
    )
    gaps: list[RecordGap] = Field(
        default_factory=list, max_length=64, description="spans without recording, oldest first"
    )
    oldest_ts: DeviceTimeNs | None = Field(
        default=None, description="start of the oldest recording the recorder keeps"
    )
    retention_days: Finite | None = Field(
        default=None, ge=0, le=36500, description="days of recording kept (from ``oldest_ts``)"
    )
    retention_goal_days: Finite | None = Field(
        default=None, ge=0, le=36500, description="days this camera's recording must be kept"
    )
    error: str | None = Field(
        default=None,
        max_length=200,
        pattern=_LINE,
        description="why the recorder could not say (then the numbers are absent)",
    )


class DiskStatus(enum.StrEnum):
    """A recorder disk's state, as its recorder says."""

    OK = "ok"
    FULL = "full"  # working, no free space (the recorder overwrites the oldest)
    FAILED = "failed"  # error, unreadable, SMART failure
    UNFORMATTED = "unformatted"
    ABSENT = "absent"  # configured but missing
    UNKNOWN = "unknown"  # a state this adapter does not know


class RecorderDiskReading(Strict):
    """One disk of one recorder (NVR)."""

    recorder: Ident
    disk: Ident
    ts: TimestampNs
    status: DiskStatus
    detail: str = Field(default="", max_length=100, pattern=_LINE, description="as the device said")
    capacity_mb: Finite | None = Field(default=None, ge=0, le=1e12)
    free_mb: Finite | None = Field(default=None, ge=0, le=1e12)


class DeviceReading(Strict):
    """A camera's (or recorder's) identity and clock, from its ONVIF device service."""

    device: Ident = Field(description="camera id (or recorder id)")
    ts: TimestampNs
    ok: bool = Field(description="the device service answered")
    error: str | None = Field(default=None, max_length=200, pattern=_LINE)
    manufacturer: str | None = Field(default=None, max_length=64, pattern=_LINE)
    model: str | None = Field(default=None, max_length=64, pattern=_LINE)
    firmware: str | None = Field(default=None, max_length=64, pattern=_LINE)
    serial: str | None = Field(default=None, max_length=64, pattern=_LINE)
    hardware: str | None = Field(default=None, max_length=64, pattern=_LINE)
    clock_offset_ms: Finite | None = Field(
        default=None,
        ge=-1e13,
        le=1e13,
        description="the device's clock minus the agent's corrected clock (positive: ahead)",
    )
    services: list[Ident] = Field(
        default_factory=list, max_length=32, description="ONVIF services offered (media, ...)"
    )
    events: list[Ident] = Field(
        default_factory=list,
        max_length=16,
        description="device events active now (tamper, signal_loss, storage_failure)",
    )
    events_ok: bool | None = Field(
        default=None,
        description="the camera's event subscription is live, so ``events`` is its state "
        "(absent: events not watched)",
        json_schema_extra=since(1),
    )
    events_error: str | None = Field(
        default=None,
        max_length=200,
        pattern=_LINE,
        description="why the events are unknown",
        json_schema_extra=since(1),
    )
    events_held: list[Ident] = Field(
        default_factory=list,
        max_length=16,
        description="of ``events``, the one-shot ones (the camera never reports their end): "
        "pantau clears each a hold after its last report",
        json_schema_extra=since(1),
    )
    rebooted_ns: TimestampNs | None = Field(
        default=None,
        description="when the camera last started (its LastReboot event and uptime, or its "
        "subscription gone after it went silent)",
        json_schema_extra=since(1),
    )


class PoeState(enum.StrEnum):
    """A switch port's PoE state (POWER-ETHERNET-MIB pethPsePortDetectionStatus, RFC 3621)."""

    DISABLED = "disabled"  # PoE switched off on the port (admin)
    SEARCHING = "searching"  # on, but no powered device draws power
    DELIVERING = "delivering"  # deliveringPower
    FAULT = "fault"  # fault, test or otherFault
    NONE = "none"  # the port has no PoE (no entry in the MIB)


class PortReading(Strict):
    """One switch port that powers or links a camera (SNMP: IF-MIB, POWER-ETHERNET-MIB).

    ``error`` set: the switch did not answer, and the port's state is unknown."""

    switch: Ident
    port: int = Field(ge=1, le=2**31 - 1, description="the port's ifIndex")
    camera: Ident | None = Field(default=None, description="the camera on this port")
    ts: TimestampNs
    link_up: bool | None = Field(default=None, description="ifOperStatus is up(1)")
    poe: PoeState | None = None
    poe_w: Finite | None = Field(default=None, ge=0, le=1000, description="power drawn (W)")
    errors: int | None = Field(
        default=None, ge=0, le=MAX_COUNT, description="ifInErrors + ifOutErrors (counters)"
    )
    error: str | None = Field(default=None, max_length=200, pattern=_LINE)


class ServiceStage(enum.StrEnum):
    """The step of a service probe that failed."""

    DNS = "dns"  # the name did not resolve
    TCP = "tcp"  # no connection
    TLS = "tls"  # handshake failed or the certificate is not valid for the name
    HTTP = "http"  # no (well-formed) answer in time
    REDIRECT = "redirect"  # more redirects than allowed, or a bad Location
    STATUS = "status"  # answered a status not expected
    KEYWORD = "keyword"  # the body lacks the keyword
    JSON = "json"  # the body is not JSON, or the path is missing or differs


class ServiceReading(Strict):
    """One probe of one e-government service from this site (``pantau.core.services``)."""

    service: Ident
    ts: TimestampNs
    ok: bool = Field(description="every step passed")
    stage: ServiceStage | None = Field(default=None, description="the step that failed")
    detail: str = Field(default="", max_length=200, pattern=_LINE)
    status: int | None = Field(default=None, ge=100, le=599, description="final HTTP status")
    dns_ms: Finite | None = Field(default=None, ge=0, le=1e7)
    connect_ms: Finite | None = Field(default=None, ge=0, le=1e7)
    tls_ms: Finite | None = Field(default=None, ge=0, le=1e7)
    ttfb_ms: Finite | None = Field(default=None, ge=0, le=1e7, description="request to headers")
    total_ms: Finite | None = Field(default=None, ge=0, le=1e7, description="whole probe")
    cert_days: Finite | None = Field(
        default=None, ge=-1e5, le=1e5, description="days until the server certificate expires"
    )
    tls_version: str | None = Field(default=None, max_length=16, pattern=r"^[A-Za-z0-9.v]*$")
    redirects: int | None = Field(default=None, ge=0, le=100)
    body_bytes: int | None = Field(default=None, ge=0, le=2**31)
