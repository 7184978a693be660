"""Problem rules walked through recorded history on a real InfluxDB, with real webhook and
Telegram-format receivers: exact problems, exact messages, exact times."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloud.influx import InfluxClient, InfluxSettings
from cloud.lineproto import format_line
from cloud.maintenance import StateStore
from cloud.problems.config import EvaluatorConfig
from cloud.problems.model import Problem, ProblemState
from cloud.problems.service import problems_service
from cloud.problems.store import ProblemStore
from devtools.localsvc import InfluxProcess
from tests.history import History, S
from tests.receiver import Receiver, receiver

MIN = 60


@dataclass
class Rig:
    """Recorded history, the evaluator's config and the two receivers."""

    history: History
    influx: InfluxClient
    config: EvaluatorConfig
    hook: Receiver
    telegram: Receiver

    async def walk(
        self,
        start_s: int,
        end_s: int,
        *,
        step_s: int = 20,
        evaluators: int = 1,
        before: dict[int, Callable[[], object]] | None = None,
    ) -> None:
        """Evaluate (and deliver) at every step, as ``evaluators`` instances side by side."""
        await self.history.write(self.influx)
        self.history.lines.clear()
        async with contextlib.AsyncExitStack() as stack:
            services = [
                await stack.enter_async_context(problems_service(self.config))
                for _ in range(evaluators)
            ]
            for t in range(start_s, end_s, step_s):
                if before and t in before:
                    await asyncio.to_thread(before[t])
                now = self.history.at(t)
                await asyncio.gather(*(s.evaluator.evaluate(now) for s in services))
                for s in services:
                    await s.notifier.deliver_due(now)

    def problems(self) -> list[Problem]:
        """Every stored problem, oldest first."""
        store = ProblemStore(self.config.state_url)
        try:
            return sorted(store.find(), key=lambda p: p.id)
        finally:
            store.close()

    def messages(self) -> list[tuple[str, str]]:
        """(event, problem key) of every webhook message, in order."""
        return [(b["event"], b["problem"]["key"]) for b in self.hook.bodies()]

    def rel(self, ns: int | None) -> float | None:
        """Seconds since the history's start."""
        return None if ns is None else (ns - self.history.t0_ns) / S


@pytest.fixture
async def rig(influxd: InfluxProcess, database: str, tmp_path: Path) -> AsyncIterator[Rig]:
    t0 = (time.time_ns() - 3 * 3600 * S) // (10 * S) * (10 * S)
    with receiver() as hook, receiver() as telegram:
        config = EvaluatorConfig.model_validate(
            {
                "influx_url": influxd.url,
                "database": database,
                "state_url": f"sqlite:///{tmp_path / 'state.sqlite'}",
                "rules": {"thresholds": []},
                "notify": {
                    "targets": [
                        {"type": "webhook", "name": "ops", "url": hook.url, "secret": "k"},
                        {
                            "type": "telegram",
                            "name": "field",
                            "bot_token": "123:abc",
                            "chat_id": "-100200",
                            "api_url": telegram.url,
                        },
                    ]
                },
            }
        )
        async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
            yield Rig(History(t0), influx, config, hook, telegram)


def one_site(rig: Rig, end_s: int, **cameras: Callable[[int], bool]) -> None:
    h = rig.history
    h.collector(0, end_s)
    h.site("s1", "d1", 0, end_s)
    for name, up in cameras.items():
        h.camera("s1", "d1", name, start_s=0, end_s=end_s, up=up)


