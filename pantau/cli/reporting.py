"""``pantau report`` (the monthly availability report) and ``pantau bench``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pantau.cli.common import fail
from pantau.cli.influx_options import (
    InfluxDbOpt,
    InfluxPasswordFileOpt,
    InfluxTokenFileOpt,
    InfluxUrlOpt,
    InfluxUserOpt,
    influx_from_cli,
)
from pantau.core.configfile import ConfigError
from pantau.core.paths import state_db_url
from pantau.core.service import configure_logging

LogLevel = Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR")]


def report(
    month: Annotated[str, typer.Option("--month", help="calendar month, e.g. 2026-11")],
    influx: InfluxUrlOpt = None,
    database: InfluxDbOpt = None,
    influx_user: InfluxUserOpt = None,
    influx_password_file: InfluxPasswordFileOpt = None,
    influx_token_file: InfluxTokenFileOpt = None,
    state: Annotated[
        str,
        typer.Option(
            "--state", help="state database URL with the maintenance windows (as `pantau api`)"
        ),
    ] = "",
    timezone: Annotated[
        str, typer.Option("--tz", help="timezone of the calendar month")
    ] = "Asia/Jakarta",
    out: Annotated[
        Path, typer.Option("--out", help="directory for availability-<month>.csv and .html")
    ] = Path(),
    influx_timeout: Annotated[
        float, typer.Option("--influx-timeout", min=0.1, help="seconds per InfluxDB query")
    ] = 60.0,
    lang: Annotated[
        str, typer.Option("--lang", help="language of the page: id (Bahasa Indonesia) or en")
    ] = "id",
    services: Annotated[
        Path | None,
        typer.Option(
            "--services",
            help="services.yaml: add each e-government service and OPD (docs/services.md)",
        ),
    ] = None,
    log_level: LogLevel = "WARNING",
) -> None:
    """Write a month's availability per district, site and camera (maintenance set aside and
    listed), and per service and OPD with --services, as CSV and as a printable HTML page."""
    from cloud.influx import InfluxClient, InfluxError  # noqa: PLC0415
    from cloud.maintenance import StateStore  # noqa: PLC0415
    from cloud.report.monthly import build_report, month_span  # noqa: PLC0415
    from cloud.report.render import to_csv, to_html  # noqa: PLC0415

    configure_logging(log_level)
    if lang not in ("id", "en"):
        raise fail(f"--lang {lang!r}: choose id or en")
    try:
        month_span(month, timezone)
    except (ValueError, KeyError) as exc:
        raise fail(f"{exc}") from None
    settings = influx_from_cli(
        url=influx,
        database=database,
        user=influx_user,
        password_file=influx_password_file,
        token_file=influx_token_file,
        timeout_s=influx_timeout,
    )

    async def run() -> None:
        store = StateStore(state or state_db_url())
        try:
            async with InfluxClient(settings) as client:
                built = await build_report(
                    client, store, month=month, timezone=timezone, services_catalogue=services
                )
        finally:
            store.close()
        out.mkdir(parents=True, exist_ok=True)
        csv_path, html_path = out / f"availability-{month}.csv", out / f"availability-{month}.html"
        csv_path.write_text(to_csv(built))
        html_path.write_text(to_html(built, lang))
        typer.echo(
            f"{len(built.cameras)} cameras, {len(built.sites)} sites, {len(built.districts)} "
            f"districts, {len(built.maintenance)} maintenance windows "
            f"({built.retro_moved_seconds:.0f} s moved by retroactive ones) in "
            f"{built.seconds_to_build:.2f} s -> {csv_path}, {html_path}"
        )

    try:
        asyncio.run(run())
    except InfluxError as exc:
        raise fail(f"InfluxDB at {settings.url}: {exc}") from None
    except ConfigError as exc:
        raise fail(f"--services: {exc}") from None


def bench(
    tiny: Annotated[
        bool, typer.Option("--tiny", help="a few seconds per part (what `make test` runs)")
    ] = False,
    out: Annotated[Path, typer.Option("--out", help="directory for the JSON results")] = Path(
        "bench/results"
    ),
    only: Annotated[
        str,
        typer.Option(
            "--only",
            help="comma-separated parts to run: ceilings, ingest, latency, detection, edge, "
            "stream, backlog, fleet (default: all)",
        ),
    ] = "",
    log_level: LogLevel = "WARNING",
) -> None:
    """Measure ingest, latency, detection, edge, stream-probe and fleet-history costs beside the
    ceilings and targets (bench/README.md)."""
    from bench import PARTS, BenchConfig, run_bench  # noqa: PLC0415

    configure_logging(log_level)
    parts = frozenset(p.strip() for p in only.split(",") if p.strip()) or frozenset(PARTS)
    if unknown := sorted(parts - set(PARTS)):
        raise fail(f"--only: unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    config = BenchConfig.tiny() if tiny else BenchConfig()
    asyncio.run(run_bench(config, out, Console(), parts))
