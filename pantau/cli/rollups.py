"""``pantau rollups rebuild``: recompute the hourly and daily rollups of a past range."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pantau.cli.common import fail
from pantau.cli.influx_options import (
    InfluxDbOpt,
    InfluxPasswordFileOpt,
    InfluxTokenFileOpt,
    InfluxUrlOpt,
    InfluxUserOpt,
    influx_from_cli,
)
from pantau.core.service import configure_logging

if TYPE_CHECKING:
    from cloud.config import CollectorConfig
    from cloud.influx_config import InfluxSettings

rollups_app = typer.Typer(
    help="The hourly and daily rollups that long availability windows read (docs/rollups.md).",
    no_args_is_help=True,
)
REBUILD_TIMEOUT_S = 120.0  # a day of a large fleet is one long query, as for the worker
DATE_FORMS = "a date (2026-11-01: local midnight) or a time (2026-11-01T06:00, 2026-11-01T06:00Z)"


def parse_bound(text: str, offset_s: int, *, option: str, end: bool) -> int:
    """Nanoseconds of ``text``: a date is local midnight (for an ``end``, the midnight after it,
    so the day is included); a time without a zone is local time."""
    zone = dt.timezone(dt.timedelta(seconds=offset_s))
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time(), zone) + dt.timedelta(days=int(end))
        else:
            moment = dt.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
    except ValueError:
        raise fail(f"{option} {text!r}: not {DATE_FORMS}") from None
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _config(path: Path | None) -> CollectorConfig:
    from cloud.config import CollectorConfig  # noqa: PLC0415 - keep `pantau --help` fast
    from pantau.core.configfile import ConfigError, load_yaml_model  # noqa: PLC0415

    if path is None:
        return CollectorConfig()
    try:
        return load_yaml_model(path, CollectorConfig)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def _influx(
    config_path: Path | None,
    config: CollectorConfig,
    *,
    url: str | None,
    database: str | None,
    user: str | None,
    password_file: Path | None,
    token_file: Path | None,
    timeout_s: float,
) -> InfluxSettings:
    """The CLI's InfluxDB options if any is given, else the config file's ``influx`` section;
    the environment (PANTAU_INFLUX_*) fills what either leaves unset."""
    from cloud.influx_config import InfluxSettings, with_env  # noqa: PLC0415

    options = (url, database, user, password_file, token_file)
    if config_path is None or any(value is not None for value in options):
        return influx_from_cli(
            url=url,
            database=database,
            user=user,
            password_file=password_file,
            token_file=token_file,
            timeout_s=timeout_s,
        )
    section = config.influx.model_dump(exclude={"create_database"}, exclude_unset=True)
    return with_env(InfluxSettings.model_validate(section | {"timeout_s": timeout_s}), os.environ)


@rollups_app.command("rebuild")
def rebuild_command(
    start: Annotated[
        str, typer.Option("--from", help=f"first day (or time) to rebuild: {DATE_FORMS}")
    ],
    end: Annotated[
        str, typer.Option("--to", help="last day rebuilt, included (or a time: up to it)")
    ],
    config_path: Annotated[
        Optional[Path],  # noqa: UP045 - typer needs Optional on 3.11
        typer.Option(
            "--config",
            help="the collector's YAML: its rollup section (timezone, raw_days, default probe "
            "interval) and, unless the options below are given, its influx section",
        ),
    ] = None,
    site: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--site", help="rebuild only this site's cameras and sensors (repeatable)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the hours and days it would recompute")
    ] = False,
    influx: InfluxUrlOpt = None,
    database: InfluxDbOpt = None,
    influx_user: InfluxUserOpt = None,
    influx_password_file: InfluxPasswordFileOpt = None,
    influx_token_file: InfluxTokenFileOpt = None,
    influx_timeout: Annotated[
        float, typer.Option("--influx-timeout", min=0.1, help="seconds per InfluxDB query")
    ] = REBUILD_TIMEOUT_S,
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO or WARNING")
    ] = "WARNING",
) -> None:
    """Recompute the hourly and daily rollups of a past range from the raw points.

    Run it after history reached InfluxDB without the collector: an import,
    a restore, points written by hand. The collector marks the late readings
    it stores and its worker redoes those hours; nothing marks what bypassed
    it, so availability, reports and the wall's long windows read the old
    rollups until this runs.

    Safe to repeat and to run beside a live collector: it writes the same
    points over the old ones. Hours older than raw retention
    (rollup.raw_days) have no raw points left and keep their rollups.
    """
    from cloud.influx import InfluxClient, InfluxError  # noqa: PLC0415
    from cloud.rollup.rebuild import rebuild, rebuild_plan  # noqa: PLC0415
    from cloud.rollup.service import rollup_spec  # noqa: PLC0415
    from cloud.rollup.worker import read_watermark  # noqa: PLC0415

    configure_logging(log_level)
    config = _config(config_path)
    spec = rollup_spec(config.rollup)
    offset_s = spec.days.offset_ns // 1_000_000_000
    start_ns = parse_bound(start, offset_s, option="--from", end=False)
    end_ns = parse_bound(end, offset_s, option="--to", end=len(end) == 10)
    if end_ns <= start_ns:
        raise fail(f"--to {end!r} is not after --from {start!r}")
    now_ns = time.time_ns()
    if start_ns >= now_ns:
        raise fail(f"--from {start!r} is in the future: there is nothing to rebuild yet")
    settings = _influx(
        config_path,
        config,
        url=influx,
        database=database,
        user=influx_user,
        password_file=influx_password_file,
        token_file=influx_token_file,
        timeout_s=influx_timeout,
    )
    plan = rebuild_plan(start_ns, end_ns, spec, now_ns=now_ns)
    console = Console(stderr=True)
    retained = now_ns - spec.lookback_ns
    if start_ns < retained:
        console.print(
            f"[yellow]note:[/yellow] raw points are kept {config.rollup.raw_days} days: hours "
            f"before {_local(retained, offset_s)} keep their rollups as they are"
        )
    if not plan.hours:
        raise fail("no whole hour of the range is both over and within raw retention")
    span = f"{_local(plan.hours[0][0], offset_s)} to {_local(plan.hours[-1][1], offset_s)}"
    hours = sum(e - s for s, e in plan.hours) // 3_600_000_000_000
    days = sum(e - s for s, e in plan.days) // 86_400_000_000_000
    if dry_run:
        typer.echo(f"would recompute {hours} hours ({span}) and {days} local days")
        return

    async def run() -> None:
        async with InfluxClient(settings) as client:
            stored = await read_watermark(client, now_ns)
            if stored is not None and stored[1] != offset_s:
                raise fail(
                    f"the rollups in {settings.database} use local days at "
                    f"UTC{stored[1] / 3600:+g}h but rollup.timezone "
                    f"{config.rollup.timezone!r} is UTC{offset_s / 3600:+g}h: give the "
                    "collector's config (--config)"
                )
            started = time.perf_counter()
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("rebuilding", total=plan.steps)
                report = await rebuild(
                    client,
                    spec,
                    plan,
                    sites=site,
                    on_step=lambda r: progress.update(
                        task, advance=1, description=f"{r.hours} hours, {r.days} days"
                    ),
                )
            typer.echo(
                f"rebuilt {report.hours} hours ({span}) and {report.days} local days: "
                f"{report.points:,} rollup points in {time.perf_counter() - started:.1f} s"
            )

    try:
        asyncio.run(run())
    except InfluxError as exc:
        if "retention policy not found" in str(exc):
            raise fail(
                f"{settings.database} has no rollup retention policies: start the collector "
                "once (rollup.manage_retention) or create them as docs/rollups.md says"
            ) from None
        raise fail(f"InfluxDB at {settings.url}: {exc}") from None


def _local(ts_ns: int, offset_s: int) -> str:
    zone = dt.timezone(dt.timedelta(seconds=offset_s))
    return dt.datetime.fromtimestamp(ts_ns / 1e9, zone).strftime("%Y-%m-%d %H:%M %z")
