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

from pydantic import Field, model_validator

from pantau.core.commands import CommandReading
from pantau.core.readings import (
    AgentReading,
    CameraReading,
    Cause,
    DeviceReading,
    DeviceTimeNs,
    DiskStatus,
    GapReading,
    PoeState,
    PortReading,
    ProbeStage,
    RecorderDiskReading,
    RecordGap,
    RecordingReading,
    SensorReading,
    ServiceReading,
    ServiceStage,
    StreamFault,
    StreamReading,
)
from pantau.core.wiretypes import (
    ID_PATTERN,
    MAX_COUNT,
    RESERVED_ID_PREFIX,
    Finite,
    Ident,
    Strict,
    TimestampNs,
    since,
)

__all__ = [
    "CONTRACT_MINOR",
    "CONTRACT_VERSION",
    "ID_PATTERN",
    "MAX_COUNT",
    "PROTOCOL_VERSION",
    "READING_KINDS",
    "RESERVED_ID_PREFIX",
    "TOPIC_ROOT",
    "AgentReading",
    "CameraReading",
    "Cause",
    "CommandReading",
    "ContractNotice",
    "DeviceReading",
    "DeviceTimeNs",
    "DiskStatus",
    "Finite",
    "GapReading",
    "Ident",
    "MessageId",
    "PoeState",
    "PortReading",
    "ProbeStage",
    "PublishTopic",
    "Reading",
    "ReadingBatch",
    "Receipt",
    "RecordGap",
    "RecorderDiskReading",
    "RecordingReading",
    "RejectedMessage",
    "SensorReading",
    "ServiceReading",
    "ServiceStage",
    "SiteStatus",
    "StreamFault",
    "StreamReading",
    "Strict",
    "TimestampNs",
    "TopicFilter",
    "TopicKind",
    "since",
]

PROTOCOL_VERSION = 1
CONTRACT_MINOR = 1
"""Minor 1: receipts name rejected messages; batches and births say their minor; sessions
carry a per-connection sequence number; batches carry recordings, recorder disks and devices."""
CONTRACT_VERSION = f"{PROTOCOL_VERSION}.{CONTRACT_MINOR}"
TOPIC_ROOT = f"pantau/v{PROTOCOL_VERSION}"

PublishTopic = NewType("PublishTopic", str)
"""A concrete topic to publish to (no wildcards)."""
TopicFilter = NewType("TopicFilter", str)
"""A subscription filter (may hold ``+``/``#`` wildcards or a ``$share`` prefix)."""


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


def site_command_topic(site: str) -> PublishTopic:
    """Where the command center sends a site's signed commands (``pantau.core.commands``)."""
    return PublishTopic(f"{TOPIC_ROOT}/sites/{site}/command/run")


def site_services_topic(site: str) -> PublishTopic:
    """Where the cloud keeps a site's service catalogue (retained, ``pantau.core.services``)."""
    return PublishTopic(f"{TOPIC_ROOT}/sites/{site}/command/services")


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


MessageId = Annotated[int, Field(ge=0, lt=2**63)]
"""An agent's id for one published batch (random per publish); receipts name it."""


Reading = (
    CameraReading
    | SensorReading
    | AgentReading
    | GapReading
    | StreamReading
    | RecordingReading
    | RecorderDiskReading
    | DeviceReading
    | CommandReading
    | PortReading
    | ServiceReading
)
"""Any one reading."""


class ReadingBatch(Strict):
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
    recordings: list[RecordingReading] = Field(
        default_factory=list, description="what recorders kept", json_schema_extra=since(1)
    )
    disks: list[RecorderDiskReading] = Field(
        default_factory=list, description="recorders' disks", json_schema_extra=since(1)
    )
    devices: list[DeviceReading] = Field(
        default_factory=list,
        description="cameras' identity and clock (ONVIF)",
        json_schema_extra=since(1),
    )
    commands: list[CommandReading] = Field(
        default_factory=list,
        description="what became of commands: done, failed, refused",
        json_schema_extra=since(1),
    )
    ports: list[PortReading] = Field(
        default_factory=list,
        description="switch ports of cameras: link, PoE",
        json_schema_extra=since(1),
    )
    services: list[ServiceReading] = Field(
        default_factory=list,
        description="probes of e-government services (pantau.core.services)",
        json_schema_extra=since(1),
    )

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


class RejectedMessage(Strict):
    """A message the cloud will never store (in full): why, and whether sending it again may
    help (``retry``: e.g. stamped in the future by a clock that may be corrected)."""

    msg: MessageId
    reason: Ident
    detail: str = Field(default="", max_length=200, pattern=r"^[^\r\n]*$")
    retry: bool = False


class Receipt(Strict):
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


class ContractNotice(Strict):
    """Cloud -> site, on ``.../sites/{site}/receipts`` when a collector first hears from the site
    and after each birth: the contract version the collector speaks; the agent then sends the
    fields of that minor and keeps it on disk. (An agent of minor 0 logs it as a malformed
    receipt and carries on.)"""

    v: Literal[1] = 1
    contract: str = Field(max_length=16, pattern=r"^[0-9]+\.[0-9]+$")
    minor: int = Field(ge=0, le=10_000)


class SiteStatus(Strict):
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
    seq: int | None = Field(
        default=None,
        ge=0,
        lt=2**63 - 1,
        description="the connection's sequence number (Sparkplug B's bdSeq): one more for every "
        "connect attempt, kept on the agent's disk; a birth and the will registered for the "
        "same connection carry the same number, so a will older than the newest birth is known "
        "to be stale (absent: agents before contract minor 1)",
        json_schema_extra=since(1),
    )


# Readings of each kind have a per-device identity; InfluxDB keys a point on
# (measurement, tag set, timestamp), so an agent must never give two readings of one device the
# same timestamp. The agent's clock guarantees strictly increasing timestamps per device.
