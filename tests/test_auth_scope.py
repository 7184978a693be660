"""District scope and roles, attacked through the API: a technician of d1 cannot list, read,
acknowledge or put in maintenance anything of d2 (guessed ids included: 404, never 403); a
viewer cannot write; without identity there is nothing but the login."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.api.app import create_app
from cloud.auth.principal import Role
from cloud.auth.settings import AuthSettings
from cloud.influx import InfluxClient, InfluxSettings
from cloud.lineproto import format_line
from cloud.problems.config import Severity
from cloud.problems.model import Observation, Verdict
from cloud.problems.store import ProblemStore
from cloud.schema import CAMERA, SITE
from devtools.localsvc import InfluxProcess
from tests.auth import add_user, bearer
from tests.helpers import serving

S = 1_000_000_000
SITES = {"s1": "d1", "s2": "d2"}


@dataclass
class World:
    url: str
    state_url: str
    tokens: dict[str, dict[str, str]]
    problems: dict[str, int]  # district -> its problem id


def _observation(site: str, district: str) -> Observation:
    return Observation(
        key=f"camera:{site}/c1",
        rule="camera",
        title="camera down",
        severity=Severity.MAJOR,
        verdict=Verdict.BAD,
        site=site,
        district=district,
        camera="c1",
        subject=f"{site}/c1",
        since_ns=time.time_ns() - 300 * S,
        cause="refused at tcp",
    )


async def _seed_influx(influxd: InfluxProcess, database: str) -> None:
    now = time.time_ns()
    lines = []
    for site, district in SITES.items():
        tags = {"site": site, "district": district}
        lines.append(format_line(SITE, tags, {"online": 1}, now - 600 * S))
        for back in range(0, 600, 10):
            fields: dict[str, int | str | None] = {
                "up": 1,
                "cause": "ok",
                "since": now - 3600 * S,
                "state": "up",
            }
            lines.append(format_line(CAMERA, {**tags, "camera": "c1"}, fields, now - back * S))
    async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as client:
        await client.write("\n".join(lines).encode())


@pytest.fixture
async def world(influxd: InfluxProcess, database: str, tmp_path: Path) -> AsyncIterator[World]:
    """Sites s1 (d1) and s2 (d2), one open problem each, and people of every kind."""
    await _seed_influx(influxd, database)
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    store = ProblemStore(state_url)
    ids = {}
    for site, district in SITES.items():
        opened = store.open(
            _observation(site, district), now_ns=time.time_ns(), in_maintenance=False
        )
        assert opened is not None
        ids[district] = opened.id
    store.close()
    tokens = {
        name: bearer(add_user(state_url, name, role, districts))
        for name, role, districts in (
            ("tech1", Role.TECHNICIAN, ["d1"]),
            ("sup1", Role.SUPERVISOR, ["d1"]),
            ("viewer", Role.VIEWER, None),
            ("admin", Role.ADMIN, None),
        )
    }
    app = create_app(
        influx=InfluxSettings(url=influxd.url, database=database),
        state_url=state_url,
        default_probe_interval_s=10.0,
    )
    async with serving(app) as url:
        yield World(url, state_url, tokens, ids)


def _window(**scope: str) -> dict[str, Any]:
    start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    return {
        **scope,
        "start": start.isoformat(),
        "end": (start + dt.timedelta(hours=2)).isoformat(),
        "reason": "pole repair",
    }


async def test_a_d1_technician_sees_and_touches_nothing_of_d2(world: World) -> None:
    """Lists, CSV, report, ack and maintenance: d2 does not exist for tech1, ids guessed or not."""
    d1, d2 = world.problems["d1"], world.problems["d2"]
    async with (
        httpx.AsyncClient(base_url=world.url, headers=world.tokens["tech1"], timeout=30) as tech,
        httpx.AsyncClient(base_url=world.url, headers=world.tokens["admin"], timeout=30) as admin,
        httpx.AsyncClient(base_url=world.url, headers=world.tokens["sup1"], timeout=30) as sup1,
    ):
        # The admin sees both districts: the data is there to be hidden.
        assert {s["site"] for s in (await admin.get("/api/sites")).json()} == {"s1", "s2"}
        assert {p["id"] for p in (await admin.get("/api/problems")).json()} == {d1, d2}

        assert [s["site"] for s in (await tech.get("/api/sites")).json()] == ["s1"]
        assert {c["district"] for c in (await tech.get("/api/cameras")).json()} == {"d1"}
        for state in ("open", "unresolved", None):
            params = {"state": state} if state else {}
            listed = (await tech.get("/api/problems", params=params)).json()
            assert [p["id"] for p in listed] == [d1], state

        # Availability: JSON, CSV, per district, and asking for s2 by name.
        now = dt.datetime.now(dt.UTC)
        span = {"from": (now - dt.timedelta(minutes=9)).isoformat(), "to": now.isoformat()}
        assert {r["site"] for r in (await admin.get("/api/availability", params=span)).json()} == {
            "s1",
            "s2",
        }
        rows = (await tech.get("/api/availability", params=span)).json()
        assert {r["district"] for r in rows} == {"d1"}
        by_district = (
            await tech.get("/api/availability", params={**span, "group_by": "district"})
        ).json()
        assert [r["district"] for r in by_district] == ["d1"]
        assert (await tech.get("/api/availability", params={**span, "site": "s2"})).json() == []
        assert (await tech.get("/api/availability", params={**span, "site": "nope"})).json() == []
        table = (await tech.get("/api/availability", params={**span, "format": "csv"})).text
        assert {r["district"] for r in csv.DictReader(io.StringIO(table))} == {"d1"}

        # Windows: the admin plans one in d2 (by site) and one for all of d2.
        by_site = (await admin.post("/api/maintenance", json=_window(site="s2"))).json()
        by_district_w = (await admin.post("/api/maintenance", json=_window(district="d2"))).json()
        assert (await tech.get("/api/maintenance")).json() == []
        assert (await tech.get("/api/maintenance", params={"site": "s2"})).json() == []

        # The monthly report: only d1, in every format.
        month = now.astimezone(dt.timezone(dt.timedelta(hours=7))).strftime("%Y-%m")
        report = (await tech.get("/api/report", params={"month": month})).json()
        assert [r["district"] for r in report["districts"]] == ["d1"]
        assert {r["site"] for r in report["sites"]} == {"s1"}
        assert report["maintenance"] == []
        full = (await admin.get("/api/report", params={"month": month})).json()
        assert len(full["maintenance"]) == 2 and len(full["districts"]) == 2
        report_csv = (await tech.get("/api/report", params={"month": month, "format": "csv"})).text
        assert "d2" not in report_csv and "s2" not in report_csv and "d1" in report_csv
        page = (await tech.get("/api/report", params={"month": month, "format": "html"})).text
        assert "s2" not in page and "s1" in page

        # Acknowledging d2's problem, or guessing ids: the same 404 as an id that never was.
        missing = await tech.post("/api/problems/999999/ack", json={})
        assert missing.status_code == 404
        for guess in range(1, 40):
            answer = await tech.post(f"/api/problems/{guess}/ack", json={"comment": "x"})
            if guess == d1:
                assert answer.status_code == 200
                continue
            assert answer.status_code == 404, (guess, answer.text)
            assert answer.json() == {**missing.json(), "detail": f"no problem {guess}"}
        d2_now = next(p for p in (await admin.get("/api/problems")).json() if p["id"] == d2)
        assert d2_now["state"] == "open" and d2_now["acknowledged_by"] is None

        # Maintenance in d2: by site, by district, or a d2 site claimed to be in d1.
        for body in (_window(site="s2"), _window(district="d2"), _window(site="s2", camera="c1")):
            refused = await tech.post("/api/maintenance", json=body)
            assert refused.status_code == 404, (body, refused.text)
        assert (await tech.post("/api/maintenance", json=_window(site="nope"))).status_code == 404
        mixed = await tech.post("/api/maintenance", json=_window(site="s2", district="d1"))
        assert mixed.status_code == 404
        own = await tech.post("/api/maintenance", json=_window(site="s1"))
        assert own.status_code == 201, own.text
        assert (own.json()["district"], own.json()["created_by"]) == ("d1", "tech1")
        assert [w["id"] for w in (await tech.get("/api/maintenance")).json()] == [own.json()["id"]]

        # A d1 supervisor may remove windows, but d2's do not exist for them.
        gone = await sup1.delete("/api/maintenance/999999")
        for window in (by_site, by_district_w):
            answer = await sup1.delete(f"/api/maintenance/{window['id']}")
            assert answer.status_code == 404
            assert answer.json()["detail"] == f"no maintenance window {window['id']}"
            assert answer.json()["title"] == gone.json()["title"]
        assert len((await admin.get("/api/maintenance")).json()) == 3


async def test_a_viewer_cannot_write(world: World) -> None:
    """Every write by a viewer of every district: 403, and nothing changed."""
    async with httpx.AsyncClient(base_url=world.url, headers=world.tokens["viewer"]) as viewer:
        assert len((await viewer.get("/api/problems")).json()) == 2  # reads work
        ack = await viewer.post(f"/api/problems/{world.problems['d1']}/ack", json={})
        window = await viewer.post("/api/maintenance", json=_window(site="s1"))
        delete = await viewer.delete("/api/maintenance/1")
        for answer in (ack, window, delete):
            assert answer.status_code == 403, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
        assert "viewer" in ack.json()["detail"]
        problems = (await viewer.get("/api/problems")).json()
        assert {p["state"] for p in problems} == {"open"}
        assert (await viewer.get("/api/maintenance")).json() == []


async def test_without_identity_there_is_only_the_login(world: World) -> None:
    """Every API route answers 401 problem+json; / sends to /login; the login page and its
    files load; every response forbids framing."""
    async with httpx.AsyncClient(base_url=world.url) as http:
        spec = (await http.get("/openapi.json")).json()
        routes = [
            (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
            for path, operations in spec["paths"].items()
            for method in operations
            if not path.startswith("/auth/")
        ]
        assert len(routes) >= 8
        for method, path in routes:
            params = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
            params |= {"month": "2026-01"}
            answer = await http.request(method, path, params=params, json={})
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert (await http.get("/auth/session")).status_code == 401
        root = await http.get("/")
        assert (root.status_code, root.headers["location"]) == (303, "/login")
        login = await http.get("/login")
        assert login.status_code == 200 and 'id="login"' in login.text
        policy = login.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy and "<script>" not in login.text
        assert login.headers["x-frame-options"] == "DENY"
        for name in ("login.js", "technician.js", "pantau.css"):
            assert (await http.get(f"/static/{name}")).status_code == 200
        assert (await http.get("/static/technician.html")).status_code == 404


async def test_public_read_answers_reads_only(
    influxd: InfluxProcess, database: str, tmp_path: Path, world: World
) -> None:
    """--public-read: reads as a viewer of every district without identity; writes still 401;
    a wrong token is still refused."""
    app = create_app(
        influx=InfluxSettings(url=influxd.url, database=database),
        state_url=world.state_url,
        auth=AuthSettings(public_read=True),
    )
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        assert len((await http.get("/api/problems")).json()) == 2
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/auth/session")).json()["via"] == "public"
        ack = await http.post(f"/api/problems/{world.problems['d1']}/ack", json={})
        assert ack.status_code == 401
        wrong = await http.get("/api/problems", headers={"Authorization": "Bearer pantau_1_x"})
        assert wrong.status_code == 401
