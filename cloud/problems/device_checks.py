"""Recording and device problem rules: a recording gap, retention below its goal, a recorder
disk that failed (from the recorders' reports), a camera replaced, its firmware changed and its
clock wrong (from the ONVIF checks); a camera tampered, its video signal lost, its storage failed
and its reboots (from its ONVIF events). Subjects of an unreachable site are left to its site
problem."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from cloud.problems.config import DeviceRule, RecordingRule, Severity
from cloud.problems.model import Observation, SiteContact, Verdict
from cloud.schema import DEVICE, RECORD, RECORD_DISK, RECORD_GAP
from pantau.core.units import to_ns

Query = Callable[[str], Awaitable[list[dict[str, Any]]]]
FAILED_DISK = frozenset({"failed", "absent", "unformatted"})
# (event in ``DeviceReading.events``, rule, title, what the camera reports)
EVENT_RULES = (
    ("tamper", "camera_tamper", "camera tampered", "tampering (covered, moved or sprayed)"),
    ("signal_loss", "video_signal", "video signal lost", "its video signal lost"),
    ("storage_failure", "camera_storage", "camera storage failed", "its storage (SD card) failed"),
)


def _obs(
    rule: str,
    title: str,
    severity: Severity,
    row: Mapping[str, Any],
    subject: str,
    *,
    bad: bool,
    since_ns: int | None,
    cause: str,
    details: dict[str, Any] | None = None,
) -> Observation:
    return Observation(
        key=f"{rule}:{subject}",
        rule=rule,
        title=title,
        severity=severity,
        verdict=Verdict.BAD if bad else Verdict.GOOD,
        site=row["site"],
        district=row.get("district", ""),
        camera=row.get("camera"),
        subject=subject,
        since_ns=since_ns,
        cause=cause,
        details=details or {},
    )


def _reachable(row: Mapping[str, Any], sites: Mapping[str, SiteContact]) -> bool:
    state = sites.get(row["site"])
    return state is not None and not state.offline


def _hhmm(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%H:%M UTC")


async def recording_checks(
    query: Query, rule: RecordingRule, now_ns: int, sites: Mapping[str, SiteContact]
) -> list[Observation]:
    """Gaps and retention per camera and recorder; failed disks per recorder disk."""
    window = f"time <= {now_ns} AND time > {now_ns - to_ns(rule.lookback)}"
    latest = await query(
        f'SELECT last("window_s") AS "window_s", "recorded_s", "record_gap_s", "record_gaps", '
        f'"retention_days", "retention_goal_days", "record_error" FROM "{RECORD}" '
        f'WHERE {window} GROUP BY "site", "district", "camera", "recorder"'
    )
    gaps = await query(
        f'SELECT "start_ts", "end_ts" FROM "{RECORD_GAP}" WHERE {window} '
        'GROUP BY "site", "camera", "recorder"'
    )
    spans: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
    for g in gaps:
        key = (g["site"], g["camera"], g["recorder"])
        spans.setdefault(key, []).append((int(g["start_ts"]), int(g["end_ts"])))
    observations = []
    for row in latest:
        if not _reachable(row, sites) or row.get("recorded_s") is None:
            continue  # unreachable site, or the recorder could not say: not judged
        subject = f"{row['site']}/{row['camera']}@{row['recorder']}"
        minutes = float(row["window_s"]) / 60
        gap_s = float(row.get("record_gap_s") or 0)
        seen = sorted(spans.get((row["site"], row["camera"], row["recorder"]), []))
        recent = [s for s in seen if s[1] > int(row["time"]) - int(row["window_s"]) * 10**9]
        bad = gap_s >= rule.min_gap
        last = recent[-1] if recent else None
        cause = (
            f"{gap_s:.0f} s not recorded in the last {minutes:.0f} min"
            + (f" (latest gap {_hhmm(last[0])} to {_hhmm(last[1])})" if last else "")
            if bad
            else f"recorded {float(row['recorded_s']):.0f} s of {minutes * 60:.0f} s"
        )
        observations.append(
            _obs(
                "recording_gap", "recording gap", rule.severity, row, subject, bad=bad,
                since_ns=recent[0][0] if bad and recent else int(row["time"]),
                cause=cause,
                details={"gaps": [{"start_ns": s, "end_ns": e} for s, e in recent[-10:]]},
            )
        )  # fmt: skip
        days, goal = row.get("retention_days"), row.get("retention_goal_days")
        if days is None or goal is None:
            continue
        short = float(days) < float(goal) - rule.retention_tolerance_days
        observations.append(
            _obs(
                "retention", "retention below goal", rule.retention_severity, row, subject,
                bad=short, since_ns=int(row["time"]),
                cause=f"{float(days):.1f} days kept, goal {float(goal):g} days"
                + ("; add storage or lower the recording bitrate" if short else ""),
                details={"retention_days": float(days), "goal_days": float(goal)},
            )
        )  # fmt: skip
    disks = await query(
        f'SELECT last("status") AS "status", "detail", "free_mb", "capacity_mb" '
        f'FROM "{RECORD_DISK}" WHERE {window} GROUP BY "site", "district", "recorder", "disk"'
    )
    for row in disks:
        if not _reachable(row, sites):
            continue
        status = str(row.get("status"))
        observations.append(
            _obs(
                "recorder_disk", "recorder disk failed", rule.severity, row,
                f"{row['site']}/{row['recorder']}/disk{row['disk']}",
                bad=status in FAILED_DISK, since_ns=int(row["time"]),
                cause=f"disk {row['disk']} {status} ({row.get('detail') or 'no detail'})",
            )
        )  # fmt: skip
    return observations


async def device_checks(
    query: Query, rule: DeviceRule, now_ns: int, sites: Mapping[str, SiteContact]
) -> list[Observation]:
    """Serial and firmware changes within their windows; the camera's clock offset now."""
    observations = []
    for field, window_s, name, title, severity in (
        ("serial", rule.replaced_window, "camera_replaced", "camera replaced", rule.severity),
        ("firmware", rule.firmware_window, "firmware", "camera firmware changed", Severity.WARNING),
    ):
        rows = await query(
            f'SELECT first("{field}") AS "was", last("{field}") AS "now" FROM "{DEVICE}" '
            f"WHERE time <= {now_ns} AND time > {now_ns - to_ns(window_s)} "
            'GROUP BY "site", "district", "camera"'
        )
        for row in rows:
            if not _reachable(row, sites) or row.get("was") is None:
                continue
            changed = row["was"] != row["now"]
            since = await _changed_at(query, field, row, now_ns, window_s) if changed else None
            observations.append(
                _obs(
                    name, title, severity, row, f"{row['site']}/{row['camera']}",
                    bad=changed, since_ns=since,
                    cause=f"{field} {row['was']} is now {row['now']}" if changed
                    else f"{field} {row['now']}",
                    details={"was": row["was"], "now": row["now"]} if changed else {},
                )
            )  # fmt: skip
    clocks = await query(
        f'SELECT last("clock_offset_ms") AS "ms" FROM "{DEVICE}" '
        f"WHERE time <= {now_ns} AND time > {now_ns - to_ns(rule.lookback)} "
        'GROUP BY "site", "district", "camera"'
    )
    for row in clocks:
        if not _reachable(row, sites):
            continue
        off_s = float(row["ms"]) / 1000
        bad = abs(off_s) > rule.max_clock_offset
        observations.append(
            _obs(
                "camera_clock", "camera clock wrong", rule.clock_severity, row,
                f"{row['site']}/{row['camera']}", bad=bad, since_ns=int(row["time"]),
                cause=f"camera clock {'ahead' if off_s > 0 else 'behind'} by {abs(off_s):.0f} s"
                + ("; recordings carry that error: set NTP on the camera" if bad else ""),
                details={"offset_s": round(off_s, 1)},
            )
        )  # fmt: skip
    return observations + await event_checks(query, rule, now_ns, sites)


