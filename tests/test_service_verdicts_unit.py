"""The vantage-point rules on observations (pure): down needs the cloud and most online
districts; one district failing alone is degraded from it; a district whose agent is offline is
set aside (no service problem); a district failing every service is its own path; certificate
and latency warnings."""

from __future__ import annotations

from pathlib import Path

from cloud.problems.model import Observation, SiteContact, Verdict
from cloud.problems.service_checks import CLOUD, View, is_down, judge
from cloud.services.catalogue import Catalogue

CAT = Catalogue.model_validate(
    {
        "version": 1,
        "services": [
            {"name": "simpeg", "opd": "bkpsdm", "url": "https://a.test/", "tls_warn_days": 14},
            {"name": "sipd", "opd": "bappeda", "url": "https://b.test/", "max_latency_ms": 500},
        ],
    }
)
SITES = {
    "s1": SiteContact("d1", offline=False, since_ns=0),
    "s2": SiteContact("d2", offline=False, since_ns=0),
    "s3": SiteContact("d3", offline=False, since_ns=0),
}


def view(site: str, ok: bool, **kw: object) -> View:
    district = CLOUD if site == CLOUD else SITES[site].district
    return View(site=site, district=district, ok=ok, ts=100, **kw)  # type: ignore[arg-type]


def bad(observations: list[Observation]) -> dict[str, Observation]:
    return {o.key: o for o in observations if o.verdict is Verdict.BAD}


def all_ok(service: str) -> list[View]:
    return [view(s, True, total_ms=100.0) for s in (CLOUD, "s1", "s2", "s3")]


def test_the_rule_itself() -> None:
    """Cloud and most districts; without the cloud, most districts; nobody: unknown."""
    assert is_down(False, [False, False, True]) is True
    assert is_down(True, [False, False, False]) is False  # the cloud reaches it
    assert is_down(False, [False, True, True]) is False
    assert is_down(None, [False, False, True]) is True
    assert is_down(False, []) is True
    assert is_down(None, []) is None


def test_failing_everywhere_is_one_down_problem() -> None:
    """Cloud and three districts fail: one 'down' observation, no per-district ones."""
    views = {
        "simpeg": [view(s, False, stage="status", detail="503") for s in (CLOUD, "s1", "s2", "s3")],
        "sipd": all_ok("sipd"),
    }
    found = bad(judge(CAT, views, SITES))
    assert list(found) == ["service-down:simpeg"], found
    assert found["service-down:simpeg"].details["failing"] == ["s1", "s2", "s3", "cloud"]


def test_one_district_failing_alone_is_degraded_from_it() -> None:
    """s2 fails simpeg, reaches sipd, its agent online: degraded from d2, not down."""
    views = {
        "simpeg": [*[view(s, True) for s in (CLOUD, "s1", "s3")], view("s2", False, stage="tcp")],
        "sipd": all_ok("sipd"),
    }
    found = bad(judge(CAT, views, SITES))
    assert list(found) == ["service-degraded:simpeg:s2"]
    assert found["service-degraded:simpeg:s2"].district == "d2"


def test_a_district_cut_off_is_set_aside() -> None:
    """s3's agent is offline and its last probes failed: no service problem at all; the
    down observation names it as cut off."""
    sites = {**SITES, "s3": SiteContact("d3", offline=True, since_ns=50)}
    views = {
        "simpeg": [*[view(s, True) for s in (CLOUD, "s1", "s2")], view("s3", False, stage="dns")],
        "sipd": [*[view(s, True) for s in (CLOUD, "s1", "s2")], view("s3", False, stage="dns")],
    }
    observations = judge(CAT, views, sites)
    assert bad(observations) == {}
    down = next(o for o in observations if o.key == "service-down:simpeg")
    assert down.verdict is Verdict.GOOD and down.details["cut_off"] == ["s3"]
    assert not any(o.site == "s3" for o in observations)


def test_a_district_failing_every_service_is_its_own_path() -> None:
    """Online s1 fails both while the cloud and the others reach them: one site problem."""
    views = {
        name: [*[view(s, True) for s in (CLOUD, "s2", "s3")], view("s1", False, stage="dns")]
        for name in ("simpeg", "sipd")
    }
    assert list(bad(judge(CAT, views, SITES))) == ["services-unreachable:s1"]


