"""Maintenance windows of e-government services: the same request/approval/retroactive rules
and audit trail as the cameras'. Through the API on a real InfluxDB: a technician's window
moves no downtime until a supervisor approves it; a retroactive one needs a supervisor and a
reason; a window of one district's path sets that vantage aside; a camera's figures never see
a service's window. With the real evaluator and state database: a service's problems opened
during its window are quiet (not announced)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from cloud.api.app import create_app
from cloud.influx import InfluxClient, InfluxSettings
from cloud.lineproto import join_lines, service_line
from cloud.maintenance import Approval, StateStore, WindowKind
from cloud.problems.config import EvaluatorConfig, RulesConfig, Severity
from cloud.problems.evaluator import Evaluator
from cloud.problems.model import Observation, Verdict
from cloud.problems.service import problems_service
from cloud.problems.store import ProblemStore
from devtools.localsvc import InfluxProcess
from pantau.core.readings import ServiceReading, ServiceStage
from tests.auth import add_user, bearer
from tests.helpers import serving

S, MIN = 10**9, 60 * 10**9
CATALOGUE = {
    "version": 1,
    "services": [
        {"name": "sipd", "opd": "bappeda", "url": "https://sipd.test/"},
        {"name": "simpeg", "opd": "bkpsdm", "url": "https://simpeg.test/"},
    ],
}  # fmt: skip
SITES = {"s1": "d1", "s2": "d2", "s3": "d3"}


def iso(ns: int) -> str:
    """An ISO 8601 UTC time."""
    return dt.datetime.fromtimestamp(ns / S, dt.UTC).isoformat()


async def write_history(influx: InfluxClient, t0: int) -> None:
    """Minutes [t0 - 60, t0 + 40): sipd fails from the cloud and every district; simpeg fails
    from the cloud, s1 and s2 but passes from s3 (2 of 3 districts: down). Agents online and
    reporting."""
    lines = []
    for minute in range(-60, 40):
        ts = t0 + minute * MIN + 5 * S
        for site, district in (("cloud", "cloud"), *SITES.items()):
            for service, ok in (("sipd", False), ("simpeg", site == "s3")):
                reading = ServiceReading(
                    service=service, ts=ts, ok=ok, stage=None if ok else ServiceStage.STATUS,
                    detail="" if ok else "status 503",
                )  # fmt: skip
                lines.append(service_line(reading, site, district))
        for site, district in SITES.items():  # the agents' own reports: they are alive
            lines.append(f"agent,district={district},site={site} backlog=0i {ts}")
    for site, district in SITES.items():
        lines.append(f"site,district={district},site={site} online=1i,seq=1i {t0 - 120 * MIN}")
    await influx.write(join_lines(lines))


async def test_service_windows_follow_the_approval_rules(
    influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """Pending moves nothing, approval moves exactly the window; retroactive needs a
    supervisor and a reason; a d1 technician plans only d1's path; the trail records it."""
    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump(CATALOGUE))
    settings = InfluxSettings(url=influxd.url, database=database)
    t0 = time.time_ns() // MIN * MIN
    async with InfluxClient(settings) as influx:
        await write_history(influx, t0)
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    tech = bearer(add_user(state_url, "tek_all", "technician"))
    spv = bearer(add_user(state_url, "spv_all", "supervisor"))
    tech_d1 = bearer(add_user(state_url, "tek_d1", "technician", ["d1"]))
    spv_d1 = bearer(add_user(state_url, "spv_d1", "supervisor", ["d1"]))
    app = create_app(influx=settings, state_url=state_url, services_catalogue=path)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:

        async def figures(service: str, start: int, end: int) -> dict[str, Any]:
            span = {"from": iso(start), "to": iso(end)}
            got = await http.get("/api/services/availability", params=span, headers=spv)
            assert got.status_code == 200, got.text
            return dict(next(r for r in got.json() if r["service"] == service))

        # A technician's window ahead (t0+5..t0+15 min): requested, moves nothing.
        ahead = {
            "service": "sipd", "start": iso(t0 + 5 * MIN), "end": iso(t0 + 15 * MIN),
            "reason": "migrasi server",
        }  # fmt: skip
        created = await http.post("/api/maintenance", json=ahead, headers=tech)
        assert created.status_code == 201, created.text
        pending = created.json()
        assert (pending["service"], pending["status"], pending["counts"]) == (
            "sipd", "requested", False,
        )  # fmt: skip
        before = await figures("sipd", t0, t0 + 20 * MIN)
        assert (before["down_seconds"], before["maintenance_seconds"]) == (1200, 0), before
        approved = await http.post(f"/api/maintenance/{pending['id']}/approve", headers=spv)
        assert approved.status_code == 200 and approved.json()["counts"]
        after = await figures("sipd", t0, t0 + 20 * MIN)
        assert (after["down_seconds"], after["maintenance_seconds"]) == (600, 600), after
        assert (await figures("simpeg", t0, t0 + 20 * MIN))["maintenance_seconds"] == 0

        # Retroactive (t0-50..t0-40 min): a technician is refused, a supervisor needs a reason.
        late = {**ahead, "start": iso(t0 - 50 * MIN), "end": iso(t0 - 40 * MIN)}
        refused = await http.post("/api/maintenance", json=late, headers=tech)
        assert refused.status_code == 403 and "only a supervisor" in refused.json()["detail"]
        assert (await figures("sipd", t0 - 60 * MIN, t0 - 30 * MIN))["maintenance_seconds"] == 0
        no_reason = await http.post("/api/maintenance", json=late, headers=spv)
        assert no_reason.status_code == 422 and "retroactive_reason" in no_reason.text
        retro = await http.post(
            "/api/maintenance", json={**late, "retroactive_reason": "lupa dicatat"}, headers=spv
        )
        assert retro.status_code == 201 and retro.json()["retroactive"], retro.text
        past = await figures("sipd", t0 - 60 * MIN, t0 - 30 * MIN)
        assert (past["down_seconds"], past["maintenance_seconds"]) == (1200, 600), past

        # One district's path (simpeg from d1, t0+20..t0+30 min): only a d1 window, and it
        # sets s1 aside: the cloud, s2 failing and s3 passing are not "most": up.
        path_window = {
            "service": "simpeg", "start": iso(t0 + 20 * MIN), "end": iso(t0 + 30 * MIN),
            "reason": "ganti router kecamatan",
        }  # fmt: skip
        whole = await http.post("/api/maintenance", json=path_window, headers=tech_d1)
        assert whole.status_code == 403 and "every district" in whole.json()["detail"]
        other = await http.post(
            "/api/maintenance", json={**path_window, "district": "d2"}, headers=tech_d1
        )
        assert other.status_code == 404
        unknown = await http.post(
            "/api/maintenance", json={**path_window, "service": "nope"}, headers=spv
        )
        assert unknown.status_code == 404 and "no service nope" in unknown.json()["detail"]
        mine = await http.post(
            "/api/maintenance", json={**path_window, "district": "d1"}, headers=tech_d1
        )
        assert mine.status_code == 201 and not mine.json()["counts"], mine.text
        assert (await figures("simpeg", t0 + 20 * MIN, t0 + 30 * MIN))["down_seconds"] == 600
        ok = await http.post(f"/api/maintenance/{mine.json()['id']}/approve", headers=spv_d1)
        assert ok.status_code == 200, ok.text
        simpeg = await figures("simpeg", t0 + 20 * MIN, t0 + 30 * MIN)
        assert (simpeg["up_seconds"], simpeg["down_seconds"], simpeg["maintenance_seconds"]) == (
            600, 0, 0,
        )  # fmt: skip

        # Listing: the d1 supervisor sees d1's path window, not the whole-service ones.
        seen = (await http.get("/api/maintenance", headers=spv_d1)).json()
        assert [(w["service"], w["district"]) for w in seen] == [("simpeg", "d1")]
        everything = (await http.get("/api/maintenance", headers=spv)).json()
        assert len(everything) == 3
        # Camera figures never see a service window (a district window would cover d1's).
        cameras = await http.get(
            "/api/availability/maintenance",
            params={"from": iso(t0 - H_NS), "to": iso(t0 + H_NS)},
            headers=spv,
        )
        assert cameras.json() == []

    # The rules: inside d1's path window (t0+25 min) d1 has no vote and simpeg is not down;
    # after it (t0+35 min) simpeg is down.
    settings_p = EvaluatorConfig.model_validate(
        {
            "influx_url": influxd.url,
            "database": database,
            "state_url": state_url,
            "rules": {
                "thresholds": [],
                "services": {"catalogue": str(path), "fresh": 120},
            },
        }
    )
    async with problems_service(settings_p) as service:
        await service.evaluator.evaluate(t0 + 25 * MIN)
        during = {p.key: p for p in service.store.find() if p.resolved_ns is None}
        assert "service-down:simpeg" not in during, sorted(during)
        assert during["service-down:sipd"].in_maintenance is False  # its window ended at +15
        await service.evaluator.evaluate(t0 + 35 * MIN)
        after = {p.key for p in service.store.find() if p.resolved_ns is None}
        assert "service-down:simpeg" in after

    store = StateStore(state_url)
    try:
        assert store.list() == []  # cameras' windows: none
        assert len(store.list(kind=WindowKind.SERVICES)) == 3
        requested = [
            r.details_dict() for r in store.audit.records() if r.event == "maintenance_requested"
        ]
        assert [(d["service"], d["district"], d["retroactive"]) for d in requested] == [
            ("sipd", None, False),
            ("sipd", None, True),
            ("simpeg", "d1", False),
        ]
        assert store.audit.verify().ok
    finally:
        store.close()


