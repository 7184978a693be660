"""Run a scenario: fake cameras, per-site uplinks, one agent process per site, the collector(s).

Agents and collectors are real ``pantau`` processes: power cuts and crashes are real SIGKILLs."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from devtools.localsvc import free_port
from devtools.processes import (
    agent_argv,
    collector_argv,
    collector_health,
    kill_process,
    start_logged,
    stop_process,
    wait_collector_connected,
)
from edge_agent.queue import count_queued
from pantau.core.contract import AgentReading, GapReading, ReadingBatch, TopicKind, site_topic
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from simulators.cabinet import FakeUps, UpsState
from simulators.cameras import CameraMode, FakeCamera
from simulators.scenario import (
    CameraEvent,
    EdgeFaultEvent,
    Event,
    MalformedEvent,
    PowerEvent,
    Scenario,
    SimSite,
    UplinkEvent,
    UpsEvent,
)
from simulators.site_path import SitePath
from simulators.video import Picture

log = logging.getLogger(__name__)

MALFORMED_PAYLOAD = b'{"v": 1, "site": "this is not valid JSON'
PROCESS_STOP_TIMEOUT_S = 10.0
SIM_RECEIPT_TIMEOUT_S = 15.0


@dataclass(frozen=True, kw_only=True)
class SimulationOptions:
    """Where the simulation's services are and where it keeps its files."""

    mqtt_url: str
    influx_url: str
    database: str
    workdir: Path
    collectors: int = 1
    ledger: bool = False
    agent_log_level: str = "INFO"


@dataclass
class SiteRuntime:
    """Live state of one simulated site."""

    site: SimSite
    uplink: SitePath  # the district's internet: MQTT and the services' proxy, cut together
    cameras: dict[str, FakeCamera]
    desired: dict[str, CameraMode]
    config_path: Path
    queue_path: Path
    powered: bool = True
    process: asyncio.subprocess.Process | None = None
    log_file: Path | None = None
    ups: FakeUps | None = None


@dataclass
class CollectorRuntime:
    """One collector process."""

    index: int
    http_port: int
    process: asyncio.subprocess.Process | None = None


@dataclass
class SimulationLog:
    """What happened, for the summary."""

    events: list[tuple[float, str]] = field(default_factory=list)


def edge_fault_reports(site: str, district: str, now_ns: int) -> list[bytes]:
    """What an agent publishes after its disk filled (a gap and its queue error; 4 readings the
    cloud refused, set aside), and a batch from a clock an hour ahead."""
    gap = GapReading(ts=now_ns, start_ts=now_ns - 60 * 10**9, end_ts=now_ns - 30 * 10**9, count=30)
    health = AgentReading(
        ts=now_ns - 7,
        backlog=0,
        dropped_total=30,
        oldest_age_s=0.0,
        queue_error="queue write failed: database or disk is full",
        rejected_total=4,
    )
    ahead = AgentReading(ts=now_ns + 3600 * 10**9, backlog=0, dropped_total=0, oldest_age_s=0.0)
    batches = (
        ReadingBatch(site=site, district=district, gaps=[gap], agent=[health]),
        ReadingBatch(site=site, district=district, agent=[ahead]),
    )
    return [batch.model_dump_json().encode() for batch in batches]


