"""``pantau demo`` and ``pantau simulate``: run a scenario on real services, with a live view."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from cloud.deadletter import DeadLetterStore
from cloud.fleet import CameraState, SiteState, Status, current_cameras, current_sites
from cloud.influx import InfluxClient, InfluxError, InfluxSettings, series_rows
from devtools.localsvc import ManagedProcess, make_influx, make_mosquitto
from pantau.core.signing import new_key_pair
from simulators.cockpit import Cockpit, cockpit, demo_remediation
from simulators.devices import DeviceSimulation
from simulators.runner import Simulation, SimulationOptions
from simulators.scenario import Scenario
from simulators.services import running_services

log = logging.getLogger(__name__)

VIEW_REFRESH_S = 1.0
RATE_WINDOW_S = 10.0  # agents report once per probe interval: average over a few intervals
COMMAND_KEY_FILE = "command.key"


@dataclass
class CollectorFigures:
    """Figures scraped from the collectors' /metrics."""

    written: float = 0.0
    rejected: dict[str, float] = field(default_factory=dict)


@dataclass
class RunSummary:
    """What a simulation left behind."""

    duration_s: float
    points: dict[str, dict[str, int]]
    rejected: dict[str, float]
    written: float
    events: list[tuple[float, str]]
    interrupted: bool


async def scrape_collectors(http_ports: list[int]) -> CollectorFigures:
    """Sum the counters of the collectors serving /metrics on these loopback ports."""
    figures = CollectorFigures()
    async with httpx.AsyncClient(timeout=1.0) as http:
        for port in http_ports:
            try:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            except httpx.HTTPError:
                continue
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name == "pantau_readings_written_total":
                        figures.written += sample.value
                    elif sample.name == "pantau_messages_rejected_total":
                        reason = sample.labels["reason"]
                        figures.rejected[reason] = figures.rejected.get(reason, 0) + sample.value
    return figures


@contextlib.asynccontextmanager
async def services(
    mqtt_url: str | None, influx_url: str | None, base: Path
) -> AsyncIterator[tuple[str, str]]:
    """Use the given URLs; start a local mosquitto/influxd for any that is missing."""
    started: list[ManagedProcess] = []
    try:
        if mqtt_url is None:
            broker = make_mosquitto(base)
            await asyncio.to_thread(broker.start)
            started.append(broker)
            mqtt_url = broker.url
        if influx_url is None:
            influx = make_influx(base)
            await asyncio.to_thread(influx.start)
            started.append(influx)
            influx_url = influx.url
        yield mqtt_url, influx_url
    finally:
        for process in reversed(started):
            await asyncio.to_thread(process.stop)


def render(
    sim: Simulation,
    *,
    duration_s: float,
    cameras: list[CameraState],
    sites: list[SiteState],
    figures: CollectorFigures,
    rate: float,
    page: Cockpit | None = None,
) -> Group:
    """The live view: fleet headline, per-site table, recent events."""
    total = len(cameras)
    up = sum(1 for c in cameras if c.status is Status.UP)
    percent = 100.0 * up / total if total else 0.0
    rejected = int(sum(figures.rejected.values()))
    headline = (
        f"[b]t={sim.elapsed_s:5.1f}s / {duration_s:.0f}s[/b]   cameras online "
        f"[b]{up}/{total} ({percent:.0f}%)[/b]   readings written [b]{rate:,.0f}/s[/b] "
        f"(total {figures.written:,.0f})   rejected [b]{rejected}[/b]"
    )
    if page is not None:
        headline += (
            f"\ntechnician page (problems, acknowledge): [b]{page.page_link}[/b] ({page.sign_in})"
        )
    table = Table(expand=True)
    columns = ("site", "district", "agent", "up", "degraded", "down", "unknown", "uplink", "power")
    for column in columns:
        table.add_column(column)
    site_state = {s.site: s for s in sites}
    for site_id, runtime in sim.sites.items():
        mine = [c for c in cameras if c.site == site_id]
        state = site_state.get(site_id)
        agent = "[green]online" if state and state.online else "[red]offline"
        table.add_row(
            site_id,
            runtime.site.district,
            agent,
            str(sum(c.status is Status.UP for c in mine)),
            f"[magenta]{sum(c.status is Status.DEGRADED for c in mine)}",
            f"[red]{sum(c.status is Status.DOWN for c in mine)}",
            f"[yellow]{sum(c.status is Status.UNKNOWN for c in mine)}",
            "up" if runtime.uplink.is_up else "[red]cut",
            "on" if runtime.powered else "[red]off",
        )
    events = "\n".join(f"t={t:5.1f}s  {text}" for t, text in sim.history.events[-6:]) or "-"
    return Group(Panel(headline, title="pantau demo"), table, Panel(events, title="events"))


