"""Recorded time and gaps of a window from a recorder's segments (any adapter)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

# Recorders cut files every few minutes and leave a second or two between them; a pause shorter
# than this is a file boundary, not a gap. The end of the window is judged the same way: the
# segment being written is reported up to its last flushed second.
GAP_MIN_S = 10.0

Span = tuple[dt.datetime, dt.datetime]


def coverage(
    segments: Iterable[Span], start: dt.datetime, end: dt.datetime, *, gap_min_s: float = GAP_MIN_S
) -> tuple[float, list[Span]]:
    """Seconds recorded in ``[start, end]`` and the gaps longer than ``gap_min_s`` in it."""
    clipped = sorted(
        (max(s, start), min(e, end)) for s, e in segments if e > start and s < end and e > s
    )
    recorded = 0.0
    gaps: list[Span] = []
    cursor = start
    for s, e in clipped:
        if s > cursor:
            if (s - cursor).total_seconds() >= gap_min_s:
                gaps.append((cursor, s))
            cursor = s
        if e > cursor:
            recorded += (e - cursor).total_seconds()
            cursor = e
    if (end - cursor).total_seconds() >= gap_min_s:
        gaps.append((cursor, end))
    return recorded, gaps
