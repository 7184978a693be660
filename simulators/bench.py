"""``pantau bench``: ingest, latency, detection and edge cost, beside the ceilings, in one run.

Everything runs against a mosquitto and an influxd started here on loopback. Results go to
``bench/results/<timestamp>.json`` and a table on the terminal (see bench/README.md).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.table import Table

from cloud.influx import InfluxClient, InfluxSettings, series_rows
from edge_agent.probes.stream import StreamThresholds, probe_stream
from edge_agent.queue import ReadingQueue, count_queued
from pantau.contract import CameraReading, Cause, StreamFault, TopicFilter
from pantau.localsvc import InfluxProcess, MosquittoProcess, free_port, make_influx, make_mosquitto
from pantau.mqtt import BrokerAddress, LinkSettings, MqttLink
from simulators.cameras import FakeCamera

CLK_TCK = os.sysconf("SC_CLK_TCK")
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
        )


@dataclass
class ProcessUsage:
    """CPU seconds and peak RSS of a process, read from /proc."""

    cpu_s: float
    peak_rss_mb: float


def process_usage(pid: int) -> ProcessUsage:
    """utime+stime and VmHWM of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return ProcessUsage(cpu, peak)


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


def camera_lines(count: int, site: str, start_ns: int) -> bytes:
    """Realistic camera points as the collector writes them."""
    return "\n".join(
        f'camera,camera=c{i % 64 + 1},district=bench,site={site} up=1i,cause="ok",'
        f"latency_ms=12.345,tcp_ms=1.234,rtsp_ms=5.678,snapshot_ms=5.432,"
        f"snapshot_bytes=48213i,rtsp_status=200i {start_ns + i // 64}"
        for i in range(count)
    ).encode()