async def _live_loop(
    sim: Simulation, influx: InfluxClient, duration_s: float, console: Console, page: Cockpit | None
) -> None:
    stale_after = sim.scenario.probe_interval * 2.5
    samples: deque[tuple[float, float]] = deque()
    rate = 0.0
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while True:
            try:
                cameras = await current_cameras(influx, stale_after_s=stale_after)
                sites = await current_sites(influx)
            except InfluxError:
                cameras, sites = [], []
            figures = await scrape_collectors([c.http_port for c in sim.collectors])
            now = time.monotonic()
            samples.append((now, figures.written))
            while samples[0][0] < now - RATE_WINDOW_S:
                samples.popleft()
            if now > samples[0][0]:
                rate = max(0.0, (figures.written - samples[0][1]) / (now - samples[0][0]))
            live.update(
                render(
                    sim,
                    duration_s=duration_s,
                    cameras=cameras,
                    sites=sites,
                    figures=figures,
                    rate=rate,
                    page=page,
                )
            )
            await asyncio.sleep(VIEW_REFRESH_S)


async def count_points(influx: InfluxClient) -> dict[str, dict[str, int]]:
    """Points per measurement and site."""
    counts: dict[str, dict[str, int]] = {}
    for measurement, fieldname in (
        ("camera", "up"),
        ("sensor", "value"),
        ("site", "online"),
        ("agent", "backlog"),
        ("service", "ok"),
    ):
        rows = series_rows(
            await influx.query(f'SELECT count("{fieldname}") FROM "{measurement}" GROUP BY "site"')
        )
        counts[measurement] = {row["site"]: int(row["count"]) for row in rows}
    return counts


