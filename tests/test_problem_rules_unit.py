"""The problem rules' lifecycle on observations, without InfluxDB: every story of
tests/test_problem_rules.py told as what the rules observe at each instant, fed to the real
evaluator and problem store (SQLite) through a fake ``ObservationSource``. Exact problems, exact
queued messages, exact times."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cloud.influx import InfluxError
from cloud.maintenance import StateStore
from cloud.problems.config import RulesConfig, Severity
from cloud.problems.evaluator import Evaluator, ObservationSource
from cloud.problems.messages import render_text
from cloud.problems.model import Event, Observation, Problem, ProblemState, Verdict
from cloud.problems.store import ProblemStore

S = 1_000_000_000
MIN = 60
T0_NS = 1_700_000_000 * S
TARGETS = ["ops", "field"]  # a webhook and a Telegram chat, as in the real-service test
RULES = RulesConfig()
BAD, GOOD, PENDING = Verdict.BAD, Verdict.GOOD, Verdict.PENDING

# What the rules say about one subject from a given second on: (start_s, observation or None).
Phases = Sequence[tuple[int, Observation | None]]


def at(seconds: float) -> int:
    """Absolute nanoseconds of a time in the story."""
    return T0_NS + int(seconds * S)


def camera(
    verdict: Verdict,
    since_s: int,
    cause: str,
    *,
    cam: str = "c1",
    title: str = "camera down",
    of: str = "s1",
) -> Observation:
    """A camera rule's observation (camera ``cam`` of site ``of``), as ``Observer`` builds it."""
    return Observation(
        key=f"camera:{of}/{cam}", rule="camera", title=title, severity=RULES.camera.severity,
        verdict=verdict, site=of, district="d1", camera=cam, subject=f"{of}/{cam}",
        since_ns=at(since_s), cause=cause,
    )  # fmt: skip


def site(
    name: str, verdict: Verdict, since_s: int, *, offline: bool, cameras: Sequence[str] = ()
) -> Observation:
    """A site rule's observation: cameras of a site out of contact are folded into it."""
    folded = [{"camera": c, "up": True, "cause": "ok"} for c in cameras]
    return Observation(
        key=f"site:{name}", rule="site", title="site offline (lost contact with the agent)",
        severity=RULES.site.severity, verdict=verdict, site=name, district="d1", camera=None,
        subject=name, since_ns=at(since_s),
        cause="no contact: power, uplink or agent" if offline else "agent reporting",
        details={"cameras": folded} if folded else {},
    )  # fmt: skip


def whole_site(
    rule: str, title: str, verdict: Verdict, cause: str, details: dict[str, Any] | None = None
) -> Observation:
    """A whole-site rule's observation (duplicate id, clock): bad or good."""
    return Observation(
        key=f"{rule}:s1", rule=rule, title=title, severity=Severity.MAJOR, verdict=verdict,
        site="s1", district="d1", camera=None, subject="s1", since_ns=None, cause=cause,
        details=details or {},
    )  # fmt: skip


def threshold(name: str, sensor: str, verdict: Verdict, since_s: int, cause: str) -> Observation:
    """A threshold rule's observation for one sensor."""
    [rule] = [r for r in RULES.thresholds if r.name == name]
    return Observation(
        key=f"{name}:s1/{sensor}", rule=name, title=rule.title, severity=rule.severity,
        verdict=verdict, site="s1", district="d1", camera=None, subject=f"s1/{sensor}",
        since_ns=at(since_s), cause=cause,
    )  # fmt: skip


def ingest(verdict: Verdict, cause: str) -> Observation:
    """The pipeline's own observation."""
    return Observation(
        key="ingest", rule="ingest", title="ingest stalled (collector, broker or InfluxDB)",
        severity=Severity.CRITICAL, verdict=verdict, site="", district="", camera=None,
        subject="pipeline", since_ns=None, cause=cause,
    )  # fmt: skip


