"""``pantau chaos``: a fault schedule on real services, then a ledger check: lost=0 dup=0.

The schedule (times scale with the duration; these are for 150 s):

    t=15s   restart the broker (graceful: mosquitto saves its sessions)
    t=18s   cut site s2's uplink for 120 s (its agent keeps probing into its disk queue)
    t=30s   SIGKILL collector 1; restart it 6 s later (its persistent session is redelivered)
    t=45s   stop InfluxDB for 60 s (collectors hold, the broker queues, nothing is acked)
    t=75s   SIGKILL site s3's agent; restart it 7.5 s later (its disk queue survives)
    t=108s  SIGKILL both collectors (a bad deploy); while they are away:
    t=111s  SIGKILL the broker and start it again (what it had queued for them is gone)
    t=116s  restart the broker gracefully (mosquitto 2.0 forgets what it queued for an offline
            shared subscriber even then)
    t=121s  start both collectors again; agents send again whatever was not receipted

Two collectors share the subscription throughout. At the end the agents are stopped cleanly
(they flush their queues), the collectors drain, and every reading in the agents' ledgers is
looked up in InfluxDB.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from cloud.influx import InfluxClient, InfluxSettings
from devtools.localsvc import InfluxProcess, MosquittoProcess, make_influx, make_mosquitto
from simulators.demo import scrape_collectors
from simulators.ledger import LedgerComparison, compare
from simulators.runner import Simulation, SimulationOptions
from simulators.scenario import Scenario, SimSite

log = logging.getLogger(__name__)

REFERENCE_DURATION_S = 150.0
DRAIN_TIMEOUT_S = 60.0  # after the schedule: replaying a 120 s uplink cut takes a few seconds


@dataclass
class ChaosResult:
    """The ledger comparison plus what was done and what each collector wrote."""

    comparison: LedgerComparison
    actions: list[tuple[float, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    written_per_collector: list[float] = field(default_factory=list)
    interrupted: bool = False  # stopped by a signal before the schedule ended


def chaos_scenario(sites: int = 4, cameras: int = 6) -> Scenario:
    """Steady sites with 1 s probes: thousands of readings in a couple of minutes."""
    return Scenario(
        seed=11,
        probe_interval=1.0,
        probe_timeout=0.5,
        keepalive=3,
        sites=[
            SimSite(
                id=f"s{i}",
                district=f"d{(i + 1) // 2}",
                lat=-3.8 - 0.1 * i,
                lon=102.2,
                cameras=cameras,
            )
            for i in range(1, sites + 1)
        ],
    )


async def _finish_in_thread(action: Callable[[], None]) -> None:
    """Run a service's start or stop in a thread; if cancelled (a signal ends the run), let it
    finish before cancelling, so the final cleanup never races a start still under way."""
    running = asyncio.ensure_future(asyncio.to_thread(action))
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        await running
        raise


class ChaosMonkey:
    """Carries out the fault schedule against one simulation."""

    def __init__(
        self,
        sim: Simulation,
        broker: MosquittoProcess | None,
        influx: InfluxProcess | None,
        duration_s: float,
    ) -> None:
        self.sim, self.broker, self.influx = sim, broker, influx
        self.scale = duration_s / REFERENCE_DURATION_S
        self.actions: list[tuple[float, str]] = []
        self.skipped: list[str] = []

    def _note(self, text: str) -> None:
        self.actions.append((self.sim.elapsed_s, text))
        log.info("chaos t=%.1fs: %s", self.sim.elapsed_s, text)

    async def _at(self, t_s: float, action: Callable[[], Awaitable[None]]) -> None:
        delay = t_s * self.scale - self.sim.elapsed_s
        if delay > 0:
            await asyncio.sleep(delay)
        await action()

    async def run(self) -> None:
        """Run every fault concurrently on its own timeline."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._at(15, self.restart_broker), name="chaos-broker")
            tasks.create_task(self._at(18, self.cut_uplink), name="chaos-uplink")
            tasks.create_task(self._at(30, self.kill_collector), name="chaos-collector")
            tasks.create_task(self._at(45, self.stop_influx), name="chaos-influx")
            tasks.create_task(self._at(75, self.kill_agent), name="chaos-agent")
            tasks.create_task(self._at(108, self.collectors_away), name="chaos-away")

    async def restart_broker(self) -> None:
        """Stop and start mosquitto on the same port and data."""
        if self.broker is None:
            self.skipped.append("broker restart (broker not started by pantau)")
            return
        self._note("broker restart")
        await _finish_in_thread(self.broker.restart)
        self._note("broker back")

    async def cut_uplink(self) -> None:
        """Cut s2's uplink for 120 s (scaled)."""
        runtime = self.sim.sites["s2"]
        runtime.uplink.cut()
        self._note("s2 uplink cut")
        await asyncio.sleep(120 * self.scale)
        runtime.uplink.restore()
        self._note("s2 uplink restored")

    async def kill_collector(self) -> None:
        """SIGKILL collector 1, restart it later."""
        collector = self.sim.collectors[0]
        await self.sim.kill_process(collector.process)
        self._note("collector 1 SIGKILL")
        await asyncio.sleep(6 * self.scale)
        await self.sim.start_collector(collector)
        self._note("collector 1 restarted")

    async def stop_influx(self) -> None:
        """Stop InfluxDB for 60 s (scaled)."""
        if self.influx is None:
            self.skipped.append("InfluxDB outage (InfluxDB not started by pantau)")
            return
        await _finish_in_thread(self.influx.stop)
        self._note("InfluxDB stopped")
        await asyncio.sleep(60 * self.scale)
        await _finish_in_thread(self.influx.start)
        self._note("InfluxDB started")

    async def collectors_away(self) -> None:
        """Both collectors SIGKILLed; the broker killed, then restarted, while they are away."""
        for collector in self.sim.collectors:
            await self.sim.kill_process(collector.process)
        self._note("collectors SIGKILL")
        if self.broker is None:
            self.skipped.append("broker faults while collectors are away (broker not ours)")
        else:
            await asyncio.sleep(3 * self.scale)
            await _finish_in_thread(self.broker.kill)
            await _finish_in_thread(self.broker.start)
            self._note("broker SIGKILL and back")
            await asyncio.sleep(5 * self.scale)
            await _finish_in_thread(self.broker.restart)
            self._note("broker graceful restart")
        await asyncio.sleep(5 * self.scale)
        for collector in self.sim.collectors:
            await self.sim.start_collector(collector)
        self._note("collectors restarted")

    async def kill_agent(self) -> None:
        """SIGKILL s3's agent, restart it later."""
        runtime = self.sim.sites["s3"]
        await self.sim.kill_process(runtime.process)
        self._note("s3 agent SIGKILL")
        await asyncio.sleep(7.5 * self.scale)
        await self.sim.start_agent(runtime)
        self._note("s3 agent restarted")


