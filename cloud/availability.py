"""Availability per camera, site and district: up, down, unknown and maintenance seconds.

Every probe result holds for one probe interval (agents probe on a fixed period), so over a
window a camera's up seconds are ``up probes x interval``, its down seconds ``failed probes x
interval``, and what no probe covers is unknown. This is exact to within one probe interval per
transition. Whole hours and days are read from the rollups (``cloud.rollup``), which hold the
same counts, so the cost grows with cameras, not with the window's length.
Maintenance windows are cut out first: their seconds count as maintenance whatever was measured
(see docs/availability.md).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cloud.influx import InfluxClient, series_rows
from cloud.recording import recording_figures
from cloud.rollup.reader import CameraCounts, add_counts, known_cameras, plan, rollup_state
from cloud.schema import DEFAULT_PROBE_INTERVAL_S, SITE

NS = 1_000_000_000
INTERVAL_LOOKBACK_NS = 35 * 86400 * NS  # a site's probe interval is its births' in this span


class GroupBy(enum.StrEnum):
    """How rows are aggregated."""

    CAMERA = "camera"
    SITE = "site"
    DISTRICT = "district"


@dataclass(frozen=True, slots=True)
class MaintenanceSpan:
    """A maintenance window in nanoseconds; ``camera``/``site``/``district`` narrow its scope."""

    start_ns: int
    end_ns: int
    site: str | None = None
    camera: str | None = None
    district: str | None = None

    def covers(self, site: str, district: str, camera: str) -> bool:
        """True if the window applies to this camera."""
        if self.district is not None and self.district != district:
            return False
        if self.site is not None and self.site != site:
            return False
        return self.camera is None or self.camera == camera


@dataclass
class AvailabilityRow:
    """Seconds of each kind for a camera, site or district."""

    site: str
    district: str
    camera: str
    up_seconds: float = 0.0
    down_seconds: float = 0.0
    unknown_seconds: float = 0.0
    maintenance_seconds: float = 0.0
    # Recording (cloud/recording.py): seconds a recorder should have recorded (maintenance set
    # aside), of those not recorded, and retention checks with those meeting their goal.
    record_expected_seconds: float = 0.0
    record_gap_seconds: float = 0.0
    retention_checks: int = 0
    retention_met: int = 0

    @property
    def availability(self) -> float | None:
        """up / (up + down); None when nothing was measured."""
        measured = self.up_seconds + self.down_seconds
        return self.up_seconds / measured if measured else None

    @property
    def availability_strict(self) -> float | None:
        """up / (up + down + unknown)."""
        total = self.up_seconds + self.down_seconds + self.unknown_seconds
        return self.up_seconds / total if total else None

    @property
    def recorded_seconds(self) -> float:
        """Seconds recorded of those expected."""
        return max(0.0, self.record_expected_seconds - self.record_gap_seconds)

    @property
    def recording_availability(self) -> float | None:
        """recorded / expected; None where no recorder judged anything."""
        expected = self.record_expected_seconds
        return self.recorded_seconds / expected if expected else None

    @property
    def retention_compliance(self) -> float | None:
        """Share of retention checks meeting their goal; None without any."""
        checks = self.retention_checks
        return self.retention_met / checks if checks else None

    def add(self, other: AvailabilityRow) -> None:
        """Accumulate another row's seconds."""
        self.up_seconds += other.up_seconds
        self.down_seconds += other.down_seconds
        self.unknown_seconds += other.unknown_seconds
        self.maintenance_seconds += other.maintenance_seconds
        self.record_expected_seconds += other.record_expected_seconds
        self.record_gap_seconds += other.record_gap_seconds
        self.retention_checks += other.retention_checks
        self.retention_met += other.retention_met

    def as_dict(self) -> dict[str, Any]:
        """The API/CSV representation."""
        return {
            "site": self.site,
            "district": self.district,
            "camera": self.camera,
            "up_seconds": round(self.up_seconds, 3),
            "down_seconds": round(self.down_seconds, 3),
            "unknown_seconds": round(self.unknown_seconds, 3),
            "maintenance_seconds": round(self.maintenance_seconds, 3),
            "availability": None if self.availability is None else round(self.availability, 6),
            "availability_strict": (
                None if self.availability_strict is None else round(self.availability_strict, 6)
            ),
            "recorded_seconds": round(self.recorded_seconds, 3),
            "record_expected_seconds": round(self.record_expected_seconds, 3),
            "recording_availability": _round(self.recording_availability),
            "retention_compliance": _round(self.retention_compliance),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def merge_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of intervals, sorted, overlapping ones merged."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def camera_seconds(
    *, window_s: float, maintenance_s: float, probes: int, up_probes: int, interval_s: float
) -> AvailabilityRow:
    """Seconds of each kind for one camera from its probe counts outside maintenance."""
    open_s = max(0.0, window_s - maintenance_s)
    up = up_probes * interval_s
    down = (probes - up_probes) * interval_s
    covered = up + down
    if covered > open_s and covered > 0:  # edge effects: never report more than the window
        up, down = up * open_s / covered, down * open_s / covered
        covered = open_s
    return AvailabilityRow(
        site="",
        district="",
        camera="",
        up_seconds=up,
        down_seconds=down,
        unknown_seconds=open_s - covered,
        maintenance_seconds=maintenance_s,
    )


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