async def run_scenario(
    scenario: Scenario,
    *,
    duration_s: float,
    mqtt_url: str | None,
    influx_url: str | None,
    database: str,
    workdir: Path | None,
    stop: asyncio.Event,
    console: Console | None,
    collectors: int = 1,
    page_port: int | None = None,
) -> RunSummary:
    """Run ``scenario`` for ``duration_s`` (or until ``stop``); return what was stored."""
    with tempfile.TemporaryDirectory(prefix="pantau-") as tmp:
        base = workdir or Path(tmp)
        async with services(mqtt_url, influx_url, base) as (mqtt, influx_base):
            settings = InfluxSettings(url=influx_base, database=database)
            async with InfluxClient(settings) as influx:
                await influx.create_database()
                # Switch sites take signed commands: a key of the run's own, in its work dir.
                key = command_key(base) if any(s.switch for s in scenario.sites) else None
                sim = DeviceSimulation(
                    scenario,
                    SimulationOptions(
                        mqtt_url=mqtt,
                        influx_url=influx_base,
                        database=database,
                        workdir=base / "sim",
                        collectors=collectors,
                    ),
                    command_key=key,
                )
                interrupted = False
                async with contextlib.AsyncExitStack() as stack:
                    page, catalogue = None, None
                    if scenario.services:  # e-government services, probed from everywhere
                        sims, catalogue = await stack.enter_async_context(
                            running_services(
                                base, mqtt_url=mqtt, influx=influx,
                                sites={s.id: s.district for s in scenario.sites},
                                interval_s=max(5.0, 2 * scenario.probe_interval),
                                fail_after_s=0.2 * duration_s,
                                key_file=base / COMMAND_KEY_FILE if key else None,
                            )
                        )  # fmt: skip
                        sim.services_ca = sims.ca_file
                    if page_port is not None:
                        page = await stack.enter_async_context(
                            cockpit(
                                influx_url=influx_base,
                                database=database,
                                state_dir=base,
                                probe_interval_s=scenario.probe_interval,
                                port=page_port,
                                remediation=demo_remediation(
                                    mqtt, base / COMMAND_KEY_FILE, scenario.probe_interval
                                )
                                if key
                                else None,
                                services_catalogue=catalogue,
                            )
                        )
                        if console:
                            console.print(
                                f"technician page: [b]{page.page_link}[/b] ({page.sign_in})",
                                highlight=False,
                                soft_wrap=True,
                            )
                    try:
                        await sim.start()
                        interrupted = await _run_until(
                            sim, influx, duration_s, stop, console, page=page
                        )
                    finally:
                        await sim.stop()
                points = await count_points(influx)
                return RunSummary(
                    duration_s=sim.elapsed_s,
                    points=points,
                    rejected=sim_rejected(base / "sim"),
                    written=float(sum(sum(v.values()) for v in points.values())),
                    events=sim.history.events,
                    interrupted=interrupted,
                )


def command_key(base: Path) -> str:
    """A fresh command key pair: the private key in ``base`` (owner only), the public key
    returned for the agents."""
    private, public = new_key_pair()
    path = base / COMMAND_KEY_FILE
    base.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(private + "\n")
    return public


async def _run_until(
    sim: Simulation,
    influx: InfluxClient,
    duration_s: float,
    stop: asyncio.Event,
    console: Console | None,
    *,
    page: Cockpit | None,
) -> bool:
    """Run events (and the live view) until the end or ``stop``; True if interrupted."""
    async with asyncio.TaskGroup() as tasks:
        events = tasks.create_task(sim.run_events(duration_s), name="sim-events")
        view = (
            tasks.create_task(_live_loop(sim, influx, duration_s, console, page), name="live-view")
            if console
            else None
        )
        stopper = tasks.create_task(stop.wait(), name="sim-stop")
        await asyncio.wait({events, stopper}, return_when=asyncio.FIRST_COMPLETED)
        interrupted = stop.is_set()
        for task in (events, view, stopper):
            if task is not None:
                task.cancel()
    return interrupted


def sim_rejected(simdir: Path) -> dict[str, float]:
    """Rejections by reason, from the collectors' dead-letter stores."""
    counts: dict[str, float] = {}
    for path in simdir.glob("dead-letter-*.sqlite"):
        store = DeadLetterStore(path, max_rows=1)  # only read here; the bound applies to adds
        try:
            for reason, count in store.count_by_reason().items():
                counts[reason] = counts.get(reason, 0) + count
        finally:
            store.close()
    return counts


def print_summary(console: Console, summary: RunSummary) -> None:
    """Print what the run stored in InfluxDB."""
    table = Table(title="stored in InfluxDB (points per site)")
    table.add_column("site")
    measurements = list(summary.points)
    for m in measurements:
        table.add_column(m, justify="right")
    sites = sorted({s for per in summary.points.values() for s in per})
    for site in sites:
        table.add_row(site, *(str(summary.points[m].get(site, 0)) for m in measurements))
    console.print(table)
    rejected = ", ".join(f"{k}={int(v)}" for k, v in sorted(summary.rejected.items())) or "none"
    console.print(f"rejected messages (dead letters): {rejected}")
    console.print(
        f"{'interrupted' if summary.interrupted else 'finished'} after "
        f"{summary.duration_s:.0f}s; {int(summary.written)} points stored"
    )
