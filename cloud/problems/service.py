"""``pantau problems``: the evaluator and the notifier, side by side."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from cloud.influx import InfluxClient
from cloud.maintenance import StateStore
from cloud.problems.config import EvaluatorConfig
from cloud.problems.evaluator import Evaluator
from cloud.problems.notify import Notifier, run_notifier
from cloud.problems.observe import Observer
from cloud.problems.store import ProblemStore
from cloud.remediation.service import run_remediation
from cloud.services.windows import paths_aside_from


@dataclass(frozen=True)
class ProblemsService:
    """The evaluator and notifier wired to their stores (built by ``problems_service``)."""

    evaluator: Evaluator
    notifier: Notifier
    store: ProblemStore


@contextlib.asynccontextmanager
async def problems_service(config: EvaluatorConfig) -> AsyncIterator[ProblemsService]:
    """Open the clients and stores the service needs; close them on exit."""
    problems = ProblemStore(config.state_url)
    maintenance = StateStore(config.state_url)
    try:
        async with InfluxClient(config.influx) as influx, httpx.AsyncClient() as http:
            yield ProblemsService(
                evaluator=Evaluator(
                    Observer(influx, config.rules, paths_aside_from(maintenance)),
                    problems,
                    maintenance,
                    config.rules,
                    [t.name for t in config.notify.targets],
                ),
                notifier=Notifier(problems, config.notify, http),
                store=problems,
            )
    finally:
        maintenance.close()
        problems.close()


async def run_problems(config: EvaluatorConfig, stop: asyncio.Event) -> None:
    """Evaluate rules and deliver notifications until ``stop``."""
    async with problems_service(config) as service, asyncio.TaskGroup() as tasks:
        tasks.create_task(service.evaluator.run(config.interval, stop), name="problem-evaluator")
        tasks.create_task(run_notifier(service.notifier, stop), name="problem-notifier")
        if config.remediation is not None:
            tasks.create_task(
                run_remediation(config.remediation, config, stop), name="remediation-policy"
            )
