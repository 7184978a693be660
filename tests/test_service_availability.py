"""Service availability on a real InfluxDB with known ground truth: the per-connection rule for
a district's agent (a late Last Will of an older connection does not cut it off), the monthly
report's CSV rows per service and per OPD, and district scope on /api/services."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import yaml

from cloud.api.app import create_app
from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.lineproto import join_lines, service_line
from cloud.report.monthly import month_span
from cloud.services.availability import service_availability
from cloud.services.catalogue import load_catalogue
from devtools.localsvc import InfluxProcess
from pantau.core.readings import ServiceReading, ServiceStage
from tests.auth import add_user, bearer
from tests.helpers import run_pantau, serving

S, MIN = 10**9, 60 * 10**9
CATALOGUE = {
    "version": 1,
    "services": [
        {"name": "sipd", "title": "SIPD", "opd": "bappeda", "url": "https://sipd.test/"},
        {"name": "simpeg", "title": "SIMPEG", "opd": "bkpsdm", "url": "https://simpeg.test/"},
        {"name": "siskeudes", "title": "SISKEUDES", "opd": "bkpsdm",
         "url": "https://siskeudes.test/"},
    ],
}  # fmt: skip
SITES = {"s1": "d1", "s2": "d2", "s3": "d3"}


def reading(service: str, ts: int, ok: bool) -> ServiceReading:
    """One probe's result."""
    return ServiceReading(
        service=service, ts=ts, ok=ok, stage=None if ok else ServiceStage.STATUS,
        detail="" if ok else "status 503",
    )  # fmt: skip


def catalogue_file(tmp_path: Path) -> Path:
    """The catalogue above, as a file."""
    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump(CATALOGUE))
    return path


