"""The evaluator: observations in, problem lifecycle and queued notifications out.

Observations come from an ``ObservationSource``: ``Observer`` reads them from InfluxDB; a test
hands in a fake, so the lifecycle rules run without a database."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from cloud.availability import MaintenanceSpan
from cloud.influx import InfluxError
from cloud.maintenance import StateStore, WindowKind
from cloud.problems.config import RulesConfig
from cloud.problems.model import Observation, Problem, ProblemState, Verdict
from cloud.problems.store import ProblemStore
from cloud.services.windows import quiets, service_windows

log = logging.getLogger(__name__)


class ObservationSource(Protocol):
    """What the rules say about every subject at one instant."""

    async def observe(self, now_ns: int) -> list[Observation]:
        """Observations at ``now_ns``; raises ``InfluxError`` if the data cannot be read."""
        ...


@dataclass
class Changes:
    """What one evaluation did (logged, and asserted by tests)."""

    opened: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    announced: list[str] = field(default_factory=list)


def covered(spans: list[MaintenanceSpan], site: str, district: str, camera: str | None) -> bool:
    """True if a maintenance window applies to this subject (a whole-site window covers its
    cameras; a camera's window does not cover its site)."""
    for span in spans:
        if camera is not None and span.covers(site, district, camera):
            return True
        if camera is None and span.camera is None and span.covers(site, district, ""):
            return True
    return False


class Evaluator:
    """Applies the rules at an instant and moves problems through their lifecycle."""

    def __init__(
        self,
        observer: ObservationSource,
        problems: ProblemStore,
        maintenance: StateStore,
        rules: RulesConfig,
        targets: list[str],
    ) -> None:
        self._observer = observer
        self._problems = problems
        self._maintenance = maintenance
        self._rules = rules
        self._targets = targets

    async def evaluate(self, now_ns: int) -> Changes:
        """One pass at ``now_ns``. Raises ``InfluxError`` (and changes nothing) if the source
        cannot read the time-series database."""
        observations = await self._observer.observe(now_ns)
        # The state database is blocking I/O: keep it off the event loop.
        return await asyncio.to_thread(self._apply, observations, now_ns)

    def _apply(self, observations: list[Observation], now_ns: int) -> Changes:
        instant = dt.datetime.fromtimestamp(now_ns / 1e9, tz=dt.UTC)
        spans = [
            MaintenanceSpan(0, 0, site=m.site, camera=m.camera, district=m.district)
            for m in self._maintenance.list(
                overlapping=(instant, instant + dt.timedelta(microseconds=1)), counting_only=True
            )
        ]
        services = service_windows(
            self._maintenance.list(
                overlapping=(instant, instant + dt.timedelta(microseconds=1)),
                counting_only=True,
                kind=WindowKind.SERVICES,
            )
        )
        changes = Changes()
        unresolved = self._problems.unresolved()
        bad_new = [
            o.key for o in observations if o.verdict is Verdict.BAD and o.key not in unresolved
        ]
        recent = self._problems.resolved_since(
            bad_new, now_ns - int(self._rules.reopen_within * 1e9)
        )
        seen = set()
        for obs in observations:
            seen.add(obs.key)
            quiet = covered(spans, obs.site, obs.district, obs.camera) or quiets(
                services, obs.rule, obs.subject, obs.district
            )
            self._step(
                obs,
                unresolved.get(obs.key),
                recent=recent,
                quiet=quiet,
                now_ns=now_ns,
                changes=changes,
            )
        for key, problem in unresolved.items():
            if key not in seen:
                quiet = covered(spans, problem.site, problem.district, problem.camera) or quiets(
                    services, problem.rule, problem.subject, problem.district
                )
                self._mark_maintenance(problem, quiet, now_ns)
        for problem in self._problems.unresolved().values():
            if self._announce(problem, now_ns):
                changes.announced.append(problem.key)
        for what in ("opened", "reopened", "resolved", "announced"):
            if keys := getattr(changes, what):
                log.info("problems %s: %s", what, ", ".join(keys))
        return changes

    def _step(
        self,
        obs: Observation,
        current: Problem | None,
        *,
        recent: dict[str, Problem],
        quiet: bool,
        now_ns: int,
        changes: Changes,
    ) -> None:
        """Move one subject's problem along: open, reopen, refresh or resolve."""
        store = self._problems
        if obs.verdict is Verdict.BAD:
            if current is not None:
                store.refresh(current, obs, now_ns=now_ns, in_maintenance=quiet)
            elif obs.key in recent:
                if store.reopen(recent[obs.key].id, obs, now_ns=now_ns, in_maintenance=quiet):
                    changes.reopened.append(obs.key)
            elif store.open(obs, now_ns=now_ns, in_maintenance=quiet):
                changes.opened.append(obs.key)
        elif current is not None:
            # A resolution is announced or not by the maintenance flag it has at that moment.
            self._mark_maintenance(current, quiet, now_ns)
            if obs.verdict is Verdict.GOOD and store.resolve(
                current.id, now_ns=now_ns, targets=self._targets
            ):
                changes.resolved.append(obs.key)

    def _mark_maintenance(self, problem: Problem, quiet: bool, now_ns: int) -> None:
        """Store a change of the maintenance flag (and write nothing when it did not change)."""
        if problem.in_maintenance != quiet:
            self._problems.refresh(problem, None, now_ns=now_ns, in_maintenance=quiet)

    def _announce(self, problem: Problem, now_ns: int) -> bool:
        if (
            problem.state is not ProblemState.OPEN
            or problem.notified_open
            or problem.in_maintenance
            or not self._targets
        ):
            return False
        return self._problems.announce_open(problem.id, now_ns=now_ns, targets=self._targets)

    async def run(self, interval_s: float, stop: asyncio.Event) -> None:
        """Evaluate every ``interval_s`` until ``stop``; a database outage skips a pass."""
        while not stop.is_set():
            try:
                await self.evaluate(time.time_ns())
            except InfluxError as exc:
                log.warning("skipping an evaluation, InfluxDB did not answer: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