H_NS = 3600 * S
T0_NS = 1_800_000_000 * S


def _obs(key: str, rule: str, subject: str, site: str = "", district: str = "") -> Observation:
    return Observation(
        key=key, rule=rule, title=rule, severity=Severity.CRITICAL, verdict=Verdict.BAD,
        site=site, district=district, camera=None, subject=subject, since_ns=T0_NS,
        cause="fails", details={},
    )  # fmt: skip


class Scripted:
    """The observation source seam: the same observations at every instant."""

    def __init__(self, observations: list[Observation]) -> None:
        self.observations = observations

    async def observe(self, now_ns: int) -> list[Observation]:
        """The scripted observations."""
        del now_ns
        return self.observations


async def test_service_problems_in_a_window_are_quiet(tmp_path: Path) -> None:
    """sipd's own window quiets "sipd down"; a window of d1's path to simpeg quiets "simpeg
    unreachable from s1" only, not from s2; a pending window quiets nothing."""
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    maintenance = StateStore(state_url)
    problems = ProblemStore(state_url)
    now = dt.datetime.fromtimestamp(T0_NS / S, dt.UTC)
    span = {"start": now - dt.timedelta(minutes=5), "end": now + dt.timedelta(hours=1)}
    maintenance.add(
        site=None, district=None, camera=None, service="sipd", reason="migrasi",
        created_by="spv", **span,
    )  # fmt: skip
    maintenance.add(
        site=None, district="d1", camera=None, service="simpeg", reason="router",
        created_by="spv", **span,
    )  # fmt: skip
    maintenance.add(
        site=None, district=None, camera=None, service="simpeg", reason="belum disetujui",
        created_by="tek", approval=Approval.PENDING, **span,
    )  # fmt: skip
    source = Scripted(
        [
            _obs("service-down:sipd", "service_down", "sipd"),
            _obs("service-degraded:simpeg:s1", "service_degraded", "simpeg", "s1", "d1"),
            _obs("service-degraded:simpeg:s2", "service_degraded", "simpeg", "s2", "d2"),
        ]
    )
    try:
        evaluator = Evaluator(source, problems, maintenance, RulesConfig(), ["ops"])
        changes = await evaluator.evaluate(T0_NS)
        assert sorted(changes.opened) == sorted(o.key for o in source.observations)
        assert changes.announced == ["service-degraded:simpeg:s2"]
        quiet = {p.key: p.in_maintenance for p in problems.find()}
        assert quiet == {
            "service-down:sipd": True,
            "service-degraded:simpeg:s1": True,
            "service-degraded:simpeg:s2": False,
        }
        # After the windows end, the still-open problems are announced.
        later = await evaluator.evaluate(T0_NS + 2 * H_NS)
        assert sorted(later.announced) == ["service-degraded:simpeg:s1", "service-down:sipd"]
    finally:
        problems.close()
        maintenance.close()
