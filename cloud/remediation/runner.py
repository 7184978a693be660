"""The automatic policy's loop: read the agents' answers, observe, decide, send, record."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

from cloud.availability import MaintenanceSpan
from cloud.influx import InfluxClient, InfluxError, series_rows
from cloud.maintenance import StateStore
from cloud.problems.evaluator import covered
from cloud.problems.store import ProblemStore
from cloud.remediation.config import PolicyConfig
from cloud.remediation.history import ActionLog
from cloud.remediation.observe import hung_probes, outcomes, site_power
from cloud.remediation.policy import (
    DAY_NS,
    POLICY_TRIGGER,
    Decision,
    HungCamera,
    PastAction,
    decide,
)
from cloud.remediation.sender import CommandSender
from pantau.core.commands import Action

log = logging.getLogger(__name__)


class Remediator:
    """Runs the automatic policy against InfluxDB and the state database."""

    def __init__(
        self,
        *,
        influx: InfluxClient,
        sender: CommandSender,
        actions: ActionLog,
        problems: ProblemStore,
        maintenance: StateStore,
        policy: PolicyConfig,
    ) -> None:
        self._influx = influx
        self._sender = sender
        self._actions = actions
        self._problems = problems
        self._maintenance = maintenance
        self._policy = policy

    async def _query(self, q: str) -> list[dict[str, Any]]:
        return series_rows(await self._influx.query(q))

    async def settle(self, now_ns: int) -> int:
        """Store the agents' answers against the actions sent; returns how many were new."""
        found = await outcomes(self._query, now_ns)
        return sum([await asyncio.to_thread(self._actions.settle, o) for o in found])

    async def tick(self, now_ns: int | None = None) -> list[Decision]:
        """One pass: settle answers; if the policy is on, power-cycle the cameras it picks."""
        now = time.time_ns() if now_ns is None else now_ns
        await self.settle(now)
        if not self.policy_enabled:
            return []
        hung = await hung_probes(self._query, now, self._policy.hung_probes)
        if not hung:
            return []
        sites = await site_power(self._query, now)
        decisions = await asyncio.to_thread(self._decide, hung, sites, now)
        for decision in decisions:
            cam = decision.camera
            if not decision.act:
                log.info("remediation: %s/%s not cycled: %s", cam.site, cam.camera, decision.skip)
                continue
            command = await self._sender.send(
                cam.site,
                cam.camera,
                Action.POWER_CYCLE,
                trigger=POLICY_TRIGGER,
                problem=cam.problem_id,
            )
            await asyncio.to_thread(self._actions.record, command, district=cam.district)
            log.warning("remediation: power-cycling hung camera %s/%s", cam.site, cam.camera)
        return decisions

    @property
    def policy_enabled(self) -> bool:
        """True if the automatic policy may act."""
        return self._policy.enabled

    def _decide(
        self, hung: dict[tuple[str, str, str], int], sites: Any, now_ns: int
    ) -> list[Decision]:
        instant = dt.datetime.fromtimestamp(now_ns / 1e9, tz=dt.UTC)
        spans = [
            MaintenanceSpan(0, 0, site=m.site, camera=m.camera, district=m.district)
            for m in self._maintenance.list(
                overlapping=(instant, instant + dt.timedelta(microseconds=1)), counting_only=True
            )
        ]
        unresolved = self._problems.unresolved()
        cameras = []
        for (site, district, camera), probes in hung.items():
            problem = unresolved.get(f"camera:{site}/{camera}")
            cameras.append(
                HungCamera(
                    site=site,
                    district=district,
                    camera=camera,
                    hung_probes=probes,
                    in_maintenance=covered(spans, site, district, camera),
                    problem_id=problem.id if problem else None,
                )
            )
        past = [
            PastAction(a.site, a.camera, a.issued_ns, a.result is not None)
            for a in self._actions.since(now_ns - DAY_NS)
        ]
        return decide(cameras, sites, past, self._policy, now_ns)

    async def run(self, interval_s: float, stop: asyncio.Event) -> None:
        """Tick every ``interval_s`` until ``stop``; a database that does not answer is logged
        and tried again next time."""
        while not stop.is_set():
            try:
                await self.tick()
            except InfluxError as exc:
                log.warning("remediation: InfluxDB did not answer (%s); trying again", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
