"""Accepting a camera's changed view through the API: a technician of the camera's district
records it in the audit trail; another district's camera is 404, a viewer 403, a camera whose
view did not change 409. And the wire: a minor-0 collector is sent ``blurred`` for
``view_changed`` and no ``view_score``."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cloud.api.app import create_app
from cloud.audit import AuditTrail
from cloud.auth.principal import Role
from cloud.influx import InfluxClient, InfluxSettings
from cloud.lineproto import format_line
from cloud.schema import STREAM
from devtools.localsvc import InfluxProcess
from edge_agent.wire import encode_batch
from pantau.core.contract import CameraReading, Cause, ReadingBatch, StreamFault, StreamReading
from tests.auth import add_user, bearer
from tests.helpers import serving

S = 1_000_000_000
FAULTS = {("s1", "moved"): "view_changed", ("s1", "fine"): "none", ("s2", "moved"): "view_changed"}
DISTRICTS = {"s1": "d1", "s2": "d2"}


@dataclass
class World:
    url: str
    state_url: str
    tokens: dict[str, dict[str, str]]


@pytest.fixture
async def world(influxd: InfluxProcess, database: str, tmp_path: Path) -> AsyncIterator[World]:
    """Stream probes of three cameras in two districts, and a technician, a viewer of d1."""
    now = time.time_ns()
    lines = [
        format_line(
            STREAM,
            {"site": site, "district": DISTRICTS[site], "camera": camera},
            {"fault": fault, "ok": 1, "view_score": 0.93 if fault != "none" else 0.05},
            now - 60 * S,
        )
        for (site, camera), fault in FAULTS.items()
    ]
    settings = InfluxSettings(url=influxd.url, database=database)
    async with InfluxClient(settings) as client:
        await client.write("\n".join(lines).encode())
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    tokens = {
        name: bearer(add_user(state_url, name, role, ["d1"]))
        for name, role in (("tech1", Role.TECHNICIAN), ("viewer1", Role.VIEWER))
    }
    app = create_app(influx=settings, state_url=state_url, default_probe_interval_s=10.0)
    async with serving(app) as url:
        yield World(url, state_url, tokens)


async def test_a_technician_accepts_a_changed_view_of_its_district(world: World) -> None:
    """200 with the score it accepted and an audit row naming the technician; 404 for d2's
    camera and an unknown one, 409 for an unchanged view, 403 for a viewer."""
    async with (
        httpx.AsyncClient(base_url=world.url, headers=world.tokens["tech1"], timeout=30) as tech,
        httpx.AsyncClient(base_url=world.url, headers=world.tokens["viewer1"], timeout=30) as view,
    ):
        body = {"comment": "re-aimed at the junction on purpose"}
        accepted = await tech.post("/api/cameras/s1/moved/view/accept", json=body)
        assert accepted.status_code == 200, accepted.text
        out = accepted.json()
        assert (out["district"], out["view_score"], out["accepted_by"]) == ("d1", 0.93, "tech1")
        other = await tech.post("/api/cameras/s2/moved/view/accept", json={})
        unknown = await tech.post("/api/cameras/s1/nope/view/accept", json={})
        unchanged = await tech.post("/api/cameras/s1/fine/view/accept", json={})
        denied = await view.post("/api/cameras/s1/moved/view/accept", json={})
    assert (other.status_code, unknown.status_code) == (404, 404)
    assert other.json()["detail"] == "no stream-probed camera s2/moved"
    assert unchanged.status_code == 409 and "has not changed" in unchanged.json()["detail"]
    assert denied.status_code == 403
    trail = AuditTrail(world.state_url)
    try:
        rows = [r for r in trail.records() if r.event == "view_accepted"]
    finally:
        trail.close()
    assert len(rows) == 1 and rows[0].id == out["audit_id"]
    assert (rows[0].actor, rows[0].target) == ("tech1", "camera:s1/moved")
    assert json.loads(rows[0].details)["comment"] == body["comment"]


def test_a_minor_zero_collector_is_sent_blurred_for_a_changed_view() -> None:
    """view_changed becomes blurred in fault, faults (once) and a camera's picture; view_score
    is left out; minor 1 keeps both."""
    stream = StreamReading(
        camera="c1",
        ts=1,
        fault=StreamFault.VIEW_CHANGED,
        faults=[StreamFault.VIEW_CHANGED, StreamFault.BLURRED],
        view_score=0.9,
    )
    camera = CameraReading(camera="c1", ts=1, up=True, cause=Cause.OK, picture=stream.fault)
    rows = [
        ("streams", stream.model_dump_json().encode()),
        ("cameras", camera.model_dump_json().encode()),
    ]
    old = json.loads(encode_batch("s1", "d1", rows, minor=0))
    assert old["streams"][0]["fault"] == "blurred" and old["streams"][0]["faults"] == ["blurred"]
    assert "view_score" not in old["streams"][0] and old["cameras"][0]["picture"] == "blurred"
    new = ReadingBatch.model_validate_json(encode_batch("s1", "d1", rows, minor=1))
    assert new.streams[0].fault is StreamFault.VIEW_CHANGED and new.streams[0].view_score == 0.9
    assert new.cameras[0].picture is StreamFault.VIEW_CHANGED
