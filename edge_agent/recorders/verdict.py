"""One recording reading per camera from any recorder adapter: recorded seconds, gaps and
retention from its segments, or the error that left them unknown."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pydantic import BaseModel

from edge_agent.recorders.coverage import Span, coverage
from pantau.core.contract import RecordGap, RecordingReading

Reading = tuple[str, tuple[str, ...], BaseModel]
MAX_GAPS = 64  # the newest gaps of a window, so a flapping stream stays one bounded reading
ERROR_CHARS = 200


def recorded(
    *,
    camera: str,
    recorder: str,
    window_s: int,
    goal_days: float | None,
    segments: Iterable[Span],
    start: dt.datetime,
    now: dt.datetime,
    oldest: dt.datetime | None,
) -> Reading:
    """The reading of ``camera`` from the segments reaching into ``[start, now]`` and the oldest
    recording kept (retention in days)."""
    seconds, gaps = coverage(segments, start, now)
    retention = None if oldest is None else max(0.0, (now - oldest).total_seconds() / 86400)
    reading = RecordingReading(
        camera=camera,
        recorder=recorder,
        ts=0,
        window_s=window_s,
        recorded_s=round(seconds, 1),
        gaps=[RecordGap(start_ts=ns(s), end_ts=ns(e)) for s, e in gaps[-MAX_GAPS:]],
        oldest_ts=None if oldest is None else ns(oldest),
        retention_days=None if retention is None else round(retention, 3),
        retention_goal_days=goal_days,
    )
    return "recordings", ("record", camera, recorder), reading


def failed(
    *, camera: str, recorder: str, window_s: int, goal_days: float | None, error: str
) -> Reading:
    """The reading of a camera whose recording could not be judged: no figures, the reason."""
    reading = RecordingReading(
        camera=camera,
        recorder=recorder,
        ts=0,
        window_s=window_s,
        retention_goal_days=goal_days,
        error=error[:ERROR_CHARS],
    )
    return "recordings", ("record", camera, recorder), reading


def ns(moment: dt.datetime) -> int:
    """Nanoseconds since the epoch (never negative)."""
    return max(0, int(moment.timestamp() * 1e9))


def why(exc: BaseException) -> str:
    """A one-line reason for an exception from a recorder conversation."""
    if isinstance(exc, TimeoutError):
        return "no complete answer in time"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:ERROR_CHARS]
