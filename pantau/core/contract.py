"""The wire contract between edge agents and the cloud: topics, payloads, version.

Both sides import this module and nothing else to speak to each other.

Topic tree (``{site}`` is the per-site prefix that broker ACLs key on)::

    pantau/v1/sites/{site}/readings   QoS 1, a batch of readings (ReadingBatch)
    pantau/v1/sites/{site}/status     QoS 1, retained; birth (online) and Last Will (offline)
    pantau/v1/sites/{site}/receipts   QoS 1, collector -> site: what became of messages (Receipt),
                                      and the contract version the cloud speaks (ContractNotice)

Versions: ``PROTOCOL_VERSION`` (the ``v`` of every payload and the topic root) changes only with
a new topic tree. Within it, ``CONTRACT_MINOR`` counts backward-compatible additions: optional
fields, each marked with the minor that introduced it (``since``). An agent speaks the newest
minor its collectors announced (``ContractNotice``), leaving newer fields out, and a collector
stores what it knows of a batch from a newer minor (unknown fields ignored and counted), so a
fleet upgrades one site at a time without losing a batch (docs/operations.md, upgrade order).

Identifiers (site, district, camera, sensor ids) are restricted to ``[A-Za-z0-9_.-]`` so they are
safe as MQTT topic levels and as InfluxDB tag values without any escaping ambiguity.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Annotated, Literal, NewType

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.config import JsonDict

PROTOCOL_VERSION = 1
CONTRACT_MINOR = 1
"""Minor 1: receipts name rejected messages; batches and births say their minor; sessions
carry a per-connection sequence number."""
CONTRACT_VERSION = f"{PROTOCOL_VERSION}.{CONTRACT_MINOR}"
TOPIC_ROOT = f"pantau/v{PROTOCOL_VERSION}"

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Ident = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""A site, district, camera or sensor id: letters, digits, ``_.-``; at most 64 characters."""
RESERVED_ID_PREFIX = "pantau-"
"""Broker accounts and client ids of pantau's own services start so; a site id never does."""

# Every integer on the wire is bounded well inside InfluxDB's int64 (whose time range ends at
# 2**63 - 2): nothing the contract accepts can make InfluxDB answer 400.
MAX_COUNT = 2**53
TimestampNs = Annotated[int, Field(ge=0, lt=2**63 - 1)]
"""Edge measurement time as integer nanoseconds since the Unix epoch."""

PublishTopic = NewType("PublishTopic", str)
"""A concrete topic to publish to (no wildcards)."""
TopicFilter = NewType("TopicFilter", str)
"""A subscription filter (may hold ``+``/``#`` wildcards or a ``$share`` prefix)."""


# NaN and infinity are refused by pydantic-core itself (error type "finite_number"): no Python
# callback per value on the collector's hot path.
Finite = Annotated[float, Field(allow_inf_nan=False)]


class TopicKind(enum.StrEnum):
    """The last level of a site topic."""

    READINGS = "readings"
    STATUS = "status"


def site_topic(site: str, kind: TopicKind) -> PublishTopic:
    """Return the topic a site publishes ``kind`` messages to."""
    return PublishTopic(f"{TOPIC_ROOT}/sites/{site}/{kind.value}")


def agent_client_id(site: str) -> str:
    """The MQTT client id of a site's agent; the broker binds the site's account to it."""
    return f"pantau-agent-{site}"


def site_receipts_topic(site: str) -> PublishTopic:
    """Where the collector tells a site what InfluxDB has stored (read by that site only)."""
    return PublishTopic(f"{TOPIC_ROOT}/sites/{site}/receipts")


def site_command_filter(site: str) -> TopicFilter:
    """Return the filter of the commands and config a site may read (its own only)."""
    return TopicFilter(f"{TOPIC_ROOT}/sites/{site}/command/#")


def all_sites_filter(kind: TopicKind, *, share_group: str | None = None) -> TopicFilter:
    """Return the filter matching ``kind`` messages of every site, optionally shared."""
    base = f"{TOPIC_ROOT}/sites/+/{kind.value}"
    return TopicFilter(f"$share/{share_group}/{base}" if share_group else base)


def parse_site_topic(topic: str) -> tuple[str, TopicKind] | None:
    """Split a site topic into ``(site, kind)``; ``None`` if it is not one."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT or parts[2] != "sites":
        return None
    try:
        return parts[3], TopicKind(parts[4])
    except ValueError:
        return None


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
    """What a stream probe found wrong with the picture (``none``: nothing)."""

    NONE = "none"
    OPEN_FAILED = "open_failed"
    NO_VIDEO = "no_video"
    DARK = "dark"
    FROZEN = "frozen"
    BLURRED = "blurred"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def since(minor: int) -> JsonDict:
    """``json_schema_extra`` of a field added in contract minor ``minor``."""
    return {"since": minor}


class CameraReading(_Strict):
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
        "anything but 'none' makes an answering camera 'degraded'",
    )


class SensorReading(_Strict):
    """One value of one sensor (cabinet temperature, humidity, mains, UPS, host metrics...)."""

    sensor: Ident
    kind: Ident
    ts: TimestampNs
    value: Finite


class AgentReading(_Strict):
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


class StreamReading(_Strict):
    """One stream probe: a few seconds of decoded video and what the picture showed."""

    camera: Ident
    ts: TimestampNs
    fault: StreamFault = Field(description="the most severe fault, or none")
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
    cpu_ms: Finite | None = Field(default=None, ge=0, description="CPU time the probe cost")


class GapReading(_Strict):
    """Readings the agent had to drop (queue full or too old): the span is unknown, not down."""

    ts: TimestampNs = Field(description="when the drop happened")
    start_ts: TimestampNs
    end_ts: TimestampNs
    count: int = Field(ge=1, le=MAX_COUNT)


MessageId = Annotated[int, Field(ge=0, lt=2**63)]
"""An agent's id for one published batch (random per publish); receipts name it."""


