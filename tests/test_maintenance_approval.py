"""Maintenance a supervisor signs: a technician's window counts only once approved; a window
that already began needs a supervisor and a reason, and is flagged with the seconds it moved;
cancelling keeps the window and the cancellation in the record; old windows migrate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from cloud.api.app import create_app
from cloud.auth.principal import Principal, Role
from cloud.influx import InfluxClient, InfluxSettings
from cloud.maintenance import Approval, StateStore, WindowStateError, WindowStatus
from cloud.maintenance_rules import (
    MaintenancePolicy,
    NotAllowedError,
    ReasonRequiredError,
    WindowRequest,
    approve_window,
    cancel_window,
    request_window,
)
from cloud.statedb import make_engine
from devtools.localsvc import InfluxProcess
from tests.auth import add_user, bearer
from tests.helpers import serving
from tests.history import History

S = 1_000_000_000
H = 3600
NOW = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)
TECH = Principal(username="tek_ani", role=Role.TECHNICIAN, districts=frozenset({"d1"}))
SUPER = Principal(username="spv_budi", role=Role.SUPERVISOR, districts=frozenset({"d1"}))
POLICY = MaintenancePolicy()


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    """A state database of this test's own (SQLite)."""
    return StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}")


def ask(start_h: float, hours: float = 2, retro: str | None = None) -> WindowRequest:
    """A window of site s1 starting ``start_h`` hours from NOW."""
    start = NOW + dt.timedelta(hours=start_h)
    return WindowRequest(
        site="s1", district="d1", camera=None, start=start,
        end=start + dt.timedelta(hours=hours), reason="ganti PSU", retroactive_reason=retro,
    )  # fmt: skip


def events(store: StateStore) -> list[tuple[str, str, str]]:
    """(event, actor, target) of every audit row."""
    return [(r.event, r.actor, r.target) for r in store.audit.records()]


def test_a_technicians_retroactive_window_is_refused(store: StateStore) -> None:
    """Starting an hour ago: refused, nothing stored, nothing in the trail; 4 minutes ago is
    still 'now' (typing time) and is accepted as an ordinary request."""
    with pytest.raises(NotAllowedError, match="only a supervisor"):
        request_window(store, TECH, ask(-1, retro="lupa"), POLICY, now=NOW)
    assert store.list() == [] and events(store) == []
    recent = request_window(store, TECH, ask(-4 / 60), POLICY, now=NOW)
    assert (recent.retroactive, recent.status) == (False, WindowStatus.REQUESTED)


def test_a_supervisors_retroactive_window_needs_a_reason_and_is_flagged(
    store: StateStore,
) -> None:
    """Without retroactive_reason: refused. With it: approved at once, flagged, the reason kept,
    requested and approved rows in the trail."""
    with pytest.raises(ReasonRequiredError, match="retroactive_reason"):
        request_window(store, SUPER, ask(-26), POLICY, now=NOW)
    window = request_window(store, SUPER, ask(-26, retro="laporan kertas"), POLICY, now=NOW)
    assert window.retroactive and window.counts
    assert (window.approved_by, window.retro_reason) == ("spv_budi", "laporan kertas")
    assert window.created_at == NOW
    assert events(store) == [
        ("maintenance_requested", "spv_budi", f"maintenance:{window.id}"),
        ("maintenance_approved", "spv_budi", f"maintenance:{window.id}"),
    ]


def test_a_technicians_request_counts_only_once_approved(store: StateStore) -> None:
    """A request waits (not counted, not approvable by the technician); a supervisor approves
    it; approving twice is refused."""
    window = request_window(store, TECH, ask(3), POLICY, now=NOW)
    assert (window.status, window.approval, window.counts) == (
        WindowStatus.REQUESTED, Approval.PENDING, False,
    )  # fmt: skip
    assert store.list(counting_only=True) == []
    with pytest.raises(NotAllowedError):
        approve_window(store, TECH, window.id)
    approved = approve_window(store, SUPER, window.id, now=NOW + dt.timedelta(hours=1))
    assert approved.counts and approved.approved_by == "spv_budi"
    assert [w.id for w in store.list(counting_only=True)] == [window.id]
    with pytest.raises(WindowStateError, match="already approved"):
        approve_window(store, SUPER, window.id)
    assert [e[:2] for e in events(store)] == [
        ("maintenance_requested", "tek_ani"),
        ("maintenance_approved", "spv_budi"),
    ]


def test_the_advance_policy_approves_windows_entered_far_enough_ahead(
    store: StateStore,
) -> None:
    """With a 24 h policy: 25 h ahead counts at once (approved by 'policy'), 23 h ahead waits."""
    policy = MaintenancePolicy(advance_approval_h=24)
    early = request_window(store, TECH, ask(25), policy, now=NOW)
    late = request_window(store, TECH, ask(23), policy, now=NOW)
    assert (early.approval, early.approved_by, early.counts) == (Approval.ADVANCE, "policy", True)
    assert (late.approval, late.counts) == (Approval.PENDING, False)


