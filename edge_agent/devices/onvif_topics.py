"""ONVIF event topics as pantau reads them, and one camera's event state (pure logic).

Topics (ONVIF Core specification, appendix "Topics", and what brands send instead):
``tns1:VideoSource/SignalLoss`` (``State``), ``tns1:VideoSource/GlobalSceneChange/*`` and
``tns1:RuleEngine/TamperDetector/Tamper`` (tamper: ``State``/``IsTamper``),
``tns1:Device/HardwareFailure/StorageFailure`` (``Failed``) and
``tns1:Monitoring/OperatingTime/LastReboot`` (``Status``, the boot time on the camera's clock).

A property event (``PropertyOperation`` Initialized/Changed) holds until the camera says it
ended. A one-shot event (no ``PropertyOperation``, or a kind configured as one-shot: cameras
report tamper as a moment and never send its end) is held ``hold_s`` after its last report and
then cleared by pantau, which says so in the reading (``events_held``) and the log.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge_agent.devices.onvif_time import parse_xs_datetime

log = logging.getLogger(__name__)


class EventKind(enum.StrEnum):
    """A device event pantau tracks (the values of ``DeviceReading.events``)."""

    TAMPER = "tamper"
    SIGNAL_LOSS = "signal_loss"
    STORAGE_FAILURE = "storage_failure"


# Topic (lower case, namespace prefix and trailing "/" cut) -> (kind, the data items saying
# "active"). ``None``: the boot-time topic.
TOPICS: Mapping[str, tuple[EventKind | None, tuple[str, ...]]] = {
    "videosource/signalloss": (EventKind.SIGNAL_LOSS, ("state",)),
    "videosource/globalscenechange/imagingservice": (EventKind.TAMPER, ("state",)),
    "videosource/globalscenechange/analyticsservice": (EventKind.TAMPER, ("state",)),
    "videosource/globalscenechange/recordingservice": (EventKind.TAMPER, ("state",)),
    "ruleengine/tamperdetector/tamper": (EventKind.TAMPER, ("istamper", "state")),
    "videosource/tampering": (EventKind.TAMPER, ("lensblocked", "state", "istamper")),
    "device/hardwarefailure/storagefailure": (EventKind.STORAGE_FAILURE, ("failed", "state")),
    "monitoring/operatingtime/lastreboot": (None, ("status",)),
}
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification message, as plain values."""

    topic: str
    operation: str | None  # PropertyOperation: Initialized, Changed, Deleted; None: a pulse
    data: Mapping[str, str]  # the Data SimpleItems, names in lower case
    utc: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """What a notice means: an event on or off, or the camera's boot time."""

    kind: EventKind | None
    active: bool | None = None
    pulse: bool = False  # sent without PropertyOperation
    booted: dt.datetime | None = None  # camera clock


def topic_key(topic: str) -> str:
    """``tns1:VideoSource/SignalLoss/`` -> ``videosource/signalloss`` (any namespace prefix)."""
    return "/".join(
        part.rpartition(":")[2] for part in topic.strip().strip("/.").split("/")
    ).lower()


def read_notice(notice: Notice) -> Change | None:
    """The meaning of a notice; ``None`` for topics pantau does not track or odd data."""
    found = TOPICS.get(topic_key(notice.topic))
    if found is None or notice.operation == "Deleted":
        return None
    kind, names = found
    value = next((notice.data[n] for n in names if n in notice.data), None)
    if value is None:
        return None
    if kind is None:
        booted = parse_xs_datetime(value)
        return Change(kind=None, booted=booted) if booted else None
    word = value.strip().lower()
    if word not in _TRUE and word not in _FALSE:
        return None
    return Change(kind=kind, active=word in _TRUE, pulse=notice.operation is None)


def notices(response: Any) -> list[Notice]:
    """The notification messages of a ``PullMessagesResponse`` (as zeep parsed it)."""
    found = []
    for message in getattr(response, "NotificationMessage", None) or []:
        topic = getattr(getattr(message, "Topic", None), "_value_1", None)
        body = getattr(getattr(message, "Message", None), "_value_1", None)
        if not isinstance(topic, str) or body is None:
            continue
        items = getattr(getattr(body, "Data", None), "SimpleItem", None) or []
        data = {
            str(getattr(i, "Name", "")).lower(): str(getattr(i, "Value", "")) for i in items[:16]
        }
        utc = getattr(body, "UtcTime", None)
        operation = getattr(body, "PropertyOperation", None)
        found.append(
            Notice(
                topic=topic[:200],
                operation=str(operation) if operation else None,
                data=data,
                utc=utc if isinstance(utc, dt.datetime) else None,
            )
        )
    return found


@dataclass
class EventState:
    """One camera's active events. ``apply`` and ``expire`` say whether anything changed."""

    hold_s: float
    one_shot: frozenset[EventKind]
    camera: str = ""
    active: dict[EventKind, float | None] = field(default_factory=dict)  # kind -> hold deadline
    booted: dt.datetime | None = None  # on the camera's clock

    def apply(self, changes: Iterable[Change], now: float) -> bool:
        """Take a pull's changes (``now``: monotonic seconds)."""
        before = self.view()
        for change in changes:
            if change.kind is None:
                self.booted = change.booted
                continue
            if not change.active:
                self.active.pop(change.kind, None)
            elif change.pulse or change.kind in self.one_shot:
                self.active[change.kind] = now + self.hold_s
            else:
                self.active[change.kind] = None
        return self.view() != before

    def expire(self, now: float) -> bool:
        """Clear one-shot events whose hold ran out."""
        gone = [k for k, until in self.active.items() if until is not None and until <= now]
        for kind in gone:
            del self.active[kind]
            log.info(
                "camera %s: %s cleared by pantau %g s after the camera's last report (the camera "
                "never reports its end)", self.camera, kind.value, self.hold_s,
            )  # fmt: skip
        return bool(gone)

    def view(self) -> tuple[list[str], list[str]]:
        """(active events, those held as one-shot), sorted."""
        return (
            sorted(k.value for k in self.active),
            sorted(k.value for k, until in self.active.items() if until is not None),
        )
