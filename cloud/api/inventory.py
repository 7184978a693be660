"""The device inventory: each camera's manufacturer, model, firmware and serial, as JSON or CSV."""

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from cloud.api.deps import influx_client
from cloud.api.schemas import InventoryOut
from cloud.api.timeconv import from_ns
from cloud.auth.deps import read_principal
from cloud.auth.principal import Principal
from cloud.influx import InfluxClient, series_rows
from cloud.schema import CAMERA_TAG, DEVICE, DISTRICT_TAG, SITE_TAG
from pantau.core.wiretypes import ID_PATTERN

CSV_COLUMNS = list(InventoryOut.model_fields)
NS = 1_000_000_000
IDENTITY = ("manufacturer", "model", "firmware", "serial", "hardware")


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


async def inventory(
    client: InfluxClient, *, days: int, site: str | None = None
) -> list[InventoryOut]:
    """Every camera whose device service answered within ``days``: its latest identity (the
    newest point carrying a serial) and its latest answer."""
    where = f"time > now() - {days}d"
    if site:
        where += f" AND \"{SITE_TAG}\" = '{_quote(site)}'"
    group = f'GROUP BY "{SITE_TAG}", "{DISTRICT_TAG}", "{CAMERA_TAG}"'
    fields = ", ".join(f'"{f}"' for f in IDENTITY if f != "serial")
    results = await client.query(
        f'SELECT last("serial") AS "serial", {fields} FROM "{DEVICE}" WHERE {where} {group}; '
        f'SELECT last("ok") AS "ok" FROM "{DEVICE}" WHERE {where} AND "ok" = 1 {group}'
    )
    seen = {(r[SITE_TAG], r[CAMERA_TAG]): int(r["time"]) for r in series_rows(results[1:])}
    out = []
    for row in series_rows(results[:1]):
        key = (row[SITE_TAG], row[CAMERA_TAG])
        out.append(
            InventoryOut(
                site=row[SITE_TAG],
                district=row[DISTRICT_TAG],
                camera=row[CAMERA_TAG],
                **{f: row.get(f) for f in IDENTITY},
                identified=from_ns(int(row["time"])),
                last_seen=from_ns(max(seen.get(key, 0), int(row["time"]))),
            )
        )
    return sorted(out, key=lambda r: (r.district, r.site, r.camera))


def inventory_router() -> APIRouter:
    """The route /api/inventory."""
    router = APIRouter(prefix="/api", tags=["inventory"])

    @router.get(
        "/inventory",
        response_model=list[InventoryOut],
        responses={200: {"content": {"text/csv": {}}}},
    )
    async def device_inventory(
        client: Annotated[InfluxClient, Depends(influx_client)],
        principal: Annotated[Principal, Depends(read_principal)],
        site: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
        days: Annotated[int, Query(ge=1, le=400, description="look this far back")] = 35,
        format: Annotated[Literal["json", "csv"], Query()] = "json",
    ) -> Any:
        """Each camera's manufacturer, model, firmware, serial and when it last answered (only
        the caller's districts)."""
        rows = [
            r for r in await inventory(client, days=days, site=site) if principal.sees(r.district)
        ]
        if format == "csv":
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(r.model_dump(mode="json") for r in rows)
            return Response(
                out.getvalue(),
                media_type="text/csv",
                headers={"Content-Disposition": 'attachment; filename="inventory.csv"'},
            )
        return rows

    return router
