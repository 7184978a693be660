"""Retention policies: raw points for weeks, hourly rollups for years, daily for a decade.

InfluxDB 1.x (and 3.x's v1 API where it allows) gets them by InfluxQL. InfluxDB 2.x has no
CREATE RETENTION POLICY on its v1 API: create the buckets and DBRP mappings it needs by hand
(docs/rollups.md); the failure is logged with that advice, not fatal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cloud.influx import InfluxClient, InfluxQueryError
from cloud.schema import RP_DAILY, RP_HOURLY, RP_RAW

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Retention:
    """How long each kind of point is kept, in days."""

    raw_days: int = 35
    hourly_days: int = 730
    daily_days: int = 3650


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def ensure_policies(influx: InfluxClient, retention: Retention) -> bool:
    """Create or alter the three policies (raw stays the default); False if InfluxDB refused."""
    db = _ident(influx.settings.database)
    existing = {
        row[0]
        for result in await influx.query(f"SHOW RETENTION POLICIES ON {db}", database="")
        for series in result.get("series", []) or []
        for row in series.get("values", [])
    }
    raw_shard = "1d" if retention.raw_days <= 60 else "7d"
    statements = [
        (RP_RAW, f"{retention.raw_days}d", raw_shard, True),
        (RP_HOURLY, f"{retention.hourly_days}d", "30d", False),
        (RP_DAILY, f"{retention.daily_days}d", "365d", False),
    ]
    try:
        for name, duration, shard, default in statements:
            verb = "ALTER" if name in existing else "CREATE"
            replication = "" if verb == "ALTER" else " REPLICATION 1"
            await influx.query(
                f"{verb} RETENTION POLICY {_ident(name)} ON {db} DURATION {duration}"
                f"{replication} SHARD DURATION {shard}{' DEFAULT' if default else ''}",
                database="",
            )
    except InfluxQueryError as exc:
        log.warning(
            "could not set retention policies (%s); on InfluxDB 2.x create the buckets and DBRP "
            "mappings of docs/rollups.md instead",
            exc,
        )
        return False
    return True
