"""The monthly report's remediation section follows the reader's districts like the rest of the
report: a d1 technician sees d1's power-cycles and camera problems only, an admin every district."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from cloud.api.app import create_app
from cloud.auth.principal import Role
from cloud.influx import InfluxSettings
from cloud.problems.config import Severity
from cloud.problems.model import Observation, Verdict
from cloud.problems.store import ProblemStore
from cloud.remediation.history import ActionLog, Outcome
from cloud.report.monthly import month_span
from cloud.report.remediation import ActionFact, RemediationSummary, ResolvedFact
from devtools.localsvc import InfluxProcess
from pantau.core.commands import Action, Command
from tests.auth import add_user, bearer
from tests.helpers import serving

MIN_NS = 60 * 10**9
ZONE = "Asia/Jakarta"


def _month() -> tuple[str, int]:
    """This month (YYYY-MM, Jakarta) and an instant an hour into it."""
    month = dt.datetime.now(ZoneInfo(ZONE)).strftime("%Y-%m")
    start, _ = month_span(month, ZONE)
    return month, int(start.timestamp()) * 10**9 + 60 * MIN_NS


def _fill(state_url: str, at: int) -> None:
    """d1: one camera problem (10 min) with a power-cycle that brought it back; d2: two
    problems (60 min each), one with a reboot that failed."""
    problems, actions = ProblemStore(state_url), ActionLog(state_url)
    try:
        for n, (site, district, camera, minutes, action, result) in enumerate(
            (
                ("s1", "d1", "c1", 10, Action.POWER_CYCLE, "done"),
                ("s2", "d2", "c1", 60, Action.REBOOT, "failed"),
                ("s2", "d2", "c2", 60, None, None),
            )
        ):
            obs = Observation(
                key=f"camera:{site}/{camera}", rule="camera", title="camera hung",
                severity=Severity.MAJOR, verdict=Verdict.BAD, site=site, district=district,
                camera=camera, subject=f"{site}/{camera}", since_ns=at, cause="hung",
            )  # fmt: skip
            opened = problems.open(obs, now_ns=at, in_maintenance=False)
            assert opened is not None
            problems.resolve(opened.id, now_ns=at + minutes * MIN_NS, targets=[])
            if action is None or result is None:
                continue
            command = Command(
                site=site, device=camera, action=action, nonce=f"{n:032x}", issued_ns=at + MIN_NS,
                expires_ns=at + 2 * MIN_NS, trigger="policy", problem=opened.id,
            )  # fmt: skip
            actions.record(command, district=district)
            up = result == "done"
            actions.settle(Outcome(f"{n:032x}", result, up, 45.0 if up else None, at + 2 * MIN_NS))
    finally:
        problems.close()
        actions.close()


async def test_the_remediation_section_is_scoped_to_the_readers_districts(
    influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """JSON and page: the d1 technician's report counts 1 action (came back) and 1 problem
    with remediation; the admin's counts 2 actions (1 of 2 back) and 1 problem without."""
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    month, at = _month()
    _fill(state_url, at)
    tech = bearer(add_user(state_url, "tech1", Role.TECHNICIAN, ["d1"], lang="en"))
    admin = bearer(add_user(state_url, "admin", Role.ADMIN, lang="en"))
    app = create_app(influx=InfluxSettings(url=influxd.url, database=database), state_url=state_url)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        params = {"month": month, "tz": ZONE}
        mine = (await http.get("/api/report", params=params, headers=tech)).json()[
            "remediation_summary"
        ]
        every = (await http.get("/api/report", params=params, headers=admin)).json()[
            "remediation_summary"
        ]
        page = await http.get("/api/report", params={**params, "format": "html"}, headers=tech)
    assert (mine["actions"], mine["answered"], mine["came_back"]) == (1, 1, 1)
    assert (mine["problems_with"], mine["problems_without"]) == (1, 0)
    assert (mine["median_with_s"], mine["median_recovery_s"]) == (600.0, 45.0)
    assert (every["actions"], every["answered"], every["came_back"]) == (2, 2, 1)
    assert (every["problems_with"], every["problems_without"]) == (2, 1)
    assert every["success_rate"] == 0.5 and every["median_without_s"] == 3600.0
    assert page.status_code == 200
    assert "1 / 1 (100%)" in page.text and "1 / 2" not in page.text


def test_within_keeps_only_the_named_districts() -> None:
    """``within`` filters actions and resolved problems; None keeps every district."""
    summary = RemediationSummary(
        (ActionFact("d1", True, True, True, 30.0), ActionFact("d2", False, True, False, None)),
        (ResolvedFact("d1", 600.0, True), ResolvedFact("d2", 3600.0, False)),
    )
    d2 = summary.within({"d2"})
    assert (d2.actions, d2.manual, d2.came_back, d2.success_rate) == (1, 1, 0, 0.0)
    assert (d2.problems_with, d2.problems_without, d2.median_without_s) == (0, 1, 3600.0)
    assert summary.within(None) is summary
    assert summary.within(set()).actions == 0