class Simulation:
    """Owns every simulated device and process of a scenario run."""

    def __init__(self, scenario: Scenario, options: SimulationOptions) -> None:
        self.scenario = scenario
        self.options = options
        self.sites: dict[str, SiteRuntime] = {}
        self.collectors: list[CollectorRuntime] = []
        self.history = SimulationLog()
        self._t0 = time.monotonic()
        self._broker = BrokerAddress.parse(options.mqtt_url)

    @property
    def elapsed_s(self) -> float:
        """Seconds since the simulation started."""
        return time.monotonic() - self._t0

    def _note(self, text: str) -> None:
        self.history.events.append((self.elapsed_s, text))
        log.info("t=%.1fs %s", self.elapsed_s, text)

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start cameras, uplinks, collectors and agents."""
        self.options.workdir.mkdir(parents=True, exist_ok=True)
        (self.options.workdir / "logs").mkdir(exist_ok=True)
        for index, site in enumerate(self.scenario.sites):
            uplink = SitePath(self._broker.host, self._broker.port)
            await uplink.start()
            cameras = {cid: FakeCamera(f"{site.id}/{cid}") for cid in site.camera_ids()}
            for camera in cameras.values():
                await camera.start()
            site_dir = self.options.workdir / "agents" / site.id
            site_dir.mkdir(parents=True, exist_ok=True)
            ups = FakeUps(site_dir / "ups") if site.ups else None
            if ups is not None:
                await asyncio.to_thread(ups.start)
            runtime = SiteRuntime(
                ups=ups,
                site=site,
                uplink=uplink,
                cameras=cameras,
                desired=dict.fromkeys(cameras, CameraMode.UP),
                config_path=site_dir / "agent.yaml",
                queue_path=site_dir / "queue.sqlite",
                log_file=self.options.workdir / "logs" / f"agent-{site.id}.log",
            )
            runtime.config_path.write_text(yaml.safe_dump(self.agent_config(runtime, index)))
            self.sites[site.id] = runtime
        for index in range(self.options.collectors):
            collector = CollectorRuntime(index=index + 1, http_port=free_port())
            self.collectors.append(collector)
            await self.start_collector(collector)
        # Brokers drop messages nobody subscribes to: agents start once the collectors' (shared,
        # persistent) subscriptions exist. In production that session outlives restarts.
        await self.wait_collectors_connected()
        for runtime in self.sites.values():
            await self.start_agent(runtime)
        self._t0 = time.monotonic()

    def agent_config(self, runtime: SiteRuntime, index: int) -> dict[str, object]:
        """The YAML config of a simulated site's agent."""
        site = runtime.site
        return {
            "site": {"id": site.id, "district": site.district, "lat": site.lat, "lon": site.lon},
            "broker": {
                "url": f"mqtt://127.0.0.1:{runtime.uplink.port}",
                "keepalive_s": self.scenario.keepalive,
            },
            "probe": {
                "interval_s": self.scenario.probe_interval,
                "timeout_s": self.scenario.probe_timeout,
            },
            "cameras": [
                {
                    "id": cid,
                    "rtsp_url": cam.rtsp_url,
                    "snapshot_url": cam.snapshot_url,
                    "username": cam.username,
                    "password": cam.password,
                }
                for cid, cam in runtime.cameras.items()
            ],
            "sensors": [
                {"type": "simulated", "id": "cabinet", "seed": self.scenario.seed * 1000 + index},
                {"type": "host", "id": "host"},
                *(
                    [
                        {
                            "type": "snmp_ups",
                            "id": "ups",
                            "host": "127.0.0.1",
                            "port": runtime.ups.port,
                            "timeout_s": 0.5,
                        }
                    ]
                    if runtime.ups
                    else []
                ),
            ],
            "queue": {"path": str(runtime.queue_path)},
            "ledger": self.options.ledger,
            # Simulations and chaos runs last minutes: a message the broker dropped is sent
            # again well inside their drain time (production waits 2 minutes).
            "publish": {"receipt_timeout_s": SIM_RECEIPT_TIMEOUT_S},
            "stream": {
                "enabled": self.scenario.stream_interval is not None,
                "interval_s": self.scenario.stream_interval or 300.0,
                "sample_s": self.scenario.stream_sample,
                "concurrency": self.scenario.stream_concurrency,
            },
        }

    async def start_agent(self, runtime: SiteRuntime) -> None:
        """Start the site's agent process."""
        assert runtime.log_file is not None
        argv = agent_argv(runtime.config_path, log_level=self.options.agent_log_level)
        runtime.process = await start_logged(argv, runtime.log_file, new_session=True)

    async def start_collector(self, collector: CollectorRuntime) -> None:
        """Start a collector process."""
        o = self.options
        argv = collector_argv(
            mqtt=o.mqtt_url,
            influx=o.influx_url,
            database=o.database,
            http_port=collector.http_port,
            client_id=f"pantau-sim-collector-{collector.index}",
            instance=f"collector-{collector.index}",
            dead_letter=o.workdir / f"dead-letter-{collector.index}.sqlite",
            rollup_live_every_s=2.0,  # simulations are small and short: a wall that keeps up
        )
        log_file = o.workdir / "logs" / f"collector-{collector.index}.log"
        collector.process = await start_logged(argv, log_file, new_session=True)

    async def kill_process(self, process: asyncio.subprocess.Process | None) -> None:
        """SIGKILL a process and reap it."""
        await kill_process(process)

    async def stop_process(self, process: asyncio.subprocess.Process | None) -> None:
        """SIGTERM a process, SIGKILL it if it does not leave in time."""
        await stop_process(process, PROCESS_STOP_TIMEOUT_S)

    async def stop(self) -> None:
        """Stop agents (they say goodbye), then collectors, UPSes, cameras and uplinks."""
        try:
            await asyncio.gather(*(self.stop_process(s.process) for s in self.sites.values()))
            await self.wait_collectors_idle()
        finally:  # whatever failed above, no process is left running
            await asyncio.gather(*(self.stop_process(c.process) for c in self.collectors))
            for runtime in self.sites.values():
                if runtime.ups is not None:
                    await asyncio.to_thread(runtime.ups.stop)
                for camera in runtime.cameras.values():
                    await camera.stop()
                await runtime.uplink.stop()

    async def wait_collectors_connected(self, timeout_s: float = 30.0) -> None:
        """Wait until every collector is connected and subscribed."""
        async with asyncio.timeout(timeout_s):
            for collector in self.collectors:
                await wait_collector_connected(collector.http_port, timeout_s)

    def queued(self) -> dict[str, int]:
        """Readings waiting in each site's on-disk queue."""
        return {site: count_queued(runtime.queue_path) for site, runtime in self.sites.items()}

    async def wait_queues_below(self, limit: int, timeout_s: float) -> bool:
        """Wait until every site's queue holds at most ``limit`` readings; False on timeout."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:  # other processes' files: poll them
                    counts = await asyncio.to_thread(self.queued)
                    if all(n <= limit for n in counts.values()):
                        break
                    await asyncio.sleep(0.2)
        except TimeoutError:
            return False
        return True

    async def wait_collectors_idle(self, timeout_s: float = 10.0) -> None:
        """Give collectors a moment to write what they hold (they ack only after writing)."""
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=1.0) as http:
            for collector in self.collectors:
                while time.monotonic() < deadline:
                    health = await collector_health(http, collector.http_port)
                    if health.get("pending_messages", 0) == 0:
                        break
                    await asyncio.sleep(0.1)

    # --- events ---------------------------------------------------------------------------------

    def timeline(self) -> list[tuple[float, str, Event]]:
        """Every scheduled action as ``(at, "start"|"end", event)``, in time order."""
        actions: list[tuple[float, str, Event]] = []
        for event in self.scenario.events:
            actions.append((event.at, "start", event))
            duration = getattr(event, "duration", None)
            if duration:
                actions.append((event.at + duration, "end", event))
        return sorted(actions, key=lambda item: item[0])

    async def run_events(self, duration_s: float) -> None:
        """Apply scheduled events until ``duration_s`` has passed since ``start()``."""
        for at, phase, event in self.timeline():
            if at >= duration_s:
                break
            delay = at - self.elapsed_s
            if delay > 0:
                await asyncio.sleep(delay)
            await self.apply(event, phase)
        remaining = duration_s - self.elapsed_s
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def apply(self, event: Event, phase: str) -> None:
        """Carry out one event's start or end."""
        if isinstance(event, CameraEvent):
            site_id, camera_id = event.camera.split("/")
            runtime = self.sites[site_id]
            if event.picture is not None:
                picture = event.picture if phase == "start" else Picture.MOVING
                runtime.cameras[camera_id].set_picture(picture)
                self._note(f"camera {event.camera} picture -> {picture.value}")
                return
            mode = event.state if event.state and phase == "start" else CameraMode.UP
            runtime.desired[camera_id] = mode
            if runtime.powered:
                await runtime.cameras[camera_id].set_mode(mode)
            self._note(f"camera {event.camera} -> {mode.value}")
        elif isinstance(event, UpsEvent):
            runtime = self.sites[event.site]
            assert runtime.ups is not None  # the scenario validator checked
            state = event.ups if phase == "start" else UpsState.ON_MAINS
            runtime.ups.set_state(state)
            self._note(f"site {event.site} UPS -> {state.value}")
        elif isinstance(event, UplinkEvent):
            runtime = self.sites[event.site]
            if phase == "start":
                runtime.uplink.cut()
            else:
                runtime.uplink.restore()
            self._note(f"site {event.site} uplink {'down' if phase == 'start' else 'up'}")
        elif isinstance(event, PowerEvent):
            await self._power(self.sites[event.site], on=phase == "end")
        elif isinstance(event, MalformedEvent):
            await self.publish_raw(
                site_topic(event.malformed, TopicKind.READINGS), MALFORMED_PAYLOAD
            )
            self._note(f"malformed message sent on site {event.malformed}'s topic")
        elif isinstance(event, EdgeFaultEvent):
            site = self.sites[event.edge_faults].site
            topic = site_topic(site.id, TopicKind.READINGS)
            for payload in edge_fault_reports(site.id, site.district, time.time_ns()):
                await self.publish_raw(topic, payload)
            self._note(f"edge fault reports sent on site {site.id}'s topic")

    async def _power(self, runtime: SiteRuntime, *, on: bool) -> None:
        runtime.powered = on
        if on:
            for cid, camera in runtime.cameras.items():
                await camera.set_mode(runtime.desired[cid])
            await self.start_agent(runtime)
        else:
            await self.kill_process(runtime.process)
            for camera in runtime.cameras.values():
                await camera.set_mode(CameraMode.DOWN)
        self._note(f"site {runtime.site.id} power {'on' if on else 'off'}")

    async def publish_raw(self, topic: str, payload: bytes) -> None:
        """Publish arbitrary bytes straight to the broker (QoS 1)."""
        link = MqttLink(
            LinkSettings(address=self._broker, client_id=f"pantau-sim-raw-{os.getpid()}")
        )
        await link.start()
        try:
            await link.wait_connected(10.0)
            async with asyncio.timeout(10.0):
                await link.publish(topic, payload, qos=1)  # type: ignore[arg-type]
        finally:
            await link.close()