async def test_camera_down_five_minutes_is_one_problem_and_two_messages(rig: Rig) -> None:
    """Down 5:00-10:00: opens at 7:00 (down for 2 min), resolves at 15:00 (up for 5 min);
    one open and one resolve message to each target, nothing else."""
    one_site(rig, 25 * MIN, c1=lambda t: not 5 * MIN <= t < 10 * MIN, c2=lambda _t: True)
    await rig.walk(0, 25 * MIN)
    [problem] = rig.problems()
    assert (problem.key, problem.state, problem.cause) == (
        "camera:s1/c1",
        "resolved",
        "refused at rtsp",
    )
    assert (rig.rel(problem.since_ns), rig.rel(problem.opened_ns)) == (5 * MIN, 7 * MIN)
    assert rig.rel(problem.resolved_ns) == 15 * MIN
    assert rig.messages() == [("open", "camera:s1/c1"), ("resolve", "camera:s1/c1")]
    texts = rig.telegram.bodies()
    assert [r.path for r in rig.telegram.requests] == ["/bot123:abc/sendMessage"] * 2
    assert all(b["chat_id"] == "-100200" and b["parse_mode"] == "HTML" for b in texts)
    assert "MASALAH" in texts[0]["text"] and "s1/c1" in texts[0]["text"]  # Indonesian
    assert "refused at rtsp" in texts[0]["text"]
    assert "SELESAI" in texts[1]["text"] and "berlangsung 10 menit" in texts[1]["text"]
    first = rig.hook.requests[0]
    assert first.headers["Idempotency-Key"].startswith("pantau-")
    digest = hmac.new(b"k", first.raw, hashlib.sha256).hexdigest()
    assert first.headers["X-Pantau-Signature"] == f"sha256={digest}"