async def test_a_late_will_of_an_old_connection_does_not_cut_the_district_off(
    influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """simpeg fails from the cloud, s1 and s2 and passes from s3: down while s1 counts, up with
    s1 set aside. s1 reconnects at 2 min (birth seq 2); the will of connection 1 arrives at
    3 min: s1 stays online, every minute to 6 is down. At 6 min connection 2's own will comes:
    s1 is offline from then, minutes 6-9 are up."""
    t0 = (time.time_ns() // MIN - 120) * MIN
    lines = [
        "site,district=d1,site=s1 online=1i,seq=1i " + str(t0 - 10 * MIN),
        "site,district=d1,site=s1 online=1i,seq=2i " + str(t0 + 2 * MIN),
        "site,district=d1,site=s1 online=0i,seq=1i " + str(t0 + 3 * MIN),  # late, old
        "site,district=d1,site=s1 online=0i,seq=2i " + str(t0 + 6 * MIN),  # its own
        *(f"site,district={d},site={s} online=1i,seq=1i {t0 - 10 * MIN}" for s, d in SITES.items()
          if s != "s1"),
    ]  # fmt: skip
    for minute in range(10):
        ts = t0 + minute * MIN + 20 * S
        for site, district in (("cloud", "cloud"), *SITES.items()):
            lines.append(service_line(reading("simpeg", ts, site == "s3"), site, district))
    settings = InfluxSettings(url=influxd.url, database=database)
    async with InfluxClient(settings) as influx:
        await influx.write(join_lines(lines))

        async def query(q: str) -> list[dict[str, Any]]:
            return series_rows(await influx.query(q))

        catalogue = load_catalogue(catalogue_file(tmp_path))
        simpeg = (await service_availability(query, catalogue, t0, t0 + 10 * MIN))["simpeg"]
    assert (simpeg.down_s, simpeg.up_s, simpeg.unknown_s) == (360, 240, 0), simpeg


async def test_a_district_user_sees_the_cloud_and_its_own_vantage_only(
    influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """The last 30 minutes: sipd fails from the cloud, s2 and s3 but passes from s1; siskeudes
    is probed only from s2, which fails it. The admin reads both down; a d1 technician reads
    sipd up (the cloud alone failing is not "down" beside d1's success) and siskeudes unknown:
    nothing of d2's or d3's failures reaches them, in the state or in the seconds."""
    now = time.time_ns() // MIN * MIN
    lines = []
    for minute in range(30):
        ts = now - (30 - minute) * MIN + 5 * S
        for site, district in (("cloud", "cloud"), *SITES.items()):
            lines.append(service_line(reading("sipd", ts, site == "s1"), site, district))
            lines.append(service_line(reading("simpeg", ts, True), site, district))
        lines.append(service_line(reading("siskeudes", ts, False), "s2", "d2"))
    for site, district in SITES.items():
        lines.append(f"site,district={district},site={site} online=1i,seq=1i {now - 60 * MIN}")
    settings = InfluxSettings(url=influxd.url, database=database)
    async with InfluxClient(settings) as influx:
        await influx.write(join_lines(lines))
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    admin = bearer(add_user(state_url, "admin", "admin"))
    tech_d1 = bearer(add_user(state_url, "tek_d1", "technician", ["d1"]))
    app = create_app(
        influx=settings, state_url=state_url, services_catalogue=catalogue_file(tmp_path)
    )
    span = {"from": iso(now - 30 * MIN), "to": iso(now)}
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:

        async def states(who: dict[str, str]) -> dict[str, str]:
            got = await http.get("/api/services", headers=who)
            assert got.status_code == 200, got.text
            return {s["name"]: s["state"] for s in got.json()}

        async def seconds(who: dict[str, str]) -> dict[str, tuple[float, float, float]]:
            got = await http.get("/api/services/availability", params=span, headers=who)
            return {
                r["service"] or r["opd"]: (r["up_seconds"], r["down_seconds"], r["unknown_seconds"])
                for r in got.json()
            }

        assert await states(admin) == {"sipd": "down", "simpeg": "up", "siskeudes": "down"}
        assert await states(tech_d1) == {"sipd": "up", "simpeg": "up", "siskeudes": "unknown"}
        everyone, d1 = await seconds(admin), await seconds(tech_d1)
        assert everyone["sipd"] == (0, 1800, 0) and everyone["siskeudes"] == (0, 1800, 0)
        assert d1["sipd"] == (1800, 0, 0) and d1["siskeudes"] == (0, 0, 1800)
        assert d1["bkpsdm"] == (1800, 0, 1800)  # simpeg up, siskeudes unknown
        # The monthly report's services are judged the same way for each reader.
        first = dt.datetime.fromtimestamp((now - 30 * MIN) / S, ZoneInfo("Asia/Jakarta"))
        month = first.strftime("%Y-%m")
        if dt.datetime.fromtimestamp(now / S, ZoneInfo("Asia/Jakarta")).strftime("%Y-%m") == month:
            for who, down in ((admin, 1800), (tech_d1, 0)):
                got = await http.get("/api/report", params={"month": month}, headers=who)
                rows = {r["service"]: r for r in got.json()["services"]["services"]}
                assert rows["sipd"]["down_seconds"] == down, rows["sipd"]


def iso(ns: int) -> str:
    """An ISO 8601 UTC time."""
    return dt.datetime.fromtimestamp(ns / S, dt.UTC).isoformat()


def _last_month_t0() -> tuple[str, int]:
    """The 10th of last month, 00:00 in Asia/Jakarta (a past month), and its month."""
    jakarta = ZoneInfo("Asia/Jakarta")
    first = dt.datetime.now(jakarta).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    t0 = (first - dt.timedelta(days=20)).replace(day=10)
    return t0.strftime("%Y-%m"), int(t0.timestamp()) * S


async def test_the_report_csv_has_a_row_per_service_and_per_opd(
    influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """Last month, from t0 on the 10th: sipd up from every vantage for 40 minutes, then down
    everywhere for 20; siskeudes down for 30 minutes with an approved window over minutes
    10-20; simpeg never probed. The CSV's service and OPD rows give exactly those hours."""
    month, t0 = _last_month_t0()
    lines = []
    for minute in range(60):
        ts = t0 + minute * MIN + 5 * S
        for site, district in (("cloud", "cloud"), *SITES.items()):
            lines.append(service_line(reading("sipd", ts, minute < 40), site, district))
            if minute < 30:
                lines.append(service_line(reading("siskeudes", ts, False), site, district))
    for site, district in SITES.items():
        lines.append(f"site,district={district},site={site} online=1i,seq=1i {t0 - 60 * MIN}")
    settings = InfluxSettings(url=influxd.url, database=database)
    async with InfluxClient(settings) as influx:
        await influx.write(join_lines(lines))
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    spv = bearer(add_user(state_url, "spv", "supervisor"))
    app = create_app(
        influx=settings, state_url=state_url, services_catalogue=catalogue_file(tmp_path)
    )
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        window = {
            "service": "siskeudes", "start": iso(t0 + 10 * MIN), "end": iso(t0 + 20 * MIN),
            "reason": "pindah server", "retroactive_reason": "dicatat dari laporan",
        }  # fmt: skip
        created = await http.post("/api/maintenance", json=window, headers=spv)
        assert created.status_code == 201, created.text
        got = await http.get("/api/report", params={"month": month, "format": "csv"}, headers=spv)
        assert got.status_code == 200, got.text
        # The service's window is listed in the report beside the cameras' windows, also for a
        # district's reader (it stands behind the service figures every reader sees).
        d1 = bearer(add_user(state_url, "tek_d1", "technician", ["d1"]))
        for reader in (spv, d1):
            listed = (await http.get("/api/report", params={"month": month}, headers=reader)).json()
            assert [(m["service"], m["retroactive"]) for m in listed["maintenance"]] == [
                ("siskeudes", True)
            ]
        page = await http.get("/api/report", params={"month": month, "format": "html"}, headers=d1)
        assert "<td>siskeudes</td>" in page.text
    rows = list(csv.DictReader(io.StringIO(got.text)))
    start, end = month_span(month, "Asia/Jakarta")
    month_h = (end - start).total_seconds() / 3600

    def hours(seconds: float) -> str:
        return f"{seconds / 3600:.3f}"

    services = {r["service"]: r for r in rows if r["level"] == "service"}
    opds = {r["opd"]: r for r in rows if r["level"] == "opd"}
    assert list(services) == ["sipd", "simpeg", "siskeudes"] and list(opds) == ["bappeda", "bkpsdm"]
    sipd = services["sipd"]
    assert (sipd["opd"], sipd["up_hours"], sipd["down_hours"], sipd["maintenance_hours"]) == (
        "bappeda", hours(2400), hours(1200), hours(0),
    )  # fmt: skip
    assert sipd["unknown_hours"] == f"{month_h - 1:.3f}"
    assert sipd["availability_pct"] == f"{100 * 2400 / 3600:.3f}"
    assert sipd["availability_strict_pct"] == f"{100 * 2400 / (month_h * 3600 - 0):.3f}"
    sisk = services["siskeudes"]
    assert (sisk["down_hours"], sisk["maintenance_hours"], sisk["availability_pct"]) == (
        hours(1200), hours(600), "0.000",
    )  # fmt: skip
    assert services["simpeg"]["unknown_hours"] == f"{month_h:.3f}"
    assert services["simpeg"]["availability_pct"] == ""  # nothing judged
    assert opds["bappeda"]["up_hours"] == sipd["up_hours"]
    assert (opds["bkpsdm"]["down_hours"], opds["bkpsdm"]["maintenance_hours"]) == (
        hours(1200), hours(600),
    )  # fmt: skip
    assert opds["bkpsdm"]["unknown_hours"] == f"{2 * month_h - 0.5:.3f}"
    assert all(r["district"] == r["site"] == r["camera"] == "" for r in [*services.values()])
    # `pantau report --services` writes the same rows.
    result = await asyncio.to_thread(
        run_pantau,
        "report", "--month", month, "--influx", influxd.url, "--database", database,
        "--state", state_url, "--out", str(tmp_path / "out"), "--services",
        str(catalogue_file(tmp_path)),
        timeout_s=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    written = (tmp_path / "out" / f"availability-{month}.csv").read_text()
    by_cli = [r for r in csv.DictReader(io.StringIO(written)) if r["level"] in ("service", "opd")]
    assert by_cli == [*services.values(), *opds.values()]