async def event_checks(
    query: Query, rule: DeviceRule, now_ns: int, sites: Mapping[str, SiteContact]
) -> list[Observation]:
    """The events in each camera's latest device point (only where its subscription is live:
    an unknown state changes nothing), and a reboot within ``reboot_window``."""
    rows = await query(
        f'SELECT last("ok") AS "ok", "events", "events_ok", "events_held" FROM "{DEVICE}" '
        f"WHERE time <= {now_ns} AND time > {now_ns - to_ns(rule.lookback)} "
        'GROUP BY "site", "district", "camera"'
    )
    observations = []
    for row in rows:
        if not _reachable(row, sites) or row.get("events_ok") != 1:
            continue
        active = set(str(row.get("events") or "").split(","))
        held = set(str(row.get("events_held") or "").split(","))
        for event, name, title, what in EVENT_RULES:
            bad = event in active
            cause = f"the camera reports {what}" if bad else f"no {event} reported"
            if event in held:
                cause += (
                    "; a one-shot event: the camera never reports its end, so pantau clears it "
                    "a hold (devices.events.hold_s) after the last report"
                )
            observations.append(
                _obs(
                    name, title, rule.severity, row, f"{row['site']}/{row['camera']}", bad=bad,
                    since_ns=int(row["time"]), cause=cause,
                    details={"one_shot": True} if event in held else {},
                )
            )  # fmt: skip
    window_ns = to_ns(rule.reboot_window)
    reboots = await query(
        f'SELECT last("rebooted_ns") AS "at" FROM "{DEVICE}" '
        f"WHERE time <= {now_ns} AND time > {now_ns - window_ns} "
        'GROUP BY "site", "district", "camera"'
    )
    for row in reboots:
        if not _reachable(row, sites):
            continue
        at = int(row["at"])
        recent = at > now_ns - window_ns
        observations.append(
            _obs(
                "camera_reboot", "camera rebooted", Severity.WARNING, row,
                f"{row['site']}/{row['camera']}", bad=recent, since_ns=at,
                cause=f"the camera started at {_hhmm(at)} (a power cut, a crash or a reboot)"
                if recent else f"running since {_hhmm(at)}",
                details={"started_ns": at},
            )
        )  # fmt: skip
    return observations


async def _changed_at(
    query: Query, field: str, row: Mapping[str, Any], now_ns: int, window_s: float
) -> int | None:
    """Just after the last point that still carried an earlier value."""
    value = str(row["now"]).replace("\\", "\\\\").replace("'", "\\'")
    rows = await query(
        f'SELECT last("{field}") FROM "{DEVICE}" WHERE "{field}" != \'{value}\' '
        f"AND \"site\" = '{row['site']}' AND \"camera\" = '{row['camera']}' "
        f"AND time <= {now_ns} AND time > {now_ns - to_ns(window_s)}"
    )
    return int(rows[0]["time"]) + 1 if rows else None