async def test_flapping_camera_is_exactly_one_problem(rig: Rig) -> None:
    """Bouncing every 30 s for an hour: one 'flapping' problem, one open, one resolve."""
    flapping = range(5 * MIN, 65 * MIN)
    one_site(rig, 90 * MIN, c1=lambda t: t not in flapping or (t // 30) % 2 == 0)
    await rig.walk(0, 90 * MIN, step_s=30)
    [problem] = rig.problems()
    assert problem.title == "camera flapping" and problem.state is ProblemState.RESOLVED
    assert "flapping" in problem.cause
    assert rig.messages() == [("open", "camera:s1/c1"), ("resolve", "camera:s1/c1")]
    # Resolves once the 10-minute flap window holds fewer than 6 changes and it has been up 5 min.
    resolved = rig.rel(problem.resolved_ns)
    assert resolved is not None and 65 * MIN < resolved <= 76 * MIN


async def test_site_power_cut_is_one_site_problem_with_its_cameras_folded(rig: Rig) -> None:
    """s2 goes silent (Last Will) for 10 min: one site problem listing its 3 cameras; no camera
    problems, although their probes stopped."""
    h = rig.history
    h.collector(0, 30 * MIN)
    h.site("s1", "d1", 0, 30 * MIN)
    h.camera("s1", "d1", "c1", start_s=0, end_s=30 * MIN)
    h.site("s2", "d1", 0, 5 * MIN, will=True)
    h.site("s2", "d1", 15 * MIN, 30 * MIN)
    for cam in ("c1", "c2", "c3"):
        h.camera("s2", "d1", cam, start_s=0, end_s=5 * MIN)
        h.camera("s2", "d1", cam, start_s=15 * MIN, end_s=30 * MIN)
    await rig.walk(0, 30 * MIN)
    [problem] = rig.problems()
    assert (problem.key, problem.state) == ("site:s2", ProblemState.RESOLVED)
    assert [c["camera"] for c in problem.details["cameras"]] == ["c1", "c2", "c3"]
    assert (rig.rel(problem.since_ns), rig.rel(problem.opened_ns)) == (5 * MIN, 6 * MIN)
    assert rig.rel(problem.resolved_ns) == 17 * MIN  # back at 15:00, online for 2 min
    assert rig.messages() == [("open", "site:s2"), ("resolve", "site:s2")]
    assert "kamera tidak terpantau (3): c1, c2, c3" in rig.telegram.bodies()[0]["text"]


async def test_acknowledged_and_maintenance_problems_send_nothing_more(rig: Rig) -> None:
    """c1's problem is acknowledged after its open message: no resolve message. c2 is down
    inside a maintenance window: a problem (flagged), but no message at all."""
    one_site(
        rig,
        25 * MIN,
        c1=lambda t: not 2 * MIN <= t < 10 * MIN,
        c2=lambda t: not 3 * MIN <= t < 10 * MIN,
    )
    maintenance = StateStore(rig.config.state_url)
    maintenance.add(
        site="s1",
        district=None,
        camera="c2",
        start=dt.datetime.fromtimestamp(rig.history.at(MIN) / S, tz=dt.UTC),
        end=dt.datetime.fromtimestamp(rig.history.at(20 * MIN) / S, tz=dt.UTC),
        reason="replacing the lens",
        created_by="budi",
    )
    maintenance.close()

    def acknowledge() -> None:
        store = ProblemStore(rig.config.state_url)
        [c1] = [p for p in store.find() if p.camera == "c1"]
        store.acknowledge(c1.id, by="siti", comment="on my way")
        store.close()

    await rig.walk(0, 25 * MIN, before={6 * MIN: acknowledge})
    c1, c2 = rig.problems()
    assert (c1.key, c1.acknowledged_by, c1.state) == ("camera:s1/c1", "siti", "resolved")
    assert (c2.key, c2.in_maintenance, c2.state) == ("camera:s1/c2", True, "resolved")
    assert rig.messages() == [("open", "camera:s1/c1")]


async def test_evaluator_restart_and_a_twin_lose_and_duplicate_nothing(rig: Rig) -> None:
    """Two evaluators at once, then both replaced mid-outage by fresh ones: one problem, one
    open and one resolve message."""
    one_site(rig, 25 * MIN, c1=lambda t: not 5 * MIN <= t < 10 * MIN)
    await rig.walk(0, 8 * MIN, evaluators=2)
    [open_problem] = rig.problems()
    assert open_problem.state is ProblemState.OPEN
    await rig.walk(8 * MIN, 25 * MIN, evaluators=2)
    [problem] = rig.problems()
    assert problem.id == open_problem.id and problem.state is ProblemState.RESOLVED
    assert rig.messages() == [("open", "camera:s1/c1"), ("resolve", "camera:s1/c1")]
    assert len(rig.telegram.requests) == 2


async def test_condition_returning_within_hold_off_reopens_the_same_problem(rig: Rig) -> None:
    """Down 3 min, up 6 min (resolved), down again: the same problem reopens."""
    down = (range(2 * MIN, 5 * MIN), range(11 * MIN, 15 * MIN))
    one_site(rig, 30 * MIN, c1=lambda t: not any(t in r for r in down))
    await rig.walk(0, 30 * MIN)
    [problem] = rig.problems()
    assert (problem.reopen_count, problem.state) == (1, ProblemState.RESOLVED)
    assert rig.messages() == [("open", "camera:s1/c1"), ("resolve", "camera:s1/c1")] * 2


async def test_silence_from_every_site_is_our_pipeline_not_the_sites(rig: Rig) -> None:
    """The collector stops reporting and so does every site: one 'ingest' problem, no site
    problems; when ingest returns, it resolves."""
    h = rig.history
    h.collector(0, 5 * MIN)
    h.collector(15 * MIN, 25 * MIN)
    for site in ("s1", "s2"):
        h.site(site, "d1", 0, 5 * MIN)
        h.site(site, "d1", 15 * MIN, 25 * MIN)
    await rig.walk(0, 25 * MIN)
    [problem] = rig.problems()
    assert (problem.key, problem.severity, problem.state) == ("ingest", "critical", "resolved")
    assert rig.messages() == [("open", "ingest"), ("resolve", "ingest")]


async def test_cabinet_thresholds_with_hysteresis(rig: Rig) -> None:
    """Hot 10:00-20:00 opens at 15:00 and resolves 5 min after it cools below 42; a value
    hovering across 45 opens nothing; mains lost and battery low open their own problems."""
    config = rig.config.model_copy(deep=True)
    rig.config = EvaluatorConfig.model_validate(
        {**config.model_dump(by_alias=True), "rules": {}}  # the default threshold rules
    )
    h = rig.history
    h.collector(0, 40 * MIN)
    h.site("s1", "d1", 0, 40 * MIN)
    h.sensor(
        "s1",
        "cab",
        "temperature",
        span=(0, 40 * MIN),
        value=lambda t: 48 if 10 * MIN <= t < 20 * MIN else 35,
    )
    h.sensor(
        "s1", "cab2", "temperature", span=(0, 40 * MIN), value=lambda t: 44 + 2 * ((t // 10) % 2)
    )
    h.sensor(
        "s1",
        "cab",
        "mains_voltage",
        span=(0, 40 * MIN),
        value=lambda t: 0 if 5 * MIN <= t < 8 * MIN else 221,
    )
    h.sensor(
        "s1",
        "cab",
        "ups_battery_pct",
        span=(0, 40 * MIN),
        value=lambda t: 25 if 7 * MIN <= t < 8 * MIN else 90,
    )
    await rig.walk(0, 40 * MIN, step_s=30)
    found = {p.key: p for p in rig.problems()}
    assert set(found) == {"cabinet_hot:s1/cab", "mains_lost:s1/cab", "ups_battery_low:s1/cab"}
    hot = found["cabinet_hot:s1/cab"]
    assert rig.rel(hot.since_ns) == pytest.approx(10 * MIN, abs=10)
    assert rig.rel(hot.opened_ns) == 15 * MIN and rig.rel(hot.resolved_ns) == 25 * MIN
    assert hot.cause == "temperature 48°C (above 45°C)"
    mains = found["mains_lost:s1/cab"]
    assert rig.rel(mains.opened_ns) == 6 * MIN and rig.rel(mains.resolved_ns) == 10 * MIN
    assert all(p.state is ProblemState.RESOLVED for p in found.values())


async def test_two_agents_with_one_site_id_are_a_duplicate_not_a_flapping_site(rig: Rig) -> None:
    """Two agents configured as s1 take its connection from each other every 30 s from 5:00 to
    10:00 (births alternate between two sessions): one 'duplicate site id' problem naming both
    sessions, resolved once one agent is left; an agent restarting (a new session that never
    hands back) is not a duplicate."""
    one_site(rig, 25 * MIN, c1=lambda _t: True)
    h = rig.history
    tags = {"site": "s1", "district": "d1"}
    for i, t in enumerate(range(5 * MIN, 10 * MIN, 30)):
        session = 111 if i % 2 == 0 else 222
        h.lines.append(format_line("site", tags, {"online": 1, "session": session}, h.at(t)))
    for t, session in ((18 * MIN, 333), (19 * MIN, 444)):  # two restarts later: not duplicates
        h.lines.append(format_line("site", tags, {"online": 1, "session": session}, h.at(t)))
    await rig.walk(0, 25 * MIN)
    [problem] = rig.problems()
    assert (problem.key, problem.rule, problem.state) == ("duplicate:s1", "duplicate", "resolved")
    assert problem.details["sessions"] == [111, 222]
    assert "2 agents take the connection from each other" in problem.cause
    assert (rig.rel(problem.opened_ns) or 0) == 6 * MIN + 40  # the second return (6:30)
    assert rig.rel(problem.resolved_ns) == 13 * MIN  # window 5 min: < 2 returns from 13:00


async def test_a_site_clock_ahead_or_behind_is_a_problem_until_fixed(rig: Rig) -> None:
    """A birth stamped 10 min ahead of its arrival (the collector stores clock_ahead_s) opens
    'site clock wrong ... ahead by 600 s'; the agent's later receipt round trips showing the
    clock right resolve it. Agent offsets say 'behind' the same way."""
    one_site(rig, 30 * MIN, c1=lambda _t: True)
    h = rig.history
    tags = {"site": "s1", "district": "d1"}
    h.lines.append(format_line("site", tags, {"online": 1, "clock_ahead_s": 600.0}, h.at(5 * MIN)))
    # What the collector records (at its own time) from the agent's receipt round trips.
    clock = {"instance": "c1", "site": "s1"}
    h.lines.append(format_line("pantau_site_clock", clock, {"offset_ms": 0.4}, h.at(12 * MIN)))
    h.lines.append(format_line("pantau_site_clock", clock, {"offset_ms": 90_000.0}, h.at(20 * MIN)))
    await rig.walk(0, 30 * MIN)
    [problem] = rig.problems()  # the clock going wrong again soon after reopens it
    assert rig.messages() == [
        ("open", "clock:s1"),
        ("resolve", "clock:s1"),
        ("open", "clock:s1"),
    ]
    first_open = rig.hook.bodies()[0]["problem"]
    assert first_open["cause"].startswith("site clock ahead by 600 s")
    assert rig.rel(problem.opened_ns) == 5 * MIN and problem.reopen_count == 1
    assert problem.state == "open" and problem.cause.startswith("site clock behind by 90 s")
