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
from dataclasses import dataclass, field

from cloud.influx import InfluxClient, series_rows
from cloud.rollup.timegrid import HOUR_NS, ceil_hour, floor_hour
from cloud.schema import (
    CAMERA_TAG,
    DISTRICT_TAG,
    RECORD,
    RECORD_1H,
    RECORD_GAP,
    RECORDER_TAG,
    RP_HOURLY,
    SITE_TAG,
)
from pantau.core.wiretypes import ID_PATTERN

NS = 1_000_000_000
# The longest window (and so gap) a recording point can judge (the agent's ``window_s`` bound):
# points up to this far after the window still judge seconds inside it.
MAX_RECORD_WINDOW_NS = 86400 * NS

# A check judges the window before it, so an hour's recording is complete only once the next
# hour's checks are in: the rollup re-rolls the hour before each hour it rolls, and readers
# trust recording hours up to this long before the watermark. Exact for windows up to an hour
# (the default ``devices.window_s``); with longer ones, only the raw read is exact.
RECORD_SETTLE_NS = HOUR_NS

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

    def add(self, other: RecordingFigures, sign: int = 1) -> None:
        """Add (or with ``sign=-1`` take away) another's seconds and checks."""
        self.expected_s += sign * other.expected_s
        self.gap_s += sign * other.gap_s
        self.retention_checks += sign * other.retention_checks
        self.retention_met += sign * other.retention_met


@dataclass
class RecorderSpans:
    """What raw points say of one camera on one recorder within a range: the judged spans and
    the gaps (both merged, the gaps inside the judged spans), and the retention checks stamped
    in the range as ``(ts, met)``."""

    judged: list[Span] = field(default_factory=list)
    gaps: list[Span] = field(default_factory=list)
    checks: list[tuple[int, bool]] = field(default_factory=list)

    def figures(self, start_ns: int, end_ns: int) -> RecordingFigures:
        """The figures of ``[start_ns, end_ns)`` (within the range read)."""
        within = [(start_ns, end_ns)]
        met = [m for ts, m in self.checks if start_ns <= ts < end_ns]
        return RecordingFigures(
            expected_s=_total_s(intersect(self.judged, within)),
            gap_s=_total_s(intersect(self.gaps, within)),
            retention_checks=len(met),
            retention_met=sum(met),
        )


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


def site_condition(site: str | None) -> str | None:
    """The InfluxQL condition on one site (empty for all); None for a name no site can have
    (site ids are ``Ident``s)."""
    if site is None:
        return ""
    if not re.fullmatch(ID_PATTERN, site):
        return None
    return f" AND \"{SITE_TAG}\" = '{site}'"


async def read_spans(
    influx: InfluxClient, start_ns: int, end_ns: int, condition: str = ""
) -> dict[tuple[Key, str], RecorderSpans]:
    """Each (camera, recorder)'s ``RecorderSpans`` over ``[start_ns, end_ns)`` from raw points
    (``condition``: more of the WHERE clause, e.g. ``site_condition``)."""
    group = f'GROUP BY "{SITE_TAG}", "{DISTRICT_TAG}", "{CAMERA_TAG}", "{RECORDER_TAG}"'
    points = series_rows(
        await influx.query(
            'SELECT "window_s", "recorded_s", "retention_days", "retention_goal_days" '
            f'FROM "{RECORD}" WHERE time >= {start_ns} '
            f"AND time < {end_ns + MAX_RECORD_WINDOW_NS}{condition} {group}"
        )
    )
    gaps = series_rows(
        await influx.query(
            f'SELECT "start_ts", "end_ts" FROM "{RECORD_GAP}" '
            f"WHERE time >= {start_ns - MAX_RECORD_WINDOW_NS} AND time < {end_ns}{condition} "
            f"{group}"
        )
    )
    judged: dict[tuple[Key, str], list[Span]] = defaultdict(list)
    holes: dict[tuple[Key, str], list[Span]] = defaultdict(list)
    found: dict[tuple[Key, str], RecorderSpans] = {}
    for row in points:
        key = ((row[SITE_TAG], row[DISTRICT_TAG], row[CAMERA_TAG]), row[RECORDER_TAG])
        ts = int(row["time"])
        spans = found.setdefault(key, RecorderSpans())
        if row.get("recorded_s") is not None and row.get("window_s"):
            judged[key].append((max(start_ns, ts - int(row["window_s"]) * NS), min(end_ns, ts)))
        goal, kept = row.get("retention_goal_days"), row.get("retention_days")
        if ts < end_ns and goal is not None and kept is not None:
            spans.checks.append((ts, float(kept) >= float(goal)))
    for row in gaps:
        key = ((row[SITE_TAG], row[DISTRICT_TAG], row[CAMERA_TAG]), row[RECORDER_TAG])
        if row.get("start_ts") is not None and row.get("end_ts") is not None:
            holes[key].append((int(row["start_ts"]), int(row["end_ts"])))
    for key, spans in found.items():
        spans.judged = merge(judged.get(key, []))
        spans.gaps = intersect(merge(holes.get(key, [])), spans.judged)
    return found


