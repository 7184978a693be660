"""Recording availability and retention compliance per camera over a window.

A recording point (``record``) judges the ``window_s`` seconds before it; the agent asks every
few minutes about the last hour, so windows overlap. The seconds a camera should have been
recorded are the union of its answered windows (points with ``recorded_s``) within
``[from, to)``, maintenance cut out; the seconds not recorded are the union of its gaps
(``record_gap``, each ``[start_ts, end_ts)``) in that span. Pauses shorter than the agent's
``GAP_MIN_S`` are file boundaries and count as recorded. Each recorder of a camera is judged on
its own and the seconds add up.

Retention compliance is time-weighted: the share of the window's recording checks (one every
interval, so a share of checks is a share of time) whose ``retention_days`` met their
``retention_goal_days``. See docs/availability.md.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cloud.influx import InfluxClient, series_rows
from cloud.schema import (
    CAMERA_TAG,
    DISTRICT_TAG,
    RECORD,
    RECORD_GAP,
    RECORDER_TAG,
    SITE_TAG,
)
from pantau.core.wiretypes import ID_PATTERN

NS = 1_000_000_000
# The longest window (and so gap) a recording point can judge (the agent's ``window_s`` bound):
# points up to this far after the window still judge seconds inside it.
MAX_RECORD_WINDOW_NS = 86400 * NS

Span = tuple[int, int]
Key = tuple[str, str, str]  # site, district, camera


@dataclass
class RecordingFigures:
    """One camera's (or a group's) recording seconds and retention checks."""

    expected_s: float = 0.0  # judged by a recorder, outside maintenance
    gap_s: float = 0.0  # of those, not recorded
    retention_checks: int = 0  # checks with a goal and a retention figure
    retention_met: int = 0  # of those, retention_days >= retention_goal_days

    @property
    def recorded_s(self) -> float:
        """Seconds recorded of those expected."""
        return max(0.0, self.expected_s - self.gap_s)


def merge(spans: Iterable[Span]) -> list[Span]:
    """Union of intervals, sorted; empty ones dropped."""
    merged: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def cut(spans: list[Span], holes: list[Span]) -> list[Span]:
    """``spans`` (merged) without ``holes`` (merged)."""
    out: list[Span] = []
    for start, end in spans:
        cursor = start
        for h_start, h_end in holes:
            if h_end <= cursor or h_start >= end:
                continue
            if h_start > cursor:
                out.append((cursor, h_start))
            cursor = max(cursor, h_end)
        if cursor < end:
            out.append((cursor, end))
    return out


def intersect(spans: list[Span], within: list[Span]) -> list[Span]:
    """The parts of ``spans`` (merged) inside ``within`` (merged)."""
    out: list[Span] = []
    for start, end in spans:
        for w_start, w_end in within:
            lo, hi = max(start, w_start), min(end, w_end)
            if lo < hi:
                out.append((lo, hi))
    return out


def _total_s(spans: Iterable[Span]) -> float:
    return sum(e - s for s, e in spans) / NS


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


async def recording_figures(
    influx: InfluxClient,
    *,
    start_ns: int,
    end_ns: int,
    maintenance: Callable[[Key], list[Span]],
    site: str | None = None,
) -> dict[Key, RecordingFigures]:
    """Each recorded camera's figures over ``[start_ns, end_ns)``; ``maintenance`` gives a
    camera's merged maintenance spans."""
    if site is not None and not re.fullmatch(ID_PATTERN, site):
        return {}  # no site has such a name (site ids are ``Ident``s)
    site_filter = f" AND \"{SITE_TAG}\" = '{_quote(site)}'" if site else ""
    group = f'GROUP BY "{SITE_TAG}", "{DISTRICT_TAG}", "{CAMERA_TAG}", "{RECORDER_TAG}"'
    points = series_rows(
        await influx.query(
            'SELECT "window_s", "recorded_s", "retention_days", "retention_goal_days" '
            f'FROM "{RECORD}" WHERE time >= {start_ns} '
            f"AND time < {end_ns + MAX_RECORD_WINDOW_NS}{site_filter} {group}"
        )
    )
    gaps = series_rows(
        await influx.query(
            f'SELECT "start_ts", "end_ts" FROM "{RECORD_GAP}" '
            f"WHERE time >= {start_ns - MAX_RECORD_WINDOW_NS} AND time < {end_ns}{site_filter} "
            f"{group}"
        )
    )
    judged: dict[tuple[Key, str], list[Span]] = defaultdict(list)
    holes: dict[tuple[Key, str], list[Span]] = defaultdict(list)
    figures: dict[Key, RecordingFigures] = {}
    for row in points:
        key: Key = (row[SITE_TAG], row[DISTRICT_TAG], row[CAMERA_TAG])
        ts = int(row["time"])
        fig = figures.setdefault(key, RecordingFigures())
        if row.get("recorded_s") is not None and row.get("window_s"):
            span = (max(start_ns, ts - int(row["window_s"]) * NS), min(end_ns, ts))
            judged[key, row[RECORDER_TAG]].append(span)
        goal, kept = row.get("retention_goal_days"), row.get("retention_days")
        if ts < end_ns and goal is not None and kept is not None:
            fig.retention_checks += 1
            fig.retention_met += int(float(kept) >= float(goal))
    for row in gaps:
        key = (row[SITE_TAG], row[DISTRICT_TAG], row[CAMERA_TAG])
        if row.get("start_ts") is not None and row.get("end_ts") is not None:
            holes[key, row[RECORDER_TAG]].append((int(row["start_ts"]), int(row["end_ts"])))
    for (key, recorder), spans in judged.items():
        expected = cut(merge(spans), maintenance(key))
        missing = intersect(merge(holes.get((key, recorder), [])), expected)
        fig = figures[key]
        fig.expected_s += _total_s(expected)
        fig.gap_s += _total_s(missing)
    return figures