Reading = CameraReading | SensorReading | AgentReading | GapReading | StreamReading
"""Any one reading."""


class ReadingBatch(_Strict):
    """A site's batch of readings, published on ``.../sites/{site}/readings``."""

    v: Literal[1] = 1
    minor: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="the contract minor the agent speaks (absent: minor 0); a collector of an "
        "older minor stores what it knows of the batch",
        json_schema_extra=since(1),
    )
    site: Ident
    district: Ident
    msg: MessageId | None = Field(
        default=None,
        description="the agent's id for this message: the collector names it in a receipt once "
        "InfluxDB stored the batch, and only then does the agent forget its readings",
    )
    cameras: list[CameraReading] = Field(default_factory=list)
    sensors: list[SensorReading] = Field(default_factory=list)
    agent: list[AgentReading] = Field(default_factory=list)
    gaps: list[GapReading] = Field(default_factory=list)
    streams: list[StreamReading] = Field(default_factory=list)

    def readings(self) -> Iterator[Reading]:
        """Every reading of every kind (``READING_KINDS``)."""
        for kind in READING_KINDS:
            yield from getattr(self, kind)

    def count(self) -> int:
        """Number of readings in the batch."""
        return sum(len(getattr(self, kind)) for kind in READING_KINDS)


READING_KINDS: tuple[str, ...] = tuple(
    name
    for name, info in ReadingBatch.model_fields.items()
    if info.annotation is not None and getattr(info.annotation, "__origin__", None) is list
)
"""The reading lists of a ``ReadingBatch`` (``cameras``, ``sensors``, ...): a new reading kind is a
new list there, and the agent's queue, the collector and the tests follow from this tuple."""


class RejectedMessage(_Strict):
    """A message the cloud will never store (in full): why, and whether sending it again may
    help (``retry``: e.g. stamped in the future by a clock that may be corrected)."""

    msg: MessageId
    reason: Ident
    detail: str = Field(default="", max_length=200, pattern=r"^[^\r\n]*$")
    retry: bool = False


class Receipt(_Strict):
    """Collector -> site, on ``.../sites/{site}/receipts``: what became of its messages.

    ``msgs`` are stored (written to InfluxDB, or kept by the cloud as dead letters when the agent
    speaks minor 0) and their readings may leave the agent's queue. From minor 1, ``rejected``
    names the messages the cloud refused, each with its reason; an agent keeps those aside
    instead of sending them again (unless ``retry``).
    """

    v: Literal[1] = 1
    site: Ident
    msgs: list[MessageId] = Field(default_factory=list, max_length=100_000)
    rejected: list[RejectedMessage] = Field(
        default_factory=list, max_length=100_000, json_schema_extra=since(1)
    )
    contract: str | None = Field(
        default=None,
        max_length=16,
        pattern=r"^[0-9]+\.[0-9]+$",
        description="the collector's contract version",
        json_schema_extra=since(1),
    )
    ts: TimestampNs = Field(description="collector clock when the batch was stored")

    @model_validator(mode="after")
    def _names_a_message(self) -> Receipt:
        if not self.msgs and not self.rejected:
            raise ValueError("a receipt names at least one message")
        return self


class ContractNotice(_Strict):
    """Cloud -> site, on ``.../sites/{site}/receipts`` when a collector first hears from the site
    and after each birth: the contract version the collector speaks; the agent then sends the
    fields of that minor and keeps it on disk. (An agent of minor 0 logs it as a malformed
    receipt and carries on.)"""

    v: Literal[1] = 1
    contract: str = Field(max_length=16, pattern=r"^[0-9]+\.[0-9]+$")
    minor: int = Field(ge=0, le=10_000)


class SiteStatus(_Strict):
    """Birth (online) or Last Will (offline) of a site's agent, retained on ``.../status``.

    The Last Will is composed at connect time, so it cannot know when it fires: its ``ts`` is
    ``None`` and the cloud stamps it with the time the broker delivered it.
    """

    v: Literal[1] = 1
    site: Ident
    district: Ident
    online: bool
    ts: TimestampNs | None
    lat: Finite = Field(ge=-90, le=90)
    lon: Finite = Field(ge=-180, le=180)
    session: int = Field(
        ge=0, lt=2**63 - 1, description="agent connection start (ns); tells sessions apart"
    )
    probe_interval_s: Finite | None = Field(
        default=None, gt=0, description="the agent's probe period: how long a probe result holds"
    )
    minor: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="the contract minor the agent speaks (absent: minor 0)",
        json_schema_extra=since(1),
    )


# Readings of each kind have a per-device identity; InfluxDB keys a point on
# (measurement, tag set, timestamp), so an agent must never give two readings of one device the
# same timestamp. The agent's clock guarantees strictly increasing timestamps per device.
