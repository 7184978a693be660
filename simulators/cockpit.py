"""The demo's command-center side: the API with the technician page, and the problems service
with rules scaled to the simulation's probe interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from cloud.api.app import create_app
from cloud.influx import InfluxSettings
from cloud.problems.config import EvaluatorConfig
from cloud.problems.service import run_problems
from cloud.webserver import bind_socket, serve_app

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cockpit:
    """Where the technician page is, and the token that lets it write."""

    url: str
    token: str

    @property
    def page_link(self) -> str:
        """The page URL with the token in its fragment (the page keeps it, then drops it)."""
        return f"{self.url}/#token={self.token}"


def demo_rules(probe_interval_s: float) -> dict[str, object]:
    """Problem rules fast enough to see within a demo: a few probe intervals, not minutes."""
    i = probe_interval_s
    return {
        "camera": {"down_for": 3 * i, "clear_for": 3 * i},
        "site": {"offline_for": i, "clear_for": 2 * i, "stale_after": 4 * i},
    }


def _listen(host: str, port: int) -> socket.socket:
    try:
        return bind_socket(host, port)
    except OSError:
        log.warning("port %d is busy; the technician page takes a free port instead", port)
        return bind_socket(host, 0)


@contextlib.asynccontextmanager
async def cockpit(
    *, influx_url: str, database: str, state_dir: Path, probe_interval_s: float, port: int
) -> AsyncIterator[Cockpit]:
    """Serve the API and run the problems service until the block ends."""
    state_url = f"sqlite:///{state_dir / 'state.sqlite'}"
    token = secrets.token_urlsafe(12)
    influx = InfluxSettings(url=influx_url, database=database)
    config = EvaluatorConfig.model_validate(
        {
            "influx_url": influx_url,
            "database": database,
            "state_url": state_url,
            "interval": max(1.0, probe_interval_s / 2),
            "rules": demo_rules(probe_interval_s),
        }
    )
    sock = _listen("127.0.0.1", port)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        api = tasks.create_task(
            serve_app(create_app(influx=influx, state_url=state_url, token=token), sock),
            name="demo-api",
        )
        problems = tasks.create_task(run_problems(config, stop), name="demo-problems")
        try:
            yield Cockpit(url=f"http://127.0.0.1:{sock.getsockname()[1]}", token=token)
        finally:
            stop.set()
            api.cancel()
            await asyncio.gather(api, problems, return_exceptions=True)
