"""The benchmark harness: its config, its results, and the services and processes of a run."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from devtools.localsvc import (
    InfluxProcess,
    MosquittoProcess,
    free_port,
    make_influx,
    make_mosquitto,
)
from devtools.processes import (
    agent_argv,
    collector_argv,
    start_logged,
    wait_collector_connected,
)
from simulators.cameras import FakeCamera

DRAIN_LIMIT_S = 120.0  # give up waiting for the last readings to land after this long
LEAD_S = 1.5  # publishers may run this far ahead of what the collectors wrote


@dataclass(frozen=True)
class BenchConfig:
    """Durations and sizes; ``tiny()`` is the seconds-long run that ``make test`` does."""

    ceiling_s: float = 10.0
    ingest_s: float = 60.0
    latency_s: float = 20.0
    detection_runs: int = 5
    edge_cameras: int = 64
    edge_s: float = 120.0
    backlog_readings: int = 280_000
    publishers: int = 2
    stream_runs: int = 5
    stream_sample_s: float = 3.0
    real_stream_size: tuple[int, int] = (1920, 1080)
    real_stream_s: float = 10.0
    fleet_cameras: int = 100
    fleet_days: int = 30
    large_cameras: int = 1000
    large_days: int = 365
    timestamp_cameras: int = 20
    timestamp_days: int = 7

    @classmethod
    def tiny(cls) -> BenchConfig:
        """A smoke-sized run: every part, a few seconds each."""
        return cls(
            ceiling_s=1.0,
            ingest_s=3.0,
            latency_s=2.0,
            detection_runs=1,
            edge_cameras=8,
            edge_s=4.0,
            backlog_readings=5_000,
            stream_runs=1,
            stream_sample_s=1.0,
            real_stream_size=(320, 180),
            real_stream_s=4.0,
            fleet_cameras=6,
            fleet_days=2,
            large_cameras=20,
            large_days=40,
            timestamp_cameras=3,
            timestamp_days=1,
        )


@dataclass
class Results:
    """Every figure of a run; serialised to JSON."""

    machine: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    ceilings: dict[str, float] = field(default_factory=dict)
    ingest: dict[str, dict[str, float]] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)
    detection: dict[str, float] = field(default_factory=dict)
    edge: dict[str, float] = field(default_factory=dict)
    backlog: dict[str, float] = field(default_factory=dict)
    stream: dict[str, dict[str, float]] = field(default_factory=dict)
    fleet: dict[str, Any] = field(default_factory=dict)


class Harness:
    """One run's services and processes; each figure's module measures through it."""

    def __init__(self, config: BenchConfig, workdir: Path, console: Console) -> None:
        self.config = config
        self.workdir = workdir
        self.console = console
        self.results = Results(config=asdict(config))
        self.broker: MosquittoProcess = make_mosquitto(workdir)
        self.influx: InfluxProcess = make_influx(workdir)
        self._processes: list[asyncio.subprocess.Process] = []

    async def spawn(self, *argv: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        """Start a process that ``run()`` kills on the way out, whatever happens."""
        process = await asyncio.create_subprocess_exec(*argv, **kwargs)
        self._processes.append(process)
        return process

    async def kill_all(self) -> None:
        for process in self._processes:
            if process.returncode is None:
                process.kill()
                await process.wait()

    def say(self, text: str) -> None:
        """Progress line."""
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}")

    async def start_collector(
        self, index: int, database: str
    ) -> tuple[asyncio.subprocess.Process, int]:
        """A collector process, once it is connected to the broker."""
        port = free_port()
        argv = collector_argv(
            mqtt=self.broker.url,
            influx=self.influx.url,
            database=database,
            http_port=port,
            client_id=f"bench-collector-{database}-{index}",
            instance=f"c{index}",
            dead_letter=self.workdir / f"dl-{database}-{index}.sqlite",
            # A group of its own: a stopped collector's persistent session stays in its group
            # and keeps receiving its share (queued for its return).
            share_group=f"bench-{database}",
            log_level="WARNING",
        )
        process = await start_logged(argv, self.workdir / f"collector-{index}.log")
        self._processes.append(process)
        await wait_collector_connected(port)
        return process, port

    async def publisher(
        self, site: str, duration: float, rate: float, start_ns: int, allowance: Path | None
    ) -> asyncio.subprocess.Process:
        """One load publisher process; ``rate`` is the total over all publishers (0: no cap)."""
        argv = [
            sys.executable,
            "-m",
            "bench.publisher",
            "--mqtt",
            self.broker.url,
            "--site",
            site,
            "--duration",
            str(duration),
            "--rate",
            str(rate / self.config.publishers if rate else 0),
            "--start-ns",
            str(start_ns),
        ]
        if allowance is not None:
            argv += ["--allowance-file", str(allowance)]
        return await self.spawn(*argv, stdout=asyncio.subprocess.PIPE)

    async def written(self, ports: list[int]) -> float:
        """Readings the collectors report as written."""
        from simulators.demo import scrape_collectors  # noqa: PLC0415 - avoid a cycle

        return (await scrape_collectors(ports)).written

    def agent_config(
        self, site: str, cameras: list[FakeCamera], keepalive: int, interval: float, queue: Path
    ) -> Path:
        """Write an agent config."""
        path = self.workdir / f"{site}.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "site": {"id": site, "district": "bench", "lat": -3.8, "lon": 102.3},
                    "broker": {"url": self.broker.url, "keepalive_s": keepalive},
                    "probe": {"interval_s": interval, "timeout_s": min(1.0, interval / 2)},
                    "cameras": [
                        {
                            "id": f"c{i + 1}",
                            "rtsp_url": c.rtsp_url,
                            "snapshot_url": c.snapshot_url,
                            "username": c.username,
                            "password": c.password,
                        }
                        for i, c in enumerate(cameras)
                    ],
                    "sensors": [{"type": "simulated", "id": "cabinet"}, {"type": "host"}],
                    "queue": {"path": str(queue)},
                }
            )
        )
        return path

    async def start_agent(self, config: Path) -> asyncio.subprocess.Process:
        """An agent process."""
        argv = agent_argv(config, log_level="WARNING")
        process = await start_logged(argv, self.workdir / f"{config.stem}.log")
        self._processes.append(process)
        return process
