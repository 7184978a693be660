"""The ``pantau`` command line."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from pantau.cli.api import api
from pantau.cli.audit import audit_app
from pantau.cli.common import fail as _fail
from pantau.cli.dashboards import dashboards_app
from pantau.cli.keys import keys_app
from pantau.cli.reporting import bench, report
from pantau.cli.rollups import rollups_app
from pantau.cli.security import broker_app, certs_app, sites_app
from pantau.cli.services import services_app
from pantau.cli.users import users_app
from pantau.core.configfile import ConfigError, load_yaml_model
from pantau.core.service import configure_logging, run_with_stop, serve_until

app = typer.Typer(
    name="pantau",
    help="Monitor CCTV cameras and roadside cabinets from the edge to the command center.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

LogLevel = Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR")]
MqttOpt = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional on 3.11
    typer.Option("--mqtt", help="broker URL, e.g. mqtt://127.0.0.1:1883 (default: start one)"),
]
InfluxOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--influx", help="InfluxDB URL, e.g. http://127.0.0.1:8086 (default: start one)"),
]
DatabaseOpt = Annotated[
    str, typer.Option("--database", help="InfluxDB database (created if missing)")
]
WorkdirOpt = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option(
        "--workdir", help="keep simulation files (queues, logs) here instead of a temp dir"
    ),
]


@app.command()
def agent(
    config: Annotated[Path, typer.Option("--config", help="site YAML config (see docs/agent.md)")],
    log_level: LogLevel = "INFO",
) -> None:
    """Run a site's edge agent: probe cameras, read sensors, store and forward over MQTT."""
    from edge_agent.agent import Agent  # noqa: PLC0415 - keep `pantau --help` fast
    from edge_agent.config import AgentConfig  # noqa: PLC0415

    try:
        agent_config = load_yaml_model(config, AgentConfig)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    configure_logging(log_level)
    run_with_stop(lambda stop: serve_until(stop, Agent(agent_config).run(), "agent"))


@app.command()
def collector(
    config: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--config", help="collector YAML config; flags below override it"),
    ] = None,
    mqtt: Annotated[Optional[str], typer.Option("--mqtt", help="broker URL")] = None,  # noqa: UP045
    influx: Annotated[Optional[str], typer.Option("--influx", help="InfluxDB URL")] = None,  # noqa: UP045
    database: Annotated[Optional[str], typer.Option("--database", help="InfluxDB database")] = None,  # noqa: UP045
    http_port: Annotated[
        Optional[int], typer.Option("--http-port", help="port of /healthz and /metrics")  # noqa: UP045
    ] = None,
    client_id: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--client-id", help="fixed MQTT client id (one per collector instance)"),
    ] = None,
    instance: Annotated[Optional[str], typer.Option("--instance", help="name in metrics")] = None,  # noqa: UP045
    share_group: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--share-group", help="shared-subscription group (collectors split its load)"),
    ] = None,
    dead_letter: Annotated[
        Optional[Path], typer.Option("--dead-letter", help="dead-letter SQLite file")  # noqa: UP045
    ] = None,
    replaces: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--replaces",
            help="client id of a collector that is gone for good: its session is cleared at "
            "start (repeatable; never an id still running)",
        ),
    ] = None,
    rollup_live_every: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option("--rollup-live-every", help="seconds between refreshes of the wall's hour"),
    ] = None,
    sites_registry: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--sites-registry",
            help="the site registry (sites.yaml written by `pantau sites add`): each site's "
            "district and location are taken from it, not from the site's own messages",
        ),
    ] = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Run the cloud collector: MQTT → validate → InfluxDB, acking only what was stored."""
    from cloud.collector_service import run_collector_service  # noqa: PLC0415
    from cloud.config import CollectorConfig  # noqa: PLC0415

    try:
        base = load_yaml_model(config, CollectorConfig) if config else CollectorConfig()
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    data = base.model_dump()
    overrides = {
        ("mqtt", "url"): mqtt,
        ("influx", "url"): influx,
        ("influx", "database"): database,
        ("http_port",): http_port,
        ("mqtt", "client_id"): client_id,
        ("instance",): instance,
        ("dead_letter_path",): dead_letter,
        ("mqtt", "share_group"): share_group,
        ("mqtt", "replaces"): replaces,
        ("rollup", "live_every_s"): rollup_live_every,
        ("sites_registry",): None if sites_registry is None else str(sites_registry),
    }
    for path, value in overrides.items():
        if value is not None:
            target = data
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
    try:
        final = CollectorConfig.model_validate(data)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    configure_logging(log_level)
    run_with_stop(lambda stop: serve_until(stop, run_collector_service(final), "collector"))


@app.command()
def problems(
    config: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--config", help="problems YAML config (rules, notify); flags override it"),
    ] = None,
    influx: Annotated[Optional[str], typer.Option("--influx", help="InfluxDB URL")] = None,  # noqa: UP045
    database: Annotated[Optional[str], typer.Option("--database", help="InfluxDB database")] = None,  # noqa: UP045
    state: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--state", help="state database URL shared with the API"),
    ] = None,
    webhook: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--webhook", help="POST problem messages as JSON to this URL (repeatable)"),
    ] = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Turn measurements into problems (open, acknowledged, resolved) and notify once."""
    from cloud.influx_config import with_env  # noqa: PLC0415
    from cloud.problems.config import EvaluatorConfig  # noqa: PLC0415
    from cloud.problems.service import run_problems  # noqa: PLC0415

    try:
        base = load_yaml_model(config, EvaluatorConfig) if config else EvaluatorConfig()
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    # PANTAU_INFLUX_* fill what the file leaves unset (secrets belong there or in a file).
    base = base.model_copy(update={"influx": with_env(base.influx, os.environ)})
    data = base.model_dump(by_alias=True)
    for section, key, value in (
        (data["influx"], "url", influx),
        (data["influx"], "database", database),
        (data, "state_url", state),
    ):
        if value is not None:
            section[key] = value
    for index, url in enumerate(webhook or []):
        data["notify"]["targets"].append({"type": "webhook", "name": f"cli-{index}", "url": url})
    try:
        final = EvaluatorConfig.model_validate(data)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    configure_logging(log_level)
    run_with_stop(lambda stop: run_problems(final, stop))