def test_cancelling_keeps_the_window_and_the_cancellation(store: StateStore) -> None:
    """A technician withdraws their own request but not an approved window nor another's; a
    supervisor cancels; both windows stay listed with who cancelled, when and why."""
    own = request_window(store, TECH, ask(5), POLICY, now=NOW)
    approved = request_window(store, SUPER, ask(8), POLICY, now=NOW)
    other = Principal(username="tek_lain", role=Role.TECHNICIAN, districts=frozenset({"d1"}))
    with pytest.raises(NotAllowedError):
        cancel_window(store, other, own, reason=None)
    with pytest.raises(NotAllowedError):
        cancel_window(store, TECH, approved, reason=None)
    cancel_window(store, TECH, own, reason="salah tanggal", now=NOW)
    gone = cancel_window(store, SUPER, approved, reason="hujan", now=NOW)
    assert (gone.status, gone.cancelled_by, gone.cancel_reason) == (
        WindowStatus.CANCELLED, "spv_budi", "hujan",
    )  # fmt: skip
    with pytest.raises(WindowStateError, match="already cancelled"):
        cancel_window(store, SUPER, gone, reason=None)
    listed = {w.id: w for w in store.list()}
    assert set(listed) == {own.id, approved.id}
    assert listed[own.id].cancelled_by == "tek_ani" and not listed[own.id].counts
    assert store.list(counting_only=True) == []
    assert events(store)[-2:] == [
        ("maintenance_cancelled", "tek_ani", f"maintenance:{own.id}"),
        ("maintenance_cancelled", "spv_budi", f"maintenance:{approved.id}"),
    ]
    assert store.audit.records()[-1].details_dict()["reason"] == "hujan"
    assert store.audit.verify().ok


def old_maintenance_table() -> sa.Table:
    """The maintenance table as it was before approvals and services (in its own metadata)."""
    return sa.Table(
        "maintenance", sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        *(sa.Column(c, sa.String(64), nullable=True) for c in ("site", "district", "camera")),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )  # fmt: skip


def test_windows_stored_before_approvals_migrate_as_legacy(tmp_path: Path) -> None:
    """A table of the old shape (no approval columns) gains them; its window is approved by
    'legacy' at its entry time and keeps counting; new windows work beside it."""
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    table = old_maintenance_table()
    engine = make_engine(url)
    table.metadata.create_all(engine)
    with engine.begin() as db:
        db.execute(
            table.insert().values(
                site="s1", district=None, camera=None, start=NOW, end=NOW + dt.timedelta(hours=1),
                reason="api token era", created_by="ops", created_at=NOW - dt.timedelta(days=40),
            )
        )  # fmt: skip
    engine.dispose()
    store = StateStore(url)
    (legacy,) = store.list()
    assert (legacy.approval, legacy.approved_by, legacy.counts) == (Approval.LEGACY, "legacy", True)
    assert legacy.approved_at == NOW - dt.timedelta(days=40) and not legacy.retroactive
    fresh = request_window(store, TECH, ask(30), POLICY)
    assert not fresh.counts
    assert StateStore(url).get(legacy.id) == legacy  # a second start migrates nothing again
    store.close()


def _previous_month_t0() -> tuple[str, int]:
    """The 10th of last month, 00:00 in Asia/Jakarta: history there is in the past."""
    jakarta = ZoneInfo("Asia/Jakarta")
    first = dt.datetime.now(jakarta).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    t0 = (first - dt.timedelta(days=20)).replace(day=10)
    return t0.strftime("%Y-%m"), int(t0.timestamp()) * S


def iso(ns: int) -> str:
    """An ISO 8601 UTC time."""
    return dt.datetime.fromtimestamp(ns / S, dt.UTC).isoformat()


