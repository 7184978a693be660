"""The automatic policy decided on observations alone (no services): one power-cycle for a
camera hung long enough, and each guardrail refusing with its reason."""

from __future__ import annotations

from cloud.remediation.config import PolicyConfig
from cloud.remediation.policy import (
    DAY_NS,
    HungCamera,
    PastAction,
    SitePower,
    Skip,
    decide,
    site_limit,
)

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