@app.command()
def demo(
    sites: Annotated[int, typer.Option("--sites", min=1, max=200, help="simulated sites")] = 3,
    cameras: Annotated[int, typer.Option("--cameras", min=1, max=256, help="cameras per site")] = 4,
    duration: Annotated[float, typer.Option("--duration", min=5, help="seconds to run")] = 60.0,
    mqtt: MqttOpt = None,
    influx: InfluxOpt = None,
    database: DatabaseOpt = "pantau",
    workdir: WorkdirOpt = None,
    page_port: Annotated[
        int,
        typer.Option(
            "--page-port", min=0, max=65535, help="port of the technician page and API (0: any)"
        ),
    ] = 8080,
    log_level: LogLevel = "WARNING",
) -> None:
    """Run simulated sites, their agents and the collector, with a live view of the fleet, and
    the technician page (problems, acknowledge, maintenance) at the printed URL."""
    from simulators.scenario import demo_scenario  # noqa: PLC0415

    _run_scenario(
        demo_scenario(sites, cameras, duration),
        duration,
        mqtt,
        influx,
        database,
        workdir,
        log_level,
        live=True,
        page_port=page_port,
    )


@app.command()
def simulate(
    scenario: Annotated[Path, typer.Option("--scenario", help="scenario YAML (docs/scenarios.md)")],
    duration: Annotated[float, typer.Option("--duration", min=1, help="seconds to run")],
    mqtt: MqttOpt = None,
    influx: InfluxOpt = None,
    database: DatabaseOpt = "pantau",
    workdir: WorkdirOpt = None,
    log_level: LogLevel = "WARNING",
) -> None:
    """Run a scenario file with its agents and the collector (no live view); exit 0 when done."""
    from simulators.scenario import load_scenario  # noqa: PLC0415

    try:
        loaded = load_scenario(scenario)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    _run_scenario(loaded, duration, mqtt, influx, database, workdir, log_level, live=False)


def _run_scenario(
    scenario: object,
    duration: float,
    mqtt: str | None,
    influx: str | None,
    database: str,
    workdir: Path | None,
    log_level: str,
    *,
    live: bool,
    page_port: int | None = None,
) -> None:
    from devtools.localsvc import ServiceError  # noqa: PLC0415
    from simulators.demo import print_summary, run_scenario  # noqa: PLC0415
    from simulators.scenario import Scenario  # noqa: PLC0415

    assert isinstance(scenario, Scenario)
    configure_logging(log_level)
    console = Console()

    async def main(stop: asyncio.Event) -> None:
        summary = await run_scenario(
            scenario,
            duration_s=duration,
            mqtt_url=mqtt,
            influx_url=influx,
            database=database,
            workdir=workdir,
            stop=stop,
            console=console if live else None,
            page_port=page_port,
        )
        print_summary(console, summary)

    try:
        run_with_stop(main)
    except ServiceError as exc:
        raise _fail(str(exc)) from None


@app.command()
def chaos(
    duration: Annotated[
        float,
        typer.Option("--duration", min=20, help="seconds of faults (150 = the full schedule)"),
    ] = 150.0,
    mqtt: MqttOpt = None,
    influx: InfluxOpt = None,
    database: Annotated[
        str, typer.Option("--database", help="dropped and recreated")
    ] = "pantau_chaos",
    workdir: WorkdirOpt = None,
    log_level: LogLevel = "WARNING",
) -> None:
    """Restart the broker, stop InfluxDB, cut an uplink, SIGKILL a collector and an agent, with
    two collectors sharing the load; then check InfluxDB against the agents' ledgers.

    Prints `lost=N dup=N readings=N` last. Services given by URL are not restarted.
    """
    from devtools.localsvc import ServiceError  # noqa: PLC0415
    from simulators.chaos import run_chaos  # noqa: PLC0415

    configure_logging(log_level)
    console = Console()

    async def main(stop: asyncio.Event) -> int:
        result = await run_chaos(
            duration,
            mqtt_url=mqtt,
            influx_url=influx,
            database=database,
            workdir=workdir,
            console=console,
            stop=stop,  # Ctrl-C, SIGTERM or SIGHUP: end the schedule, stop every process
        )
        if result.interrupted:
            console.print("interrupted: the schedule did not finish, the figures are partial")
        for skipped in result.skipped:
            console.print(f"skipped: {skipped}")
        c = result.comparison
        console.print(
            f"collectors wrote {', '.join(f'{w:.0f}' for w in result.written_per_collector)} "
            f"readings (since their last start); {c.summary()}"
        )
        if c.lost_examples:
            console.print(f"lost, e.g.: {c.lost_examples}")
        if c.dup_examples:
            console.print(f"dup, e.g.: {c.dup_examples}")
        print(c.line())
        return 0 if c.lost == 0 and c.dup == 0 and c.queued == 0 and not result.interrupted else 1

    try:
        code = run_with_stop(main)
    except ServiceError as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


app.command(name="api")(api)
app.command(name="bench")(bench)
app.command(name="report")(report)
app.add_typer(certs_app, name="certs")
app.add_typer(sites_app, name="sites")
app.add_typer(broker_app, name="broker")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(rollups_app, name="rollups")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(services_app, name="services")