@dataclass
class Story:
    """The fake ``ObservationSource``: each subject's phases, read at the evaluated instant."""

    subjects: list[Phases] = field(default_factory=list)
    failing: set[int] = field(default_factory=set)  # seconds at which the database is down

    async def observe(self, now_ns: int) -> list[Observation]:
        """Every subject's observation in force at ``now_ns`` (none before its first phase)."""
        t = (now_ns - T0_NS) // S
        if t in self.failing:
            raise InfluxError("InfluxDB did not answer (scripted)")
        found = []
        for phases in self.subjects:
            current = [obs for start, obs in phases if start <= t]
            if current and current[-1] is not None:
                found.append(current[-1])
        return found


@dataclass
class Rig:
    """The real evaluator and problem store on one SQLite state database."""

    state_url: str
    rules: RulesConfig = field(default_factory=lambda: RULES)

    async def walk(
        self,
        source: ObservationSource,
        start_s: int,
        end_s: int,
        *,
        step_s: int = 20,
        evaluators: int = 1,
        before: dict[int, Callable[[], object]] | None = None,
    ) -> None:
        """Evaluate at every step, as ``evaluators`` fresh instances side by side."""
        stores = [ProblemStore(self.state_url) for _ in range(evaluators)]
        maintenance = [StateStore(self.state_url) for _ in range(evaluators)]
        try:
            running = [
                Evaluator(source, store, notes, self.rules, TARGETS)
                for store, notes in zip(stores, maintenance, strict=True)
            ]
            for t in range(start_s, end_s, step_s):
                if before and t in before:
                    before[t]()
                await asyncio.gather(*(e.evaluate(at(t)) for e in running))
        finally:
            for closable in (*stores, *maintenance):
                closable.close()

    def problems(self) -> list[Problem]:
        """Every stored problem, oldest first."""
        store = ProblemStore(self.state_url)
        try:
            return sorted(store.find(), key=lambda p: p.id)
        finally:
            store.close()

    def outbox(self) -> list[dict[str, Any]]:
        """Every queued message with its decoded payload, in order."""
        store = ProblemStore(self.state_url)
        try:
            rows = store.outbox()
        finally:
            store.close()
        for row in rows:
            if isinstance(row["payload"], str):
                row["payload"] = json.loads(row["payload"])
        return rows

    def messages(self, target: str = "ops") -> list[tuple[str, str]]:
        """(event, problem key) of every message queued for ``target``, in order."""
        return [
            (row["event"], row["payload"]["problem"]["key"])
            for row in self.outbox()
            if row["target"] == target
        ]

    def texts(self, target: str = "field") -> list[str]:
        """The messages for ``target`` as people read them."""
        return [
            render_text(
                Event(row["event"]), row["payload"]["problem"],
                zone=ZoneInfo("Asia/Jakarta"), page_url=None, lang="en",
            )
            for row in self.outbox()
            if row["target"] == target
        ]  # fmt: skip


def rel(ns: int | None) -> float | None:
    """Seconds since the story's start."""
    return None if ns is None else (ns - T0_NS) / S


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(state_url=f"sqlite:///{tmp_path / 'state.sqlite'}")


def down_between(start_s: int, end_s: int, *, cam: str = "c1") -> Phases:
    """A camera down from ``start_s`` to ``end_s`` as the camera rule sees it (down 2 min to
    open, up 5 min to clear)."""
    down_for, clear_for = int(RULES.camera.down_for), int(RULES.camera.clear_for)
    return [
        (0, camera(GOOD, 0, "up", cam=cam)),
        (start_s, camera(PENDING, start_s, "refused at rtsp", cam=cam)),
        (start_s + down_for, camera(BAD, start_s, "refused at rtsp", cam=cam)),
        (end_s, camera(PENDING, end_s, "up", cam=cam)),
        (end_s + clear_for, camera(GOOD, end_s, "up", cam=cam)),
    ]


