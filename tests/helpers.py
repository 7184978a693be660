"""Test helpers: waiting on conditions with deadlines, querying InfluxDB synchronously."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from cloud.influx import series_rows
from cloud.webserver import bind_socket, serve_app
from simulators.runner import Simulation, SimulationOptions
from simulators.scenario import Scenario

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T], *, timeout_s: float, interval_s: float = 0.1, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: T = condition()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or condition}")
        time.sleep(interval_s)
        last = condition()
    return last


def influx_rows(url: str, database: str, query: str) -> list[dict[str, Any]]:
    """Run InfluxQL and return flattened rows (raise on errors)."""
    response = httpx.post(
        f"{url}/query", data={"q": query, "db": database, "epoch": "ns"}, timeout=10
    )
    response.raise_for_status()
    results = response.json()["results"]
    for result in results:
        assert "error" not in result, result["error"]
    return series_rows(results)


def create_database(url: str, database: str) -> None:
    """CREATE DATABASE."""
    httpx.post(f"{url}/query", data={"q": f'CREATE DATABASE "{database}"'}, timeout=10)


async def async_wait_for(
    condition: Callable[[], Awaitable[T]],
    *,
    timeout_s: float,
    interval_s: float = 0.1,
    what: str = "",
) -> T:
    """Await ``condition`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        last = await condition()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s}s waiting for {what or condition} (last: {last!r})"
            )
        await asyncio.sleep(interval_s)


@asynccontextmanager
async def running_simulation(
    scenario: Scenario,
    *,
    mqtt_url: str,
    influx_url: str,
    database: str,
    workdir: Path,
    ledger: bool = False,
) -> AsyncIterator[Simulation]:
    """A started simulation (agents, collector, fake cameras), stopped on exit."""
    simulation = Simulation(
        scenario,
        SimulationOptions(
            mqtt_url=mqtt_url,
            influx_url=influx_url,
            database=database,
            workdir=workdir,
            ledger=ledger,
        ),
    )
    await simulation.start()
    try:
        yield simulation
    finally:
        await simulation.stop()


def run_pantau(*args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run the ``pantau`` CLI in a fresh interpreter; capture its output, never raise on exit."""
    return subprocess.run(
        [sys.executable, "-m", "pantau", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app on a free loopback port; yield its base URL once it answers."""
    sock = bind_socket("127.0.0.1", 0)
    task = asyncio.create_task(serve_app(app, sock), name="test-api")
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def up() -> bool:
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{url}/openapi.json")).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        await async_wait_for(up, timeout_s=10, what="API up")
        yield url
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def counters(port: int) -> dict[str, float]:
    """A service's /metrics samples as ``name[:label value...] -> value``."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name + "".join(f":{v}" for v in sample.labels.values())
            found[name] = sample.value
    return found


# Python source that builds an agent with TCP/RTSP cameras and host sensors, run in a fresh
# interpreter by the tests that check what an agent imports.
BUILD_AN_AGENT = (
    "from edge_agent.agent import Agent\n"
    "from edge_agent.config import AgentConfig\n"
    "Agent(AgentConfig.model_validate({'site': {'id': 's1', 'district': 'd1', 'lat': 0, "
    "'lon': 0}, 'broker': {'url': 'mqtt://127.0.0.1:1'}, 'queue': {'path': '/tmp/q'}, "
    "'cameras': [{'id': 'c1', 'rtsp_url': 'rtsp://127.0.0.1:1/s'}], "
    "'sensors': [{'type': 'host'}]}))\n"
)
