"""The automatic policy decided on observations alone (no services): one power-cycle for a
camera hung long enough, and each guardrail refusing with its reason."""

from __future__ import annotations

from pathlib import Path

from cloud.i18n import texts
from cloud.maintenance import StateStore
from cloud.problems.config import Severity
from cloud.problems.model import Observation, Verdict
from cloud.problems.store import ProblemStore
from cloud.remediation.config import PolicyConfig
from cloud.remediation.history import ActionLog, Outcome
from cloud.remediation.policy import (
    DAY_NS,
    HungCamera,
    PastAction,
    SitePower,
    Skip,
    decide,
    site_limit,
)
from cloud.report.remediation import remediation_html, remediation_summary
from pantau.core.commands import Action, Command

NOW = 1_800_000_000 * 10**9
POLICY = PolicyConfig(
    enabled=True, hung_probes=3, max_per_camera_day=1, max_site_share=0.5, min_battery_pct=40
)


def hung(camera: str, probes: int = 3, *, site: str = "s1", maint: bool = False) -> HungCamera:
    return HungCamera(site, "d1", camera, probes, maint, problem_id=7)


def skips(decisions: list[object]) -> dict[str, Skip | None]:
    return {d.camera.camera: d.skip for d in decisions}  # type: ignore[attr-defined]


def test_hung_long_enough_is_cycled_and_not_before() -> None:
    got = decide([hung("c1", 3), hung("c2", 2)], {"s1": SitePower(4)}, [], POLICY, NOW)
    assert skips(got) == {"c1": None, "c2": Skip.NOT_YET}
    assert [d.act for d in got] == [True, False]


def test_maintenance_always_wins() -> None:
    got = decide([hung("c1", 50, maint=True)], {"s1": SitePower(4)}, [], POLICY, NOW)
    assert skips(got) == {"c1": Skip.MAINTENANCE}


def test_daily_limit_counts_the_last_24_hours() -> None:
    yesterday = PastAction("s1", "c1", NOW - DAY_NS - 1, answered=True)
    assert skips(decide([hung("c1")], {"s1": SitePower(4)}, [yesterday], POLICY, NOW)) == {
        "c1": None
    }
    earlier = PastAction("s1", "c1", NOW - DAY_NS + 10**9, answered=True)
    assert skips(decide([hung("c1")], {"s1": SitePower(4)}, [earlier], POLICY, NOW)) == {
        "c1": Skip.DAILY_LIMIT
    }
    two = POLICY.model_copy(update={"max_per_camera_day": 2})
    assert skips(decide([hung("c1")], {"s1": SitePower(4)}, [earlier], two, NOW)) == {"c1": None}


def test_a_running_action_is_not_repeated() -> None:
    running = PastAction("s1", "c1", NOW - 10 * 10**9, answered=False)
    loose = POLICY.model_copy(update={"max_per_camera_day": 5})
    assert skips(decide([hung("c1")], {"s1": SitePower(4)}, [running], loose, NOW)) == {
        "c1": Skip.RUNNING
    }


def test_never_more_than_the_site_share_at_once() -> None:
    assert (site_limit(4, 0.5), site_limit(1, 0.5), site_limit(3, 0.5)) == (2, 1, 1)
    cams = [hung(f"c{i}") for i in range(1, 5)]
    got = decide(cams, {"s1": SitePower(4)}, [], POLICY, NOW)
    assert skips(got) == {"c1": None, "c2": None, "c3": Skip.SITE_SHARE, "c4": Skip.SITE_SHARE}
    other = PastAction("s1", "c9", NOW - 10**9, answered=False)  # one already running
    got = decide(cams[:2], {"s1": SitePower(4)}, [other], POLICY, NOW)
    assert skips(got) == {"c1": None, "c2": Skip.SITE_SHARE}
    # Another site's running action does not count against s1.
    away = PastAction("s2", "c9", NOW - 10**9, answered=False)
    assert all(d.act for d in decide(cams[:2], {"s1": SitePower(4)}, [away], POLICY, NOW))


def test_low_battery_blocks() -> None:
    def on(power: SitePower) -> Skip | None:
        return decide([hung("c1")], {"s1": power}, [], POLICY, NOW)[0].skip

    assert on(SitePower(4, on_battery=True, battery_pct=30)) is Skip.BATTERY
    assert on(SitePower(4, on_battery=True, battery_pct=None)) is Skip.BATTERY
    assert on(SitePower(4, on_battery=None, battery_pct=30)) is Skip.BATTERY
    assert on(SitePower(4, on_battery=True, battery_pct=80)) is None
    assert on(SitePower(4, on_battery=False, battery_pct=10)) is None  # on mains, charging
    assert on(SitePower(4)) is None  # no UPS at all


def test_the_report_counts_actions_and_recovery_with_and_without(tmp_path: Path) -> None:
    """Two actions (one came back after 30 s, one failed); a camera problem with an action
    lasted 10 min, one without lasted 60 min."""
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    problems, actions, store = ProblemStore(url), ActionLog(url), StateStore(url)
    try:
        ids = []
        for camera, minutes in (("c1", 10), ("c2", 60)):
            obs = Observation(
                key=f"camera:s1/{camera}", rule="camera", title="camera hung",
                severity=Severity.MAJOR, verdict=Verdict.BAD, site="s1", district="d1",
                camera=camera, subject=f"s1/{camera}", since_ns=NOW, cause="hung",
            )  # fmt: skip
            opened = problems.open(obs, now_ns=NOW, in_maintenance=False)
            assert opened is not None
            problems.resolve(opened.id, now_ns=NOW + minutes * 60 * 10**9, targets=[])
            ids.append(opened.id)
        for n, (trigger, problem) in enumerate((("policy", ids[0]), ("user:tech1", ids[0]))):
            command = Command(
                site="s1", device="c1", action=Action.POWER_CYCLE, nonce=f"{n:032x}",
                issued_ns=NOW + 60 * 10**9, expires_ns=NOW + 120 * 10**9, trigger=trigger,
                problem=problem,
            )  # fmt: skip
            actions.record(command, district="d1")
        actions.settle(Outcome(f"{0:032x}", "done", True, 30.0, NOW + 100 * 10**9))
        actions.settle(Outcome(f"{1:032x}", "failed", None, None, NOW + 100 * 10**9, "snmp"))
        got = remediation_summary(store.engine, NOW - 10**9, NOW + DAY_NS)
        assert (got.actions, got.automatic, got.manual, got.answered, got.came_back) == (
            2, 1, 1, 2, 1
        )  # fmt: skip
        assert got.success_rate == 0.5
        assert got.median_recovery_s == 30.0
        assert (got.problems_with, got.median_with_s) == (1, 600.0)
        assert (got.problems_without, got.median_without_s) == (1, 3600.0)
        page = remediation_html(got, texts("en"))
        assert "1 / 2 (50%)" in page and "10.0 min (1)" in page and "60.0 min (1)" in page
        assert remediation_summary(store.engine, NOW + DAY_NS, NOW + 2 * DAY_NS).actions == 0
    finally:
        for s in (problems, actions, store):
            s.close()