async def _raw(
    influx: InfluxClient, start_ns: int, end_ns: int, condition: str
) -> dict[Key, RecordingFigures]:
    figures: dict[Key, RecordingFigures] = {}
    for (key, _recorder), spans in (await read_spans(influx, start_ns, end_ns, condition)).items():
        figures.setdefault(key, RecordingFigures()).add(spans.figures(start_ns, end_ns))
    return figures


async def _hours(
    influx: InfluxClient, start_ns: int, end_ns: int, condition: str
) -> dict[Key, RecordingFigures]:
    rows = series_rows(
        await influx.query(
            'SELECT sum("expected_s") AS "expected_s", sum("gap_s") AS "gap_s", '
            'sum("checks") AS "checks", sum("met") AS "met" '
            f'FROM "{RP_HOURLY}"."{RECORD_1H}" WHERE time >= {start_ns} AND time < {end_ns}'
            f'{condition} GROUP BY "{SITE_TAG}", "{DISTRICT_TAG}", "{CAMERA_TAG}"'
        )
    )
    return {
        (r[SITE_TAG], r[DISTRICT_TAG], r[CAMERA_TAG]): RecordingFigures(
            float(r["expected_s"] or 0),
            float(r["gap_s"] or 0),
            int(r["checks"] or 0),
            int(r["met"] or 0),
        )
        for r in rows
    }


async def figures_over(
    influx: InfluxClient,
    start_ns: int,
    end_ns: int,
    *,
    watermark_ns: int | None,
    condition: str = "",
) -> dict[Key, RecordingFigures]:
    """Figures over ``[start_ns, end_ns)`` without maintenance: the whole hours the recording
    rollup holds (settled: ``RECORD_SETTLE_NS`` before the watermark), raw points for the rest."""
    h0 = ceil_hour(start_ns)
    h1 = h0 if watermark_ns is None else min(floor_hour(end_ns), watermark_ns - RECORD_SETTLE_NS)
    if h1 <= h0:
        return await _raw(influx, start_ns, end_ns, condition)
    total: dict[Key, RecordingFigures] = {}
    parts = [
        await _raw(influx, start_ns, h0, condition) if h0 > start_ns else {},
        await _hours(influx, h0, h1, condition),
        await _raw(influx, h1, end_ns, condition) if end_ns > h1 else {},
    ]
    for part in parts:
        for key, fig in part.items():
            total.setdefault(key, RecordingFigures()).add(fig)
    return total


async def recording_figures(
    influx: InfluxClient,
    *,
    start_ns: int,
    end_ns: int,
    maintenance: Callable[[Key], list[Span]],
    site: str | None = None,
    watermark_ns: int | None = None,
) -> dict[Key, RecordingFigures]:
    """Each recorded camera's figures over ``[start_ns, end_ns)``; ``maintenance`` gives a
    camera's merged maintenance spans, whose seconds are taken away (the figures add up over
    disjoint time, so the window's minus each span's is the window without them)."""
    condition = site_condition(site)
    if condition is None:
        return {}
    figures = await figures_over(
        influx, start_ns, end_ns, watermark_ns=watermark_ns, condition=condition
    )
    spans = {key: maintenance(key) for key in figures}
    for span in sorted({s for camera_spans in spans.values() for s in camera_spans}):
        inside = await figures_over(influx, *span, watermark_ns=watermark_ns, condition=condition)
        for key, camera_spans in spans.items():
            if span in camera_spans and key in inside:
                aside = inside[key]
                figures[key].add(RecordingFigures(aside.expected_s, aside.gap_s), sign=-1)
    for fig in figures.values():  # float sums: never below nothing
        fig.expected_s, fig.gap_s = max(0.0, fig.expected_s), max(0.0, fig.gap_s)
    return figures
