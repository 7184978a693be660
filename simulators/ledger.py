"""Ground truth: every reading the agents produced (their queue's ledger) against InfluxDB."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from cloud.influx import InfluxClient, series_rows

Identity = tuple[Any, ...]


@dataclass
class LedgerComparison:
    """How InfluxDB matches the ledger.

    ``lost``: ledger readings missing from InfluxDB or stored with another value.
    ``dup``: points in InfluxDB that no ledger reading accounts for (a reading stored twice
    under two identities, or invented).
    """

    readings: int = 0
    stored: int = 0
    counted: int = 0
    lost: int = 0
    dup: int = 0
    queued: int = 0
    lost_examples: list[Identity] = field(default_factory=list)
    dup_examples: list[Identity] = field(default_factory=list)

    def summary(self) -> str:
        """Counts behind the verdict."""
        return (
            f"ledger={self.readings} stored={self.stored} influxql_count={self.counted} "
            f"still_queued={self.queued}"
        )

    def line(self) -> str:
        """The one-line verdict."""
        return f"lost={self.lost} dup={self.dup} readings={self.readings}"


def read_ledger(queue_path: Path, site: str) -> tuple[dict[Identity, Any], int]:
    """The ledger of one site as ``identity -> value``, and how many readings are still queued."""
    db = sqlite3.connect(f"file:{queue_path}?mode=ro", uri=True)
    try:
        truth: dict[Identity, Any] = {}
        for kind, _ts, body in db.execute("SELECT kind, ts, body FROM ledger"):
            item = orjson.loads(body)
            if kind == "cameras":
                key: Identity = ("camera", site, item["camera"], item["ts"])
                truth[key] = (1 if item["up"] else 0, item["cause"])
            elif kind == "sensors":
                truth[("sensor", site, item["sensor"], item["kind"], item["ts"])] = item["value"]
            elif kind == "agent":
                truth[("agent", site, item["ts"])] = item["backlog"]
        queued = db.execute("SELECT COUNT(*) FROM readings WHERE kind != 'gaps'").fetchone()[0]
    finally:
        db.close()
    return truth, int(queued)


async def read_stored(influx: InfluxClient, site: str) -> dict[Identity, Any]:
    """What InfluxDB holds for one site, keyed like the ledger."""
    stored: dict[Identity, Any] = {}
    where = f"WHERE \"site\" = '{site}'"
    for row in series_rows(
        await influx.query(f'SELECT "up", "cause" FROM "camera" {where} GROUP BY "camera"')
    ):
        stored[("camera", site, row["camera"], row["time"])] = (row["up"], row["cause"])
    for row in series_rows(
        await influx.query(f'SELECT "value" FROM "sensor" {where} GROUP BY "sensor", "kind"')
    ):
        stored[("sensor", site, row["sensor"], row["kind"], row["time"])] = row["value"]
    for row in series_rows(await influx.query(f'SELECT "backlog" FROM "agent" {where}')):
        stored[("agent", site, row["time"])] = row["backlog"]
    return stored


async def count_stored(influx: InfluxClient, site: str) -> int:
    """InfluxQL ``count()`` of a site's camera, sensor and agent points."""
    total = 0
    for measurement, fieldname in (("camera", "up"), ("sensor", "value"), ("agent", "backlog")):
        rows = series_rows(
            await influx.query(
                f'SELECT count("{fieldname}") FROM "{measurement}" WHERE "site" = \'{site}\''
            )
        )
        total += int(rows[0]["count"]) if rows else 0
    return total


async def compare(influx: InfluxClient, queues: dict[str, Path]) -> LedgerComparison:
    """Compare every site's ledger with InfluxDB."""
    result = LedgerComparison()
    for site, path in sorted(queues.items()):
        truth, queued = read_ledger(path, site)
        stored = await read_stored(influx, site)
        result.readings += len(truth)
        result.stored += len(stored)
        result.counted += await count_stored(influx, site)
        result.queued += queued
        for key, value in truth.items():
            if key not in stored or stored[key] != value:
                result.lost += 1
                if len(result.lost_examples) < 5:
                    result.lost_examples.append(key)
        for key in stored.keys() - truth.keys():
            result.dup += 1
            if len(result.dup_examples) < 5:
                result.dup_examples.append(key)
    return result