async def compute(
    influx: InfluxClient,
    *,
    start_ns: int,
    end_ns: int,
    maintenance: list[MaintenanceSpan],
    group_by: GroupBy = GroupBy.CAMERA,
    site: str | None = None,
    default_interval_s: float = DEFAULT_PROBE_INTERVAL_S,
    use_rollups: bool = True,
    now_ns: int | None = None,
) -> list[AvailabilityRow]:
    """Availability over ``[start_ns, end_ns)`` for every known camera (optionally one site).

    Whole days and hours come from the rollups, the rest from raw points (``use_rollups=False``
    reads everything raw: the same counts, at the cost of scanning every probe).
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    site_filter = f" AND \"site\" = '{_quote(site)}'" if site else ""
    state = await rollup_state(influx, now_ns) if use_rollups else None
    counts: dict[tuple[str, str], CameraCounts] = {
        (s, c): CameraCounts(s, d, c) for s, d, c in await known_cameras(influx, site_filter)
    }
    intervals = {
        row["site"]: float(row["last"])
        for row in series_rows(
            await influx.query(
                f'SELECT last("probe_interval_s") FROM "{SITE}" '
                f"WHERE time >= {end_ns - INTERVAL_LOOKBACK_NS} AND time < {max(end_ns, now_ns)} "
                'GROUP BY "site"'
            )
        )
        if row.get("last")
    }
    await add_counts(influx, counts, plan(start_ns, end_ns, state), site_filter)
    # Cut maintenance out: merged spans per camera, each span's probes subtracted.
    spans = {
        key: merge_spans(
            (max(m.start_ns, start_ns), min(m.end_ns, end_ns))
            for m in maintenance
            if m.covers(cam.site, cam.district, cam.camera)
            and m.start_ns < end_ns
            and m.end_ns > start_ns
        )
        for key, cam in counts.items()
    }
    for span in sorted({s for camera_spans in spans.values() for s in camera_spans}):
        affected = {k for k, camera_spans in spans.items() if span in camera_spans}
        await add_counts(influx, counts, plan(*span, state), site_filter, sign=-1, only=affected)
    window_s = (end_ns - start_ns) / NS
    rows: list[AvailabilityRow] = []
    for key, cam in counts.items():
        maintenance_s = sum(e - s for s, e in spans[key]) / NS
        result = camera_seconds(
            window_s=window_s,
            maintenance_s=maintenance_s,
            probes=cam.probes,
            up_probes=cam.up,
            interval_s=intervals.get(cam.site, default_interval_s),
        )
        result.site, result.district, result.camera = cam.site, cam.district, cam.camera
        rows.append(result)
    recording = await recording_figures(
        influx,
        start_ns=start_ns,
        end_ns=end_ns,
        maintenance=lambda key: merge_spans(
            (max(m.start_ns, start_ns), min(m.end_ns, end_ns))
            for m in maintenance
            if m.covers(*key) and m.start_ns < end_ns and m.end_ns > start_ns
        ),
        site=site,
        watermark_ns=state.watermark_ns if state else None,
    )
    by_key = {(r.site, r.district, r.camera): r for r in rows}
    for (cam_site, district, camera), fig in recording.items():
        row = by_key.get((cam_site, district, camera))
        if row is None:  # recorded, never probed: its stream figures stay empty
            row = AvailabilityRow(site=cam_site, district=district, camera=camera)
            rows.append(row)
        row.record_expected_seconds = fig.expected_s
        row.record_gap_seconds = fig.gap_s
        row.retention_checks, row.retention_met = fig.retention_checks, fig.retention_met
    return aggregate(rows, group_by)


def aggregate(rows: list[AvailabilityRow], group_by: GroupBy) -> list[AvailabilityRow]:
    """Sum camera rows into site or district rows (camera rows are returned sorted)."""
    if group_by is GroupBy.CAMERA:
        return sorted(rows, key=lambda r: (r.site, r.camera))
    groups: dict[str, AvailabilityRow] = {}
    for row in rows:
        key = row.site if group_by is GroupBy.SITE else row.district
        target = groups.setdefault(
            key,
            AvailabilityRow(
                site=row.site if group_by is GroupBy.SITE else "", district=row.district, camera=""
            ),
        )
        target.add(row)
    return [groups[k] for k in sorted(groups)]