async def run_chaos(
    duration_s: float,
    *,
    mqtt_url: str | None = None,
    influx_url: str | None = None,
    database: str = "pantau_chaos",
    workdir: Path | None = None,
    console: Console | None = None,
    stop: asyncio.Event | None = None,
) -> ChaosResult:
    """Run the schedule on services started here (or the given URLs) and compare the ledger.

    Setting ``stop`` (a signal) ends the schedule early; every process is stopped either way.
    """
    with tempfile.TemporaryDirectory(prefix="pantau-chaos-") as tmp:
        base = workdir or Path(tmp)
        broker = make_mosquitto(base) if mqtt_url is None else None
        influxd = make_influx(base) if influx_url is None else None
        try:
            for process in (broker, influxd):
                if process is not None:
                    await asyncio.to_thread(process.start)
            return await _run(
                duration_s,
                broker=broker,
                influxd=influxd,
                mqtt_url=mqtt_url or (broker.url if broker else ""),
                influx_url=influx_url or (influxd.url if influxd else ""),
                database=database,
                base=base,
                console=console,
                stop=stop or asyncio.Event(),
            )
        finally:
            for process in (influxd, broker):
                if process is not None:
                    await asyncio.to_thread(process.stop)


async def _run(
    duration_s: float,
    *,
    broker: MosquittoProcess | None,
    influxd: InfluxProcess | None,
    mqtt_url: str,
    influx_url: str,
    database: str,
    base: Path,
    console: Console | None,
    stop: asyncio.Event,
) -> ChaosResult:
    async with InfluxClient(InfluxSettings(url=influx_url, database=database)) as influx:
        await influx.query(f'DROP DATABASE "{database}"', database="")
        await influx.create_database()
        sim = Simulation(
            chaos_scenario(),
            SimulationOptions(
                mqtt_url=mqtt_url,
                influx_url=influx_url,
                database=database,
                workdir=base / "sim",
                collectors=2,
                ledger=True,
            ),
        )
        monkey = ChaosMonkey(sim, broker, influxd, duration_s)
        interrupted = False
        try:
            await sim.start()
            interrupted = await _schedule_until(sim, monkey, duration_s, console, stop)
            if console is not None and not interrupted:
                console.print("waiting for the agents' queues to drain")
            per_cycle = max(len(s.cameras) + 10 for s in sim.sites.values())
            if not interrupted and not await sim.wait_queues_below(
                per_cycle, timeout_s=DRAIN_TIMEOUT_S
            ):
                log.warning("queues still hold readings: %s", await asyncio.to_thread(sim.queued))
            if console is not None:
                console.print("stopping agents (they flush their queues) and draining collectors")
            written = [(await scrape_collectors([c.http_port])).written for c in sim.collectors]
        finally:
            await sim.stop()
        # Interrupted early, an agent may not have created its queue yet: compare what exists.
        queues = {site: rt.queue_path for site, rt in sim.sites.items() if rt.queue_path.exists()}
        comparison = await compare(influx, queues)
        return ChaosResult(comparison, monkey.actions, monkey.skipped, written, interrupted)


async def _schedule_until(
    sim: Simulation,
    monkey: ChaosMonkey,
    duration_s: float,
    console: Console | None,
    stop: asyncio.Event,
) -> bool:
    """Run the fault schedule to its end or until ``stop``; True if stopped."""

    async def schedule() -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(monkey.run(), name="chaos-monkey")
            tasks.create_task(sim.run_events(duration_s), name="chaos-clock")
            if console is not None:
                tasks.create_task(_progress(sim, monkey, duration_s, console), name="progress")

    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(schedule(), name="chaos-schedule")
        stopper = tasks.create_task(stop.wait(), name="chaos-stop")
        await asyncio.wait({running, stopper}, return_when=asyncio.FIRST_COMPLETED)
        running.cancel()
        stopper.cancel()
    return stop.is_set()


async def _progress(
    sim: Simulation, monkey: ChaosMonkey, duration_s: float, console: Console
) -> None:
    shown = 0
    while sim.elapsed_s < duration_s:
        while shown < len(monkey.actions):
            at, text = monkey.actions[shown]
            console.print(f"t={at:6.1f}s  {text}")
            shown += 1
        await asyncio.sleep(0.5)
