"""Recorded spans from ONVIF Profile G search results (pure; no I/O).

A recording's track reports ``tns1:RecordingHistory/Track/State`` events whose ``IsDataPresent``
turns true where recording resumes and false where it stops (ONVIF Recording Search
Specification, "Recording events"); ``FindEvents`` with ``IncludeStartState`` also gives the
state at the window's start. Some devices report ``tns1:RecordingHistory/Recording/State``
(``IsRecording``) instead; it is used when no track event is found. Values are zeep objects
or, for messages zeep could not map, lxml elements; times without a zone are read as UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lxml import etree

TRACK_STATE = "RecordingHistory/Track/State"
RECORDING_STATE = "RecordingHistory/Recording/State"
_FLAGS = {"IsDataPresent": TRACK_STATE, "IsRecording": RECORDING_STATE}

Span = tuple[dt.datetime, dt.datetime]


@dataclass(frozen=True, slots=True)
class Change:
    """One state change (or the state at the window's start) of a recording's track."""

    at: dt.datetime
    present: bool
    topic: str
    start_state: bool


def utc(value: Any) -> dt.datetime | None:
    """A device's ``xs:dateTime`` as aware UTC (``None`` if it is not one)."""
    if not isinstance(value, dt.datetime):
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _simple_items(message: Any) -> dict[str, str]:
    """``Name -> Value`` of a notification message's ``Data`` items."""
    body = getattr(message, "_value_1", message)
    if isinstance(body, etree._Element):  # lxml's element type
        return {
            str(item.get("Name")): str(item.get("Value"))
            for item in body.iter("{*}SimpleItem")
            if item.getparent() is not None and etree.QName(item.getparent()).localname == "Data"
        }
    data = getattr(body, "Data", None)
    items = getattr(data, "SimpleItem", None) or []
    return {str(getattr(i, "Name", "")): str(getattr(i, "Value", "")) for i in items[:16]}


def change_of(result: Any) -> Change | None:
    """The state change a ``FindEventResult`` reports, ``None`` if it is another event."""
    at = utc(getattr(result, "Time", None))
    event = getattr(result, "Event", None)
    topic = getattr(getattr(event, "Topic", None), "_value_1", None)
    if at is None or event is None:
        return None
    items = _simple_items(getattr(event, "Message", None))
    for flag, name in _FLAGS.items():
        if flag in items and (not isinstance(topic, str) or topic.endswith(name)):
            value = items[flag].strip().lower()
            if value not in ("true", "false", "1", "0"):
                return None
            start = getattr(result, "StartStateEvent", False) is True
            return Change(at, value in ("true", "1"), name, start)
    return None


def spans_of(
    changes: Iterable[Change], start: dt.datetime, end: dt.datetime, data_to: dt.datetime | None
) -> list[Span] | None:
    """Recorded spans in ``[start, end]`` from the track's changes; ``None`` if they say
    nothing (no change and no start state). A span still open at the end stops at the track's
    last data (``data_to``), which a device keeps even when it stopped without an event."""
    found = sorted(changes, key=lambda c: (c.at, not c.start_state))
    chosen = [c for c in found if c.topic == TRACK_STATE] or found
    if not chosen:
        return None
    initial = next((c for c in chosen if c.start_state), None)
    moves = [c for c in chosen if not c.start_state]
    # Without a start state, the first change tells what was before it.
    on = initial.present if initial is not None else not moves[0].present
    spans: list[Span] = []
    since = start
    for change in moves:
        if change.present and not on:
            since, on = max(change.at, start), True
        elif not change.present and on:
            spans.append((since, min(change.at, end)))
            on = False
    if on:
        stop = end if data_to is None else min(end, max(data_to, since))
        spans.append((since, stop))
    return [(s, e) for s, e in spans if e > s]
