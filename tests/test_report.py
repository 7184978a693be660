"""`pantau report --month` and GET /api/report: a calendar month in Asia/Jakarta per district,
site and camera, maintenance set aside and listed, read through the rollups and equal to the
raw computation; CSV and a printable page."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from cloud.api.app import create_app
from cloud.availability import GroupBy, MaintenanceSpan, compute
from cloud.influx import InfluxClient, InfluxSettings
from cloud.maintenance import StateStore
from cloud.report.monthly import month_span
from cloud.rollup.retention import Retention, ensure_policies
from cloud.rollup.timegrid import HOUR_NS, LocalDays, fixed_offset_s
from cloud.rollup.worker import RollupWorker, WorkerSettings
from cloud.rollup.writer import RollupSpec
from devtools.localsvc import InfluxProcess
from tests.auth import add_user, bearer
from tests.helpers import run_pantau, serving
from tests.history import History

S = 1_000_000_000
JAKARTA = ZoneInfo("Asia/Jakarta")


def _month_and_start() -> tuple[str, int]:
    """A month holding 30 hours of recent history (the current one, or the previous one in the
    month's first days), and where that history starts."""
    start = time.time_ns() - 32 * HOUR_NS
    month = dt.datetime.fromtimestamp(start / S, JAKARTA).strftime("%Y-%m")
    month_start = int(month_span(month, "Asia/Jakarta")[0].timestamp()) * S
    return month, max(start, month_start)


async def test_monthly_report_cli_and_api(
    influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """Numbers equal the raw computation over the month; sites and districts sum cameras; the
    maintenance window is listed and its seconds are set aside."""
    month, t0 = _month_and_start()
    history = History(t0)
    for site, district in (("s1", "d1"), ("s2", "d2")):
        history.lines.append(
            f"site,district={district},site={site} online=1i,probe_interval_s=10.0 {t0}"
        )
        for camera in ("c1", "c2"):
            history.camera(
                site,
                district,
                camera,
                start_s=0,
                end_s=30 * 3600,
                up=lambda t, c=camera: not (c == "c2" and 3600 <= t % 20000 < 5000),
            )
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    store = StateStore(state_url)
    window = store.add(
        site="s1",
        district=None,
        camera=None,
        start=dt.datetime.fromtimestamp((t0 + 5 * HOUR_NS) / S, dt.UTC),
        end=dt.datetime.fromtimestamp((t0 + 8 * HOUR_NS) / S, dt.UTC),
        reason="replace the <switch> & PSU",
        created_by="tech-ani",
    )
    store.close()
    settings = InfluxSettings(url=influxd.url, database=database, timeout_s=60)
    async with InfluxClient(settings) as influx:
        assert await ensure_policies(influx, Retention())
        await history.write(influx)
        spec = RollupSpec(days=LocalDays(fixed_offset_s("Asia/Jakarta")))
        assert (await RollupWorker(influx, spec, WorkerSettings()).step(time.time_ns())).hours
        start, end = month_span(month, "Asia/Jakarta")
        raw = await compute(
            influx,
            start_ns=int(start.timestamp()) * S,
            end_ns=int(end.timestamp()) * S,
            maintenance=[
                MaintenanceSpan(
                    int(window.start.timestamp() * S), int(window.end.timestamp() * S), site="s1"
                )
            ],
            group_by=GroupBy.CAMERA,
            use_rollups=False,
        )

    result = await asyncio.to_thread(
        run_pantau,
        "report", "--month", month, "--influx", influxd.url, "--database", database,
        "--state", state_url, "--out", str(tmp_path / "out"),
        timeout_s=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "4 cameras, 2 sites, 2 districts, 1 maintenance windows" in result.stdout
    text = (tmp_path / "out" / f"availability-{month}.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["level"] for r in rows] == ["district"] * 2 + ["site"] * 2 + ["camera"] * 4
    cameras = {(r["site"], r["camera"]): r for r in rows if r["level"] == "camera"}
    for expected in raw:
        row = cameras[(expected.site, expected.camera)]
        assert row["up_hours"] == f"{expected.up_seconds / 3600:.3f}"
        assert row["down_hours"] == f"{expected.down_seconds / 3600:.3f}"
        assert row["maintenance_hours"] == f"{expected.maintenance_seconds / 3600:.3f}"
    assert cameras[("s1", "c1")]["maintenance_hours"] == "3.000"
    assert cameras[("s2", "c1")]["availability_pct"] == "100.000"
    site_s1 = next(r for r in rows if r["level"] == "site" and r["site"] == "s1")
    assert float(site_s1["up_hours"]) == sum(
        float(cameras[("s1", c)]["up_hours"]) for c in ("c1", "c2")
    )
    page = (tmp_path / "out" / f"availability-{month}.html").read_text()
    assert "replace the &lt;switch&gt; &amp; PSU" in page and "tech-ani" in page
    assert page.count("<tr>") == 2 + 2 + 1 + 4 + 4  # heads and rows of the four tables

    auth = bearer(add_user(state_url, "ani", "viewer"))
    app = create_app(influx=settings, state_url=state_url)
    async with serving(app) as url, httpx.AsyncClient(timeout=30, headers=auth) as http:
        api_csv = await http.get(f"{url}/api/report", params={"month": month, "format": "csv"})
        assert api_csv.status_code == 200 and api_csv.text == text
        data = (await http.get(f"{url}/api/report", params={"month": month})).json()
        assert data["maintenance"][0]["reason"] == "replace the <switch> & PSU"
        assert data["from"] == start.isoformat()
        bad = await http.get(f"{url}/api/report", params={"month": "2026-13"})
        assert bad.status_code == 400 and "2026-13" in bad.json()["detail"]