async def test_camera_down_five_minutes_is_one_problem_and_two_messages(rig: Rig) -> None:
    """Down 5:00-10:00: opens at 7:00 with since 5:00, resolves at 15:00; one open and one
    resolve message to each target, nothing else."""
    story = Story([down_between(5 * MIN, 10 * MIN), [(0, camera(GOOD, 0, "up", cam="c2"))]])
    await rig.walk(story, 0, 25 * MIN)
    [problem] = rig.problems()
    assert (problem.key, problem.state, problem.cause) == (
        "camera:s1/c1",
        "resolved",
        "refused at rtsp",
    )
    assert (rel(problem.since_ns), rel(problem.opened_ns)) == (5 * MIN, 7 * MIN)
    assert rel(problem.resolved_ns) == 15 * MIN
    for target in TARGETS:
        assert rig.messages(target) == [("open", "camera:s1/c1"), ("resolve", "camera:s1/c1")]
    opened, resolved = rig.texts()
    assert "PROBLEM" in opened and "s1/c1" in opened and "refused at rtsp" in opened
    assert "RESOLVED" in resolved and "lasted 10 min" in resolved


async def test_flapping_camera_is_exactly_one_problem(rig: Rig) -> None:
    """Bad as 'flapping' for an hour while its cause and state change every 30 s: one problem
    (since kept from its first bad reading), one open, one resolve."""
    phases: list[tuple[int, Observation | None]] = [(0, camera(GOOD, 0, "up"))]
    for t in range(5 * MIN, 65 * MIN, 30):
        up = (t // 30) % 2 == 0
        verdict = BAD if t >= 7 * MIN else PENDING
        cause = f"flapping: {(t - 5 * MIN) // 30} up/down changes in 10 min, now " + (
            "up" if up else "down"
        )
        phases.append((t, camera(verdict, t, cause, title="camera flapping")))
    phases.append((65 * MIN, camera(BAD, 65 * MIN, "flapping: 6 changes", title="camera flapping")))
    phases.append((75 * MIN, camera(GOOD, 65 * MIN, "up")))
    await rig.walk(Story([phases]), 0, 90 * MIN, step_s=30)
    [problem] = rig.problems()
    assert problem.title == "camera flapping" and problem.state is ProblemState.RESOLVED
    assert "flapping" in problem.cause and rel(problem.since_ns) == 7 * MIN
    assert rel(problem.opened_ns) == 7 * MIN and rel(problem.resolved_ns) == 75 * MIN
    assert rig.messages() == [("open", "camera:s1/c1"), ("resolve", "camera:s1/c1")]


async def test_site_power_cut_is_one_site_problem_with_its_cameras_folded(rig: Rig) -> None:
    """s2 silent 5:00-15:00: one site problem listing its 3 cameras, kept when the list ages out
    of the look-back; resolves once back for 2 min; no camera problems."""
    cams = ("c1", "c2", "c3")
    offline_for, clear_for = int(RULES.site.offline_for), int(RULES.site.clear_for)
    s2 = [
        (0, site("s2", GOOD, 0, offline=False)),
        (5 * MIN, site("s2", PENDING, 5 * MIN, offline=True, cameras=cams)),
        (5 * MIN + offline_for, site("s2", BAD, 5 * MIN, offline=True, cameras=cams)),
        (10 * MIN, site("s2", BAD, 5 * MIN, offline=True)),  # its cameras aged out
        (15 * MIN, site("s2", PENDING, 15 * MIN, offline=False)),
        (15 * MIN + clear_for, site("s2", GOOD, 15 * MIN, offline=False)),
    ]
    s2_cameras = [
        [
            (0, camera(GOOD, 0, "up", cam=c, of="s2")),
            (5 * MIN, None),  # folded into the site's observation
            (15 * MIN, camera(PENDING, 15 * MIN, "up", cam=c, of="s2")),
        ]
        for c in cams
    ]
    story = Story([[(0, site("s1", GOOD, 0, offline=False))], s2, *s2_cameras])
    await rig.walk(story, 0, 30 * MIN)
    [problem] = rig.problems()
    assert (problem.key, problem.state) == ("site:s2", ProblemState.RESOLVED)
    assert [c["camera"] for c in problem.details["cameras"]] == ["c1", "c2", "c3"]
    assert (rel(problem.since_ns), rel(problem.opened_ns)) == (5 * MIN, 6 * MIN)
    assert rel(problem.resolved_ns) == 17 * MIN
    assert rig.messages() == [("open", "site:s2"), ("resolve", "site:s2")]
    assert "cameras out of sight (3): c1, c2, c3" in rig.texts()[0]


async def test_acknowledged_and_maintenance_problems_send_nothing_more(rig: Rig) -> None:
    """c1's problem is acknowledged after its open message: no resolve message. c2 is down
    inside a maintenance window: a problem (flagged), but no message at all."""
    maintenance = StateStore(rig.state_url)
    maintenance.add(
        site="s1", district=None, camera="c2",
        start=dt.datetime.fromtimestamp(at(MIN) / S, tz=dt.UTC),
        end=dt.datetime.fromtimestamp(at(20 * MIN) / S, tz=dt.UTC),
        reason="replacing the lens", created_by="budi",
    )  # fmt: skip
    maintenance.close()

    def acknowledge() -> None:
        store = ProblemStore(rig.state_url)
        [c1] = [p for p in store.find() if p.camera == "c1"]
        store.acknowledge(c1.id, by="siti", comment="on my way")
        store.close()

    story = Story([down_between(2 * MIN, 10 * MIN), down_between(3 * MIN, 10 * MIN, cam="c2")])
    await rig.walk(story, 0, 25 * MIN, before={6 * MIN: acknowledge})
    c1, c2 = rig.problems()
    assert (c1.key, c1.acknowledged_by, c1.state) == ("camera:s1/c1", "siti", "resolved")
    assert (c2.key, c2.in_maintenance, c2.state) == ("camera:s1/c2", True, "resolved")
    assert rig.messages() == [("open", "camera:s1/c1")]


async def test_evaluator_restart_and_a_twin_lose_and_duplicate_nothing(rig: Rig) -> None:
    """Two evaluators at once, then both replaced mid-outage by fresh ones: one problem, one
    open and one resolve message per target."""
    story = Story([down_between(5 * MIN, 10 * MIN)])
    await rig.walk(story, 0, 8 * MIN, evaluators=2)
    [open_problem] = rig.problems()
    assert open_problem.state is ProblemState.OPEN
    await rig.walk(story, 8 * MIN, 25 * MIN, evaluators=2)
    [problem] = rig.problems()
    assert problem.id == open_problem.id and problem.state is ProblemState.RESOLVED
    assert rig.messages() == [("open", "camera:s1/c1"), ("resolve", "camera:s1/c1")]
    assert len(rig.outbox()) == 2 * len(TARGETS)


async def test_condition_returning_within_hold_off_reopens_the_same_problem(rig: Rig) -> None:
    """Down 3 min, up 6 min (resolved), down again: the same problem reopens."""
    first, second = down_between(2 * MIN, 5 * MIN), down_between(11 * MIN, 15 * MIN)
    story = Story([[*first, *second[1:]]])
    await rig.walk(story, 0, 30 * MIN)
    [problem] = rig.problems()
    assert (problem.reopen_count, problem.state) == (1, ProblemState.RESOLVED)
    assert rig.messages() == [("open", "camera:s1/c1"), ("resolve", "camera:s1/c1")] * 2
    assert "returned (reopened 1x)" in rig.texts()[2]


async def test_silence_from_every_site_is_our_pipeline_not_the_sites(rig: Rig) -> None:
    """While ingest is stalled the rules observe nothing but the pipeline: one 'ingest' problem,
    no site problems; when ingest returns, it resolves."""
    stale = int(RULES.ingest_stale_after)
    pipeline = [
        (0, ingest(GOOD, "collectors reporting")),
        (5 * MIN, ingest(PENDING, "collectors reporting")),
        (5 * MIN + stale, ingest(BAD, f"no collector has reported for {stale}s")),
        (15 * MIN, ingest(GOOD, "collectors reporting")),
    ]
    sites = [
        [(0, site(s, GOOD, 0, offline=False)), (5 * MIN + stale, None),
         (15 * MIN, site(s, PENDING, 15 * MIN, offline=False))]
        for s in ("s1", "s2")
    ]  # fmt: skip
    await rig.walk(Story([pipeline, *sites]), 0, 25 * MIN)
    [problem] = rig.problems()
    assert (problem.key, problem.severity, problem.state) == ("ingest", "critical", "resolved")
    assert rig.messages() == [("open", "ingest"), ("resolve", "ingest")]


async def test_cabinet_thresholds_with_hysteresis(rig: Rig) -> None:
    """Hot 10:00-20:00 opens at 15:00 and resolves 5 min after it cools below 42; a value
    hovering across 45 (pending) opens nothing; mains lost and battery low open their own."""
    hot = "temperature 48°C (above 45°C)"
    story = Story(
        [
            [
                (0, threshold("cabinet_hot", "cab", GOOD, 0, "temperature 35°C (above 45°C)")),
                (10 * MIN, threshold("cabinet_hot", "cab", PENDING, 10 * MIN, hot)),
                (15 * MIN, threshold("cabinet_hot", "cab", BAD, 10 * MIN, hot)),
                (20 * MIN, threshold("cabinet_hot", "cab", PENDING, 15 * MIN, "temperature 35°C")),
                (25 * MIN, threshold("cabinet_hot", "cab", GOOD, 20 * MIN, "temperature 35°C")),
            ],
            [(0, threshold("cabinet_hot", "cab2", PENDING, 0, "temperature 46°C (above 45°C)"))],
            [
                (0, threshold("mains_lost", "cab", GOOD, 0, "mains_voltage 221V (below 180V)")),
                (6 * MIN, threshold("mains_lost", "cab", BAD, 5 * MIN, "mains_voltage 0V")),
                (8 * MIN, threshold("mains_lost", "cab", PENDING, 5 * MIN, "mains_voltage 221V")),
                (10 * MIN, threshold("mains_lost", "cab", GOOD, 5 * MIN, "mains_voltage 221V")),
            ],
            [
                (0, threshold("ups_battery_low", "cab", GOOD, 0, "ups_battery_pct 90%")),
                (7 * MIN + 30, threshold("ups_battery_low", "cab", BAD, 7 * MIN, "25%")),
                (8 * MIN, threshold("ups_battery_low", "cab", PENDING, 7 * MIN, "90%")),
                (13 * MIN, threshold("ups_battery_low", "cab", GOOD, 7 * MIN, "90%")),
            ],
        ]
    )
    await rig.walk(story, 0, 40 * MIN, step_s=30)
    found = {p.key: p for p in rig.problems()}
    assert set(found) == {"cabinet_hot:s1/cab", "mains_lost:s1/cab", "ups_battery_low:s1/cab"}
    hot_problem = found["cabinet_hot:s1/cab"]
    assert rel(hot_problem.since_ns) == 10 * MIN
    assert rel(hot_problem.opened_ns) == 15 * MIN and rel(hot_problem.resolved_ns) == 25 * MIN
    assert hot_problem.cause == hot  # a pending reading does not overwrite the problem's cause
    mains = found["mains_lost:s1/cab"]
    assert rel(mains.opened_ns) == 6 * MIN and rel(mains.resolved_ns) == 10 * MIN
    assert found["ups_battery_low:s1/cab"].severity == "critical"
    assert all(p.state is ProblemState.RESOLVED for p in found.values())


async def test_two_agents_with_one_site_id_are_a_duplicate_not_a_flapping_site(rig: Rig) -> None:
    """'Duplicate site id' bad from 6:40 to 13:00: one problem naming both sessions, resolved
    once one agent is left; the site itself stays online, so no site problem."""
    title = "duplicate site id (two agents use one site id)"
    cause = "2 agents take the connection from each other: 2 takeovers in 5 min"
    story = Story(
        [
            [(0, site("s1", GOOD, 0, offline=False))],
            [
                (0, whole_site("duplicate", title, GOOD, "one agent")),
                (
                    6 * MIN + 40,
                    whole_site("duplicate", title, BAD, cause, {"sessions": [111, 222]}),
                ),
                (13 * MIN, whole_site("duplicate", title, GOOD, "one agent")),
            ],
        ]
    )
    await rig.walk(story, 0, 25 * MIN)
    [problem] = rig.problems()
    assert (problem.key, problem.rule, problem.state) == ("duplicate:s1", "duplicate", "resolved")
    assert problem.details["sessions"] == [111, 222]
    assert "2 agents take the connection from each other" in problem.cause
    assert rel(problem.opened_ns) == rel(problem.since_ns) == 6 * MIN + 40  # since: now if unknown
    assert rel(problem.resolved_ns) == 13 * MIN


async def test_a_site_clock_ahead_or_behind_is_a_problem_until_fixed(rig: Rig) -> None:
    """Clock ahead by 600 s from 5:00 opens 'site clock wrong'; right again at 12:00 resolves
    it; behind by 90 s from 20:00 reopens the same problem with the new cause."""
    title = "site clock wrong"
    story = Story(
        [
            [
                (0, whole_site("clock", title, GOOD, "clock within bounds")),
                (5 * MIN, whole_site("clock", title, BAD, "site clock ahead by 600 s")),
                (12 * MIN, whole_site("clock", title, GOOD, "clock within bounds")),
                (20 * MIN, whole_site("clock", title, BAD, "site clock behind by 90 s")),
            ]
        ]
    )
    await rig.walk(story, 0, 30 * MIN)
    [problem] = rig.problems()
    assert rig.messages() == [("open", "clock:s1"), ("resolve", "clock:s1"), ("open", "clock:s1")]
    assert rig.outbox()[0]["payload"]["problem"]["cause"] == "site clock ahead by 600 s"
    assert rel(problem.opened_ns) == 5 * MIN and problem.reopen_count == 1
    assert problem.state == "open" and problem.cause == "site clock behind by 90 s"


async def test_a_source_that_cannot_read_changes_nothing(rig: Rig) -> None:
    """While the source raises (InfluxDB down, 8:00-8:30) evaluations raise and nothing moves,
    although the camera is good again; the next pass that reads resolves the problem."""
    phases = [
        (0, camera(GOOD, 0, "up")),
        (5 * MIN, camera(PENDING, 5 * MIN, "refused at rtsp")),
        (7 * MIN, camera(BAD, 5 * MIN, "refused at rtsp")),
        (8 * MIN, camera(GOOD, 7 * MIN, "up")),
    ]
    story = Story([phases], failing={8 * MIN, 8 * MIN + 30})
    await rig.walk(story, 0, 8 * MIN)
    before = rig.problems()
    for t in sorted(story.failing):
        with pytest.raises(InfluxError):
            await rig.walk(story, t, t + 1)
    assert rig.problems() == before and before[0].state is ProblemState.OPEN
    await rig.walk(story, 9 * MIN, 9 * MIN + 1)
    [problem] = rig.problems()
    assert problem.state is ProblemState.RESOLVED and rel(problem.resolved_ns) == 9 * MIN
    assert rig.messages() == [("open", "camera:s1/c1"), ("resolve", "camera:s1/c1")]