async def test_retroactive_window_in_availability_and_report(
    influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """s1/c1 (d1) is down 2h-4h of a 6 h history last month. Through the API: a technician's
    window over it is refused; a supervisor's (1h-3h, with a reason) is accepted, flagged, and
    moves exactly 3,600 s from down to maintenance in the availability and in the report,
    which says so in Indonesian; a request entered in advance (4h-5h) counts only once
    approved; cancelling the retroactive window gives the seconds back to down and leaves it
    listed as cancelled; the report carries the audit summary and the chain head."""
    month, t0 = _previous_month_t0()
    history = History(t0)
    history.lines.append(f"site,district=d1,site=s1 online=1i,probe_interval_s=10.0 {t0}")
    history.camera("s1", "d1", "c1", start_s=0, end_s=6 * H, up=lambda t: not 2 * H <= t < 4 * H)
    settings = InfluxSettings(url=influxd.url, database=database, timeout_s=60)
    async with InfluxClient(settings) as influx:
        await history.write(influx)
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    tech = bearer(add_user(state_url, "tek_ani", "technician", ["d1"]))
    spv = bearer(add_user(state_url, "spv_budi", "supervisor", ["d1"]))
    store = StateStore(state_url)
    entered_ahead = dt.datetime.fromtimestamp(t0 / S - 86400, dt.UTC)
    ahead = WindowRequest(
        site="s1", district="d1", camera=None,
        start=dt.datetime.fromtimestamp(t0 / S + 4 * H, dt.UTC),
        end=dt.datetime.fromtimestamp(t0 / S + 5 * H, dt.UTC), reason="bersihkan lensa",
    )  # fmt: skip
    requested = request_window(store, TECH, ahead, POLICY, now=entered_ahead)
    store.close()
    window: dict[str, Any] = {
        "site": "s1", "start": iso(t0 + 1 * H * S), "end": iso(t0 + 3 * H * S),
        "reason": "perbaikan tiang",
    }  # fmt: skip
    period = {"from": iso(t0), "to": iso(t0 + 6 * H * S)}
    app = create_app(influx=settings, state_url=state_url)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:

        async def c1() -> dict[str, Any]:
            rows = (await http.get("/api/availability", params=period, headers=spv)).json()
            (row,) = rows
            return dict(row)

        before = await c1()
        assert (before["down_seconds"], before["maintenance_seconds"]) == (2 * H, 0)
        refused = await http.post("/api/maintenance", json=window, headers=tech)
        assert refused.status_code == 403 and "only a supervisor" in refused.json()["detail"]
        no_reason = await http.post("/api/maintenance", json=window, headers=spv)
        assert no_reason.status_code == 422 and "retroactive_reason" in no_reason.json()["detail"]
        created = await http.post(
            "/api/maintenance",
            json={**window, "retroactive_reason": "dicatat dari laporan kertas"},
            headers=spv,
        )
        assert created.status_code == 201, created.text
        retro = created.json()
        assert (retro["retroactive"], retro["counts"], retro["approved_by"]) == (
            True, True, "spv_budi",
        )  # fmt: skip
        during = await c1()
        assert (during["down_seconds"], during["maintenance_seconds"]) == (H, 2 * H)

        listed = await http.get("/api/availability/maintenance", params=period, headers=tech)
        flags = {w["id"]: (w["status"], w["retroactive"], w["counts"]) for w in listed.json()}
        assert flags == {
            requested.id: ("requested", False, False),
            retro["id"]: ("approved", True, True),
        }
        report = (await http.get("/api/report", params={"month": month}, headers=tech)).json()
        assert report["retro_moved_seconds"] == H
        by_id = {w["id"]: w for w in report["maintenance"]}
        assert by_id[retro["id"]]["moved_down_seconds"] == H
        assert by_id[requested.id]["created_by"] == "tek_ani"
        assert by_id[requested.id]["approved_by"] is None
        audit = report["audit"]
        # The request, the retroactive window's request and approval; made this month, so the
        # report of last month counts none of them but carries the head.
        assert audit["verified"] and audit["head"]["id"] == 3 and audit["counts"] == {}
        assert len(audit["head"]["hash"]) == 64
        page = await http.get(
            "/api/report", params={"month": month, "format": "html"}, headers=tech
        )
        assert '<html lang="id">' in page.text
        assert "memindahkan 3.600 detik (1,000 jam) dari mati ke pemeliharaan" in page.text
        assert "dicatat dari laporan kertas" in page.text and "Jejak audit" in page.text
        assert audit["head"]["hash"] in page.text

        approve = await http.post(f"/api/maintenance/{requested.id}/approve", headers=spv)
        assert approve.status_code == 200 and approve.json()["counts"]
        assert (await c1())["maintenance_seconds"] == 3 * H
        cancel = await http.delete(
            f"/api/maintenance/{retro['id']}", params={"reason": "salah lokasi"}, headers=spv
        )
        assert cancel.status_code == 204
        after = await c1()
        assert (after["down_seconds"], after["maintenance_seconds"]) == (2 * H, H)
        kept = {w["id"]: w for w in (await http.get("/api/maintenance", headers=tech)).json()}
        assert kept[retro["id"]]["status"] == "cancelled"
        assert kept[retro["id"]]["cancel_reason"] == "salah lokasi"
        assert (
            await http.post(f"/api/maintenance/{retro['id']}/cancel", json={}, headers=spv)
        ).status_code == 409
    trail = StateStore(state_url)
    assert [(r.event, r.actor) for r in trail.audit.records()][-3:] == [
        ("maintenance_approved", "spv_budi"),  # the retroactive window, at entry
        ("maintenance_approved", "spv_budi"),  # the request
        ("maintenance_cancelled", "spv_budi"),
    ]
    trail.close()
