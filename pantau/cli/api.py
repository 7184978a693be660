"""``pantau api``: the HTTP API and the technician page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pantau.cli.common import secret
from pantau.cli.influx_options import (
    InfluxDbOpt,
    InfluxPasswordFileOpt,
    InfluxTokenFileOpt,
    InfluxUrlOpt,
    InfluxUserOpt,
    influx_from_cli,
)
from pantau.core.paths import state_db_url
from pantau.core.service import configure_logging

LogLevel = Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR")]


def api(
    port: Annotated[int, typer.Option("--port", help="HTTP port")] = 8080,
    host: Annotated[str, typer.Option("--host", help="bind address")] = "127.0.0.1",
    influx: InfluxUrlOpt = None,
    database: InfluxDbOpt = None,
    influx_user: InfluxUserOpt = None,
    influx_password_file: InfluxPasswordFileOpt = None,
    influx_token_file: InfluxTokenFileOpt = None,
    influx_timeout: Annotated[
        float,
        typer.Option(
            "--influx-timeout",
            min=0.1,
            max=600,
            help="seconds to wait for one InfluxDB query; a slower one answers 504",
        ),
    ] = 10.0,
    state: Annotated[
        str,
        typer.Option(
            "--state",
            help="state database URL (sqlite:///FILE or postgresql://...); default: state.sqlite "
            "in PANTAU_DATA_DIR, /var/lib/pantau (root) or ~/.local/state/pantau",
        ),
    ] = "",
    token: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--token",
            envvar="PANTAU_API_TOKEN",
            help="bearer token for writes; prefer PANTAU_API_TOKEN or --token-file (a command "
            "line is visible to every user in `ps`)",
        ),
    ] = None,
    token_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--token-file", help="read the bearer token from this file"),
    ] = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Serve the HTTP API (OpenAPI at /docs): sites, cameras, availability, maintenance."""
    import uvicorn  # noqa: PLC0415

    from cloud.api.app import create_app  # noqa: PLC0415

    configure_logging(log_level)
    token = secret(token, token_file, "--token")
    settings = influx_from_cli(
        url=influx,
        database=database,
        user=influx_user,
        password_file=influx_password_file,
        token_file=influx_token_file,
        timeout_s=influx_timeout,
    )
    uvicorn.run(
        create_app(influx=settings, state_url=state or state_db_url(), token=token),
        host=host,
        port=port,
        log_level=log_level.lower(),
        access_log=False,
    )
