"""A fleet upgrades one side at a time: the previous release's agent against this collector, and
this agent against the previous release's collector (then the collector upgraded under it),
each with nothing lost or doubled (the agents' ledgers against InfluxDB)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.schema import AGENT
from devtools.localsvc import InfluxProcess, MosquittoProcess, free_port
from devtools.processes import collector_argv, pantau_argv, start_logged, stop_process
from pantau.core.contract import CONTRACT_VERSION
from simulators.ledger import compare
from tests.helpers import async_wait_for

# The last release before contract minor 1 (the second wave's final commit): agents and
# collectors in the field speak it until they are upgraded.
PREVIOUS_RELEASE = "7a97889"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's source tree, from git history."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", PREVIOUS_RELEASE],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.fail(
            f"the skew test needs commit {PREVIOUS_RELEASE} (a full clone of the repository): "
            f"{archive.stderr.decode(errors='replace')}"
        )
    root = tmp_path_factory.mktemp("previous-release")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    return root


def old_env(root: Path) -> dict[str, str]:
    """Run the previous release's code: its tree first on the import path."""
    return {**os.environ, "PYTHONPATH": str(root)}


def agent_yaml(tmp: Path, broker: MosquittoProcess) -> Path:
    """A site config both releases read (only keys the previous release knows)."""
    config = {
        "site": {"id": "s1", "district": "d1", "lat": -3.1, "lon": 102.2},
        "broker": {"url": broker.url, "reconnect_max_s": 1},
        "probe": {"interval_s": 0.5, "timeout_s": 0.3},
        "sensors": [{"type": "simulated", "id": "cab"}],
        "queue": {"path": str(tmp / "q.sqlite")},
        "publish": {"receipt_timeout_s": 2.0},
        "ledger": True,
    }
    path = tmp / "site.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


async def start_collector(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp: Path, **kw: object
) -> tuple[asyncio.subprocess.Process, int]:
    port = free_port()
    argv = collector_argv(
        mqtt=broker.url,
        influx=influxd.url,
        database=database,
        http_port=port,
        client_id="skew-collector",
        instance="skew",
        dead_letter=tmp / "dl.sqlite",
    )
    process = await start_logged(argv, tmp / "collector.log", new_session=True, **kw)  # type: ignore[arg-type]
    return process, port


async def wait_stored(influx: InfluxClient, queue: Path, *, at_least: int, what: str) -> None:
    async def stored() -> bool:
        if not await asyncio.to_thread(queue.exists):
            return False
        result = await compare(influx, {"s1": queue})
        return result.lost == 0 and result.readings >= at_least

    await async_wait_for(stored, timeout_s=60, what=what)


async def final_check(influx: InfluxClient, queue: Path, logs: Iterator[Path]) -> None:
    result = await compare(influx, {"s1": queue})
    detail = "\n".join(p.read_text(errors="replace")[-3000:] for p in logs)
    assert (result.lost, result.dup, result.queued) == (0, 0, 0), (result.line(), detail)
    assert result.readings >= 40


async def test_previous_agent_against_this_collector(
    previous_release: Path,
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
) -> None:
    """An agent not yet upgraded: every reading stored once, answered in its dialect."""
    site = agent_yaml(tmp_path, broker)
    collector, port = await start_collector(broker, influxd, database, tmp_path)
    agent = await start_logged(
        pantau_argv("agent", "--config", str(site)),
        tmp_path / "agent.log",
        new_session=True,
        env=old_env(previous_release),
        cwd=str(previous_release),
    )
    try:
        async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
            await wait_stored(influx, tmp_path / "q.sqlite", at_least=40, what="readings stored")
            async with httpx.AsyncClient() as http:
                health = (await http.get(f"http://127.0.0.1:{port}/healthz")).json()
            assert health["contract"] == CONTRACT_VERSION
            await stop_process(agent)  # a clean stop flushes the queue
            await final_check(influx, tmp_path / "q.sqlite", iter([tmp_path / "agent.log"]))
            # it never knew of contracts
            assert not await asyncio.to_thread((tmp_path / "q.contract.json").exists)
    finally:
        await stop_process(agent)
        await stop_process(collector)


async def test_this_agent_against_the_previous_collector_then_upgraded(
    previous_release: Path,
    broker: MosquittoProcess,
    influxd: InfluxProcess,
    database: str,
    tmp_path: Path,
) -> None:
    """An agent upgraded first speaks minor 0 to the previous collector (nothing refused, nothing
    resent forever); when the collector is upgraded under it, it learns minor 1 and its new
    fields are stored; nothing lost or doubled across the switch."""
    site = agent_yaml(tmp_path, broker)
    queue = tmp_path / "q.sqlite"
    old, _ = await start_collector(
        broker,
        influxd,
        database,
        tmp_path,
        env=old_env(previous_release),
        cwd=str(previous_release),
    )
    agent = await start_logged(
        pantau_argv("agent", "--config", str(site)), tmp_path / "agent.log", new_session=True
    )
    new: asyncio.subprocess.Process | None = None
    try:
        async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
            await wait_stored(influx, queue, at_least=40, what="stored by the previous collector")
            assert not await asyncio.to_thread(queue.with_suffix(".contract.json").exists)
            await stop_process(old)
            new, _port = await start_collector(broker, influxd, database, tmp_path)
            contract = queue.with_suffix(".contract.json")

            async def learnt() -> bool:
                return await asyncio.to_thread(
                    lambda: contract.exists() and json.loads(contract.read_text())["minor"] >= 1
                )

            await async_wait_for(learnt, timeout_s=30, what="the agent learnt minor 1")

            async def minor_one_fields() -> bool:
                rows = series_rows(
                    await influx.query(
                        f'SELECT last("rejected_total") FROM "{AGENT}" WHERE "site" = \'s1\''
                    )
                )
                return bool(rows) and rows[0].get("last") == 0

            await async_wait_for(minor_one_fields, timeout_s=30, what="minor-1 fields stored")
            before = (await compare(influx, {"s1": queue})).readings
            await wait_stored(influx, queue, at_least=before + 10, what="stored after upgrade")
            await stop_process(agent)
            logs = iter([tmp_path / "agent.log", tmp_path / "collector.log"])
            await final_check(influx, queue, logs)
    finally:
        await stop_process(agent)
        await stop_process(old)
        if new is not None:
            await stop_process(new)


def test_old_interpreter_runs_the_previous_tree(previous_release: Path) -> None:
    """The skew tests really run old code: its modules load from the extracted tree."""
    out = subprocess.run(
        [sys.executable, "-c", "import cloud.decode as d; print(d.__file__)"],
        env=old_env(previous_release),
        cwd=str(previous_release),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().startswith(str(previous_release))