def test_certificate_and_latency_are_warnings() -> None:
    """A certificate 10 days from expiry (limit 14) and a median above max_latency_ms."""
    views = {
        "simpeg": [view(s, True, cert_days=10.0) for s in (CLOUD, "s1")],
        "sipd": [view(s, True, total_ms=900.0) for s in (CLOUD, "s1", "s2")],
    }
    found = bad(judge(CAT, views, SITES))
    assert set(found) == {"service-cert:simpeg", "service-slow:sipd"}
    assert all(o.severity.value == "warning" for o in found.values())
    assert "10.0 days" in found["service-cert:simpeg"].cause


def test_no_fresh_probe_is_unknown() -> None:
    """Nothing pending turns into a problem or a resolution."""
    observations = judge(CAT, {}, SITES)
    down = [o for o in observations if o.rule == "service_down"]
    assert {o.verdict for o in down} == {Verdict.PENDING}


async def test_availability_sets_aside_a_district_while_its_agent_is_offline() -> None:
    """d3 and d4 fail sipd in the first minute while their agents are offline (cut): the
    minute is up, not down; in the second minute they are online again and their failures
    (with d1's success) make it down; the third minute nobody probed: unknown."""
    from cloud.services.availability import by_opd, service_availability  # noqa: PLC0415

    t0, m = 1_800_000_000 * 10**9, 60 * 10**9

    async def query(q: str) -> list[dict[str, object]]:
        if 'FROM "service"' in q:
            return [
                {"time": t0 + i * m, "service": "sipd", "site": site, "ok": ok}
                for i in (0, 1)
                for site, ok in (("s1", 1), ("s3", 0), ("s4", 0))
            ]
        if "time < " in q and "time >= " not in q:  # the state before the period
            return [{"time": t0 - m, "site": s, "online": 0} for s in ("s3", "s4")]
        return [{"time": t0 + m - 1, "site": s, "online": 1} for s in ("s3", "s4")]

    tallies = await service_availability(query, CAT, t0, t0 + 3 * m)
    sipd = tallies["sipd"]
    assert (sipd.up_s, sipd.down_s, sipd.unknown_s) == (60.0, 60.0, 60.0)
    # s3/s4 come back online in the very last ns of minute 0: that minute is still set aside.
    assert tallies["simpeg"].unknown_s == 180.0
    assert by_opd(CAT, tallies)["bappeda"].availability == 0.5


async def test_a_broken_catalogue_skips_the_service_rules_only(tmp_path: Path) -> None:
    """A bad edit of services.yaml: no service observation, nothing raised (the camera rules
    of the same evaluation go on)."""
    from cloud.problems.config import ServiceRule  # noqa: PLC0415
    from cloud.problems.service_checks import service_checks  # noqa: PLC0415

    path = tmp_path / "services.yaml"
    path.write_text("version: 1\nservices:\n  - name: x\n    opd: o\n    urll: https://x.test/\n")

    async def query(_q: str) -> list[dict[str, object]]:
        raise AssertionError("not asked: the catalogue is read first")

    assert await service_checks(query, ServiceRule(catalogue=path), 1, SITES) == []


def test_a_district_path_in_maintenance_has_no_vote_on_down() -> None:
    """The cloud, s1 and s2 fail simpeg, s3 reaches it: down (2 of 3). With d1's path to simpeg
    in maintenance, d1 has no vote (1 of 2: not down) and its own "unreachable" stays, for the
    evaluator to keep quiet; a window for another service changes nothing."""
    views = {
        "simpeg": [*[view(s, False, stage="tcp") for s in (CLOUD, "s1", "s2")], view("s3", True)],
        "sipd": all_ok("sipd"),
    }
    assert "service-down:simpeg" in bad(judge(CAT, views, SITES))
    assert "service-down:simpeg" in bad(judge(CAT, views, SITES, aside={"sipd": frozenset({"d1"})}))
    found = bad(judge(CAT, views, SITES, aside={"simpeg": frozenset({"d1"})}))
    assert set(found) == {f"service-degraded:simpeg:{s}" for s in ("s1", "s2", CLOUD)}, found
