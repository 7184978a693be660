"""What the automatic policy needs from InfluxDB at one instant: hung cameras (how many
consecutive probes), each site's camera count and UPS state, and the agents' answers."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from cloud.problems.ports import PortVerdict, Query, ports_now
from cloud.remediation.history import Outcome
from cloud.remediation.policy import DAY_NS, SitePower
from cloud.schema import CAMERA, CAMERA_TAG, FRESH_S, REMEDIATION, SENSOR, SITE_TAG

PROBE_LOOKBACK_NS = 3600 * 10**9


# Probe causes of a camera that did not answer at all (pantau.core.contract.Cause values).
SILENT_CAUSES = frozenset({"timeout", "refused", "unreachable"})


async def hung_probes(query: Query, now_ns: int, last_n: int) -> dict[tuple[str, str, str], int]:
    """Per ``(site, district, camera)`` whose port is up and powered now: how many of its latest
    ``last_n`` probes in a row got no answer at all (0 if the latest answered). A camera that
    answers, even to refuse our credentials or with garbage, is not hung: power does not fix
    a wrong password."""
    ports = await ports_now(query, now_ns, FRESH_S)
    rows = await query(
        f'SELECT "up", "cause" FROM "{CAMERA}" WHERE time <= {now_ns} '
        f"AND time > {now_ns - PROBE_LOOKBACK_NS} "
        f'GROUP BY "{SITE_TAG}", "district", "{CAMERA_TAG}" ORDER BY time DESC LIMIT {last_n}'
    )
    series: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        series[(row[SITE_TAG], row.get("district", ""), row[CAMERA_TAG])].append(row)
    hung = {}
    for key, points in series.items():
        port = ports.get((key[0], key[2]))
        if port is None or port.verdict is not PortVerdict.HUNG:
            continue
        if int(points[0]["time"]) < now_ns - int(FRESH_S * 10**9):
            continue  # the site's data is stale: the site problem covers it
        run = 0
        for point in points:  # newest first
            if point["up"] == 1 or point.get("cause") not in SILENT_CAUSES:
                break
            run += 1
        hung[key] = run
    return hung


async def site_power(query: Query, now_ns: int) -> dict[str, SitePower]:
    """Per site: cameras probed in the last hour and the latest UPS readings (if any)."""
    window = f"time <= {now_ns} AND time > {now_ns - PROBE_LOOKBACK_NS}"
    counts = await query(
        f'SELECT last("up") FROM "{CAMERA}" WHERE {window} GROUP BY "{SITE_TAG}", "{CAMERA_TAG}"'
    )
    cameras: dict[str, int] = defaultdict(int)
    for row in counts:
        cameras[row[SITE_TAG]] += 1
    ups = await query(
        f'SELECT last("value") FROM "{SENSOR}" WHERE {window} '
        "AND (\"kind\" = 'ups_on_battery' OR \"kind\" = 'ups_battery_pct') "
        f'GROUP BY "{SITE_TAG}", "kind"'
    )
    readings: dict[str, dict[str, float]] = defaultdict(dict)
    for row in ups:
        readings[row[SITE_TAG]][row["kind"]] = float(row["last"])
    return {
        site: SitePower(
            cameras=n,
            on_battery=None
            if "ups_on_battery" not in readings[site]
            else readings[site]["ups_on_battery"] == 1,
            battery_pct=readings[site].get("ups_battery_pct"),
        )
        for site, n in cameras.items()
    }


async def outcomes(query: Query, now_ns: int) -> list[Outcome]:
    """The agents' answers (``remediation`` points) of the last day that carry a nonce."""
    rows = await query(
        f'SELECT "result", "up_after", "recovery_s", "nonce", "detail", "reason" '
        f'FROM "{REMEDIATION}" WHERE time <= {now_ns} AND time > {now_ns - DAY_NS}'
    )
    return [
        Outcome(
            nonce=str(row["nonce"]),
            result=str(row["result"]),
            up_after=None if row.get("up_after") is None else row["up_after"] == 1,
            recovery_s=None if row.get("recovery_s") is None else float(row["recovery_s"]),
            answered_ns=int(row["time"]),
            detail=row.get("detail") or row.get("reason"),
        )
        for row in rows
        if row.get("nonce")
    ]