class Bench:
    """One benchmark run on its own services."""

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

    async def _kill_all(self) -> None:
        for process in self._processes:
            if process.returncode is None:
                process.kill()
                await process.wait()

    def say(self, text: str) -> None:
        """Progress line."""
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}")

    async def run(self) -> Results:
        """Run every part in order."""
        await asyncio.to_thread(self.broker.start)
        await asyncio.to_thread(self.influx.start)
        try:
            self.results.machine = {
                "cpus": os.cpu_count() or 0,
                "python": sys.version.split()[0],
                "platform": platform.platform(),
            }
            await self.influx_ceiling()
            await self.broker_ceiling()
            for collectors in (1, 2):
                await self.ingest(collectors)
            await self.latency()
            await self.detection()
            await self.edge_cost()
            await self.stream_cost()
            await self.backlog_drain()
        finally:
            await self._kill_all()
            await asyncio.to_thread(self.influx.stop)
            await asyncio.to_thread(self.broker.stop)
        return self.results

    # --- ceilings ---------------------------------------------------------------------------

    async def influx_ceiling(self) -> None:
        """InfluxDB's own /write rate with batches of 5000 camera points, 1 and 2 writers."""
        for writers in (1, 2):
            db = f"ceiling{writers}"
            async with InfluxClient(InfluxSettings(url=self.influx.url, database=db)) as client:
                await client.create_database()
                deadline = time.perf_counter() + self.config.ceiling_s
                started = time.perf_counter()
                base = time.time_ns() - 3600 * 10**9
                written = sum(
                    await asyncio.gather(
                        *(_ceiling_writer(client, i, base, deadline) for i in range(writers))
                    )
                )
                elapsed = time.perf_counter() - started
                await client.query(f'DROP DATABASE "{db}"', database="")  # see ingest()
            rate = written / elapsed
            self.results.ceilings[f"influx_write_{writers}_writer_pts_s"] = round(rate)
            self.say(f"InfluxDB ceiling, {writers} writer(s): {rate:,.0f} points/s")

    async def broker_ceiling(self) -> None:
        """mosquitto QoS 1 delivery with one paho publisher and one subscriber."""
        address = BrokerAddress.parse(self.broker.url)
        sub = MqttLink(
            LinkSettings(address=address, client_id="ceiling-sub"), message_queue_size=100_000
        )
        await sub.subscribe([TopicFilter("bench/ceiling")])
        await sub.start()
        await sub.wait_connected(10)
        script = (
            "import sys, time, threading, paho.mqtt.client as m\n"
            "from paho.mqtt.enums import CallbackAPIVersion as V\n"
            "c = m.Client(V.VERSION2, client_id='ceiling-pub', protocol=m.MQTTv5)\n"
            "c.max_inflight_messages_set(100); s = threading.Semaphore(100)\n"
            "c.on_publish = lambda *a: s.release()\n"
            f"c.connect('127.0.0.1', {self.broker.port}); c.loop_start()\n"
            f"end = time.time() + {self.config.ceiling_s}; n = 0\n"
            "while time.time() < end:\n"
            "    s.acquire(); c.publish('bench/ceiling', b'x' * 200, qos=1); n += 1\n"
            "print(n)\n"
        )
        started = time.perf_counter()
        process = await self.spawn(sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE)
        received = 0
        while process.returncode is None or not sub.messages.empty():
            try:
                async with asyncio.timeout(0.5):
                    await sub.messages.get()
                received += 1
            except TimeoutError:
                if process.returncode is not None:
                    break
        out, _ = await process.communicate()
        elapsed = time.perf_counter() - started
        await sub.close()
        rate = received / elapsed
        self.results.ceilings["broker_qos1_msgs_s"] = round(rate)
        self.say(
            f"broker ceiling (paho pair, QoS 1): {rate:,.0f} messages/s ({int(out or 0)} published)"
        )

    # --- ingest -----------------------------------------------------------------------------

    async def start_collector(
        self, index: int, database: str
    ) -> tuple[asyncio.subprocess.Process, int]:
        """A collector process."""
        port = free_port()
        log = (self.workdir / f"collector-{index}.log").open("ab")
        process = await self.spawn(
            sys.executable,
            "-m",
            "pantau",
            "collector",
            "--mqtt",
            self.broker.url,
            "--influx",
            self.influx.url,
            "--database",
            database,
            "--http-port",
            str(port),
            "--client-id",
            f"bench-collector-{database}-{index}",
            # A group of its own: a stopped collector's persistent session stays in its group
            # and keeps receiving its share (queued for its return).
            "--share-group",
            f"bench-{database}",
            "--instance",
            f"c{index}",
            "--dead-letter",
            str(self.workdir / f"dl-{database}-{index}.sqlite"),
            "--log-level",
            "WARNING",
            stdout=log,
            stderr=log,
        )
        log.close()
        async with httpx.AsyncClient(timeout=1) as http, asyncio.timeout(30):
            while True:
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).json()[
                        "mqtt_connected"
                    ]:
                        break
                except (httpx.HTTPError, ValueError, KeyError):
                    pass
                await asyncio.sleep(0.1)
        return process, port

    async def publisher(
        self, site: str, duration: float, rate: float, start_ns: int, allowance: Path | None
    ) -> asyncio.subprocess.Process:
        """One load publisher process; ``rate`` is the total over all publishers (0: no cap)."""
        argv = [
            sys.executable,
            "-m",
            "simulators.bench_publisher",
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

    async def ingest(
        self,
        collectors: int,
        *,
        rate: float = 0.0,
        duration: float | None = None,
        record: bool = True,
    ) -> float:
        """Publishers push as fast as the collectors absorb; count what lands in InfluxDB."""
        duration = duration or self.config.ingest_s
        database = f"ingest{collectors}" if record else "latency"
        async with InfluxClient(InfluxSettings(url=self.influx.url, database=database)) as influx:
            await influx.query(f'DROP DATABASE "{database}"', database="")
            await influx.create_database()
            procs = [await self.start_collector(i, database) for i in range(collectors)]
            ports = [port for _, port in procs]
            allowance_files = [self.workdir / f"allow-{i}" for i in range(self.config.publishers)]
            lead = int(LEAD_S * 100_000)
            for path in allowance_files:
                path.write_text(str(lead))
            start_ns = time.time_ns() - 600 * 10**9
            started = time.perf_counter()
            publishers = [
                await self.publisher(f"bench{i}", duration, rate, start_ns, allowance_files[i])
                for i in range(self.config.publishers)
            ]
            usage_before = [process_usage(p.pid) for p, _ in procs]
            while any(p.returncode is None for p in publishers):
                done = await self.written(ports)
                share = int((done + lead) / self.config.publishers)
                for path in allowance_files:
                    path.write_text(str(share))
                await asyncio.sleep(0.1)
            published = 0
            for p in publishers:
                out, _ = await p.communicate()
                published += int(json.loads(out)["published"])
            while time.perf_counter() - started < duration + DRAIN_LIMIT_S:  # other processes
                if await self.written(ports) >= published:
                    break
                await asyncio.sleep(0.05)
            landed_at = time.perf_counter()
            usage_after = [process_usage(p.pid) for p, _ in procs]
            rows = series_rows(await influx.query('SELECT count("up") FROM camera'))
            stored = int(rows[0]["count"]) if rows else 0
            # Millions of points left behind keep influxd compacting (CPU) through the next
            # stages, whose latency would then measure that: drop them once counted.
            await influx.query(f'DROP DATABASE "{database}"', database="")
            for p, _ in procs:
                p.terminate()
                await p.wait()
        elapsed = landed_at - started
        landed_rate = stored / elapsed
        if not record:
            return landed_rate
        cpu = sum(a.cpu_s - b.cpu_s for a, b in zip(usage_after, usage_before, strict=True))
        ceiling = self.results.ceilings.get(f"influx_write_{min(collectors, 2)}_writer_pts_s", 0)
        self.results.ingest[f"{collectors}_collector"] = {
            "readings_s": round(landed_rate),
            "published": published,
            "stored": stored,
            "lost": max(0, published - stored),
            "dup": max(0, stored - published),
            "collector_cpu_pct_of_core": round(100 * cpu / elapsed, 1),
            "collector_peak_rss_mb": round(max(a.peak_rss_mb for a in usage_after), 1),
            "ratio_to_influx_ceiling": round(landed_rate / ceiling, 3) if ceiling else 0,
        }
        self.say(
            f"ingest with {collectors} collector(s): {landed_rate:,.0f} readings/s "
            f"(published {published}, stored {stored})"
        )
        return landed_rate

    # --- latency ----------------------------------------------------------------------------

    async def latency(self) -> None:
        """Edge timestamp → queryable, at half the one-collector sustained rate."""
        sustained = self.results.ingest.get("1_collector", {}).get("readings_s", 20_000)
        rate = sustained / 2
        database = "latency"
        async with InfluxClient(InfluxSettings(url=self.influx.url, database=database)) as influx:
            await influx.query(f'DROP DATABASE "{database}"', database="")
            await influx.create_database()
            collector, port = await self.start_collector(9, database)
            address = BrokerAddress.parse(self.broker.url)
            marker = MqttLink(LinkSettings(address=address, client_id="bench-marker"))
            await marker.start()
            await marker.wait_connected(10)
            start_ns = time.time_ns() - 600 * 10**9
            load = [
                await self.publisher(f"load{i}", self.config.latency_s, rate, start_ns, None)
                for i in range(self.config.publishers)
            ]
            latencies: list[float] = []
            sent: dict[int, float] = {}
            seen_after = 0
            deadline = time.perf_counter() + self.config.latency_s
            next_marker = time.perf_counter()
            while time.perf_counter() < deadline or (sent and time.perf_counter() < deadline + 5):
                now = time.perf_counter()
                if now >= next_marker and now < deadline:
                    ts = time.time_ns()
                    payload = (
                        f'{{"v":1,"site":"marker","district":"bench","sensors":[{{"sensor":"m",'
                        f'"kind":"latency","ts":{ts},"value":1.0}}]}}'
                    ).encode()
                    await marker.publish("pantau/v1/sites/marker/readings", payload)  # type: ignore[arg-type]
                    sent[ts] = ts / 1e9
                    next_marker = now + 0.1
                rows = series_rows(
                    await influx.query(
                        f"SELECT \"value\" FROM sensor WHERE site='marker' AND time > {seen_after}"
                    )
                )
                arrived = time.time()
                for row in rows:
                    ts = int(row["time"])
                    if ts in sent:
                        latencies.append(arrived - sent.pop(ts))
                    seen_after = max(seen_after, ts)
                await asyncio.sleep(0.02)
            for p in load:
                await p.communicate()
            await marker.close()
            collector.terminate()
            await collector.wait()
        del port
        if latencies:
            latencies.sort()
            p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
            self.results.latency = {
                "load_readings_s": round(rate),
                "markers": len(latencies),
                "p50_s": round(statistics.median(latencies), 3),
                "p99_s": round(p99, 3),
                "unseen_markers": len(sent),
            }
            self.say(
                f"latency at {rate:,.0f} readings/s: p50 {statistics.median(latencies):.3f}s"
                f" p99 {p99:.3f}s over {len(latencies)} markers"
            )

    # --- offline detection ------------------------------------------------------------------

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
        log = (self.workdir / f"{config.stem}.log").open("ab")
        process = await self.spawn(
            sys.executable,
            "-m",
            "pantau",
            "agent",
            "--config",
            str(config),
            "--log-level",
            "WARNING",
            stdout=log,
            stderr=log,
        )
        log.close()
        return process

    async def detection(self) -> None:
        """SIGKILL an agent; seconds until its site shows online=0 in InfluxDB."""
        keepalive = 5
        database = "detection"
        times: list[float] = []
        async with InfluxClient(InfluxSettings(url=self.influx.url, database=database)) as influx:
            await influx.create_database()
            collector, _ = await self.start_collector(8, database)
            for run in range(self.config.detection_runs):
                config = self.agent_config(
                    f"det{run}", [], keepalive, 2.0, self.workdir / f"det{run}.sqlite"
                )
                agent = await self.start_agent(config)
                site = f"det{run}"
                await _until(functools.partial(_online, influx, site, 1), 30)
                killed = time.time()
                agent.kill()
                await agent.wait()
                await _until(functools.partial(_online, influx, site, 0), 3 * keepalive + 5)
                times.append(time.time() - killed)
            collector.terminate()
            await collector.wait()
        self.results.detection = {
            "keepalive_s": keepalive,
            "runs": len(times),
            "median_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3),
            "target_s": 1.5 * keepalive + 1,
        }
        self.say(f"offline detection: median {statistics.median(times):.3f}s over {len(times)}")

    # --- edge cost --------------------------------------------------------------------------

    async def edge_cost(self) -> None:
        """One agent probing N fake cameras every 10 s plus sensors: CPU and peak RSS."""
        cameras = [FakeCamera(f"e{i}") for i in range(self.config.edge_cameras)]
        for cam in cameras:
            await cam.start()
        config = self.agent_config("edge", cameras, 10, 10.0, self.workdir / "edge.sqlite")
        agent = await self.start_agent(config)
        await asyncio.sleep(3)  # start-up (imports) is not the steady state we measure
        before = process_usage(agent.pid)
        started = time.perf_counter()
        await asyncio.sleep(self.config.edge_s)
        after = process_usage(agent.pid)
        elapsed = time.perf_counter() - started
        agent.terminate()
        await agent.wait()
        for cam in cameras:
            await cam.stop()
        cpu_pct = 100 * (after.cpu_s - before.cpu_s) / elapsed
        self.results.edge = {
            "cameras": len(cameras),
            "seconds": round(elapsed, 1),
            "cpu_pct_of_core": round(cpu_pct, 2),
            "peak_rss_mb": round(after.peak_rss_mb, 1),
        }
        self.say(
            f"edge cost, {len(cameras)} cameras every 10 s: {cpu_pct:.2f}% of a core, "
            f"peak RSS {after.peak_rss_mb:.1f} MB"
        )

    async def stream_cost(self) -> None:
        """CPU seconds per stream probe (H.264, 10 fps) at two sizes, and how many cameras one
        core keeps under a 5-minute stream-probe cycle."""
        for width, height in STREAM_SIZES:
            camera = FakeCamera("stream-bench", video_size=(width, height))
            await camera.start()
            url = f"rtsp://admin:pantau@127.0.0.1:{camera.rtsp_port}/stream1"
            cpu, wall = [], []
            try:
                for _ in range(self.config.stream_runs):
                    started = time.perf_counter()
                    result = await asyncio.to_thread(
                        probe_stream,
                        url,
                        sample_s=self.config.stream_sample_s,
                        timeout_s=10.0,
                        thresholds=StreamThresholds(),
                    )
                    wall.append(time.perf_counter() - started)
                    cpu.append(result.cpu_s)
                    if result.fault is not StreamFault.NONE:
                        raise RuntimeError(f"stream bench probe failed: {result.detail}")
            finally:
                await camera.stop()
            per_probe = statistics.median(cpu)
            self.results.stream[f"{width}x{height}"] = {
                "sample_s": self.config.stream_sample_s,
                "cpu_s_per_probe": round(per_probe, 4),
                "wall_s_per_probe": round(statistics.median(wall), 2),
                "cameras_per_core_5min": int(STREAM_CYCLE_S / per_probe),
            }
            self.say(
                f"stream probe {width}x{height}, {self.config.stream_sample_s:g}s of video: "
                f"{per_probe:.3f} CPU s each -> {int(STREAM_CYCLE_S / per_probe)} cameras per "
                "core every 5 min"
            )

    async def backlog_drain(self) -> None:
        """An agent whose queue holds a day of a 32-camera site reconnects: seconds to drain."""
        database = "backlog"
        queue_path = self.workdir / "backlog.sqlite"
        queue = ReadingQueue(queue_path, max_readings=10**7, max_age_s=3 * 86400)
        day_start = time.time_ns() - 86400 * 10**9
        per_camera = max(1, self.config.backlog_readings // 32)
        step = 86400 * 10**9 // per_camera
        items = []
        for n in range(per_camera):
            for cam in range(32):
                ts = day_start + n * step + cam
                body = (
                    CameraReading(
                        camera=f"c{cam + 1}", ts=ts, up=True, cause=Cause.OK, latency_ms=12.3
                    )
                    .model_dump_json(exclude_none=True)
                    .encode()
                )
                items.append(("cameras", ts, body))
        for chunk in range(0, len(items), 50_000):
            queue.append(items[chunk : chunk + 50_000], now_ns=time.time_ns())
        queue.close()
        fakes = [FakeCamera(f"b{i}") for i in range(4)]
        for fake in fakes:
            await fake.start()
        async with InfluxClient(InfluxSettings(url=self.influx.url, database=database)) as influx:
            await influx.create_database()
            collector, port = await self.start_collector(7, database)
            config = self.agent_config("backlog", fakes, 10, 2.0, queue_path)
            started = time.perf_counter()
            agent = await self.start_agent(config)
            await _until(lambda: _queue_empty(queue_path), 600, interval=0.2)
            drained = time.perf_counter() - started
            live = series_rows(
                await influx.query(
                    "SELECT last(\"up\") FROM camera WHERE site='backlog' AND camera='c1' AND "
                    f"time > {time.time_ns() - 3600 * 10**9}"
                )
            )
            lag = time.time() - int(live[0]["time"]) / 1e9 if live else float("nan")
            agent.terminate()
            await agent.wait()
            collector.terminate()
            await collector.wait()
            del port
        for fake in fakes:
            await fake.stop()
        self.results.backlog = {
            "readings": len(items),
            "drain_s": round(drained, 2),
            "readings_s": round(len(items) / drained),
            "live_lag_at_end_s": round(lag, 2),
        }
        self.say(
            f"backlog of {len(items):,} readings drained in {drained:.1f}s; live reading "
            f"{lag:.1f}s old at the end"
        )


async def _ceiling_writer(client: InfluxClient, index: int, base: int, deadline: float) -> int:
    """Write 5,000-point batches until ``deadline``; return the points written."""
    count = 0
    while time.perf_counter() < deadline:
        start = base + index * 10**9 + (count // 5000) * 100
        await client.write(camera_lines(5000, f"w{index}", start))
        count += 5000
    return count


async def _until(condition: Callable[[], Any], timeout_s: float, interval: float = 0.05) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(interval)


async def _online(influx: InfluxClient, site: str, value: int) -> bool:
    rows = series_rows(await influx.query(f"SELECT last(\"online\") FROM site WHERE site='{site}'"))
    return bool(rows) and rows[0]["last"] == value


STREAM_SIZES = ((640, 360), (1280, 720))  # typical sub-stream and HD main stream
STREAM_CYCLE_S = 300.0


def _queue_empty(path: Path) -> bool:
    return count_queued(path) < 200


TARGETS = {
    "ingest": ("1 collector readings/s", 60_000),
    "ratio": ("ratio to InfluxDB ceiling", 0.75),
    "p99": ("latency p99 s", 2.0),
    "edge_cpu": ("edge CPU % of a core", 2.0),
    "edge_rss": ("edge peak RSS MB", 60.0),
    "backlog": ("24 h backlog drain s", 60.0),
}


def render(results: Results, console: Console) -> None:
    """The results beside ceilings and targets."""
    table = Table(title="pantau bench")
    for column in ("figure", "measured", "ceiling / target"):
        table.add_column(column)
    c = results.ceilings
    table.add_row(
        "InfluxDB /write, 1 writer (pts/s)",
        f"{c.get('influx_write_1_writer_pts_s', 0):,}",
        "ceiling",
    )
    table.add_row(
        "InfluxDB /write, 2 writers (pts/s)",
        f"{c.get('influx_write_2_writer_pts_s', 0):,}",
        "ceiling",
    )
    table.add_row(
        "mosquitto QoS 1, paho pair (msg/s)", f"{c.get('broker_qos1_msgs_s', 0):,}", "ceiling"
    )
    for key, row in results.ingest.items():
        table.add_row(
            f"ingest, {key.replace('_', ' ')} (readings/s)",
            f"{row['readings_s']:,}",
            "≥ 60,000" if key.startswith("1") else "",
        )
        table.add_row("  ratio to InfluxDB ceiling", f"{row['ratio_to_influx_ceiling']}", "≥ 0.75")
        table.add_row("  lost / dup", f"{row['lost']} / {row['dup']}", "0 / 0")
        table.add_row(
            "  collector CPU % / peak RSS MB",
            f"{row['collector_cpu_pct_of_core']} / {row['collector_peak_rss_mb']}",
            "",
        )
    if results.latency:
        table.add_row(
            f"latency p50 / p99 (s) at {results.latency['load_readings_s']:,}/s",
            f"{results.latency['p50_s']} / {results.latency['p99_s']}",
            "p99 ≤ 2",
        )
    if results.detection:
        d = results.detection
        table.add_row("offline detection median (s)", f"{d['median_s']}", f"≤ {d['target_s']}")
    if results.edge:
        e = results.edge
        table.add_row(
            f"edge, {e['cameras']} cameras: CPU % of a core", f"{e['cpu_pct_of_core']}", "≤ 2"
        )
        table.add_row("edge peak RSS (MB)", f"{e['peak_rss_mb']}", "≤ 60")
    for size, row in results.stream.items():
        table.add_row(
            f"stream probe {size}, {row['sample_s']:g}s sample: CPU s / cameras per core (5 min)",
            f"{row['cpu_s_per_probe']} / {row['cameras_per_core_5min']:,}",
            "",
        )
    if results.backlog:
        b = results.backlog
        table.add_row(f"backlog of {b['readings']:,} drained (s)", f"{b['drain_s']}", "≤ 60")
    console.print(table)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


async def run_bench(config: BenchConfig, out_dir: Path, console: Console) -> Path:
    """Run, print, and write the JSON; return its path."""
    with tempfile.TemporaryDirectory(prefix="pantau-bench-") as tmp:
        results = await Bench(config, Path(tmp), console).run()
    render(results, console)
    path = out_dir / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    await asyncio.to_thread(_write_json, path, asdict(results))
    console.print(f"results written to {path}")
    return path
