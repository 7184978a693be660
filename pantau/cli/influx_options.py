"""The InfluxDB options of ``pantau api`` and ``pantau report``: where, which database, who, and
where the secret is; passwords and tokens come from PANTAU_INFLUX_PASSWORD / PANTAU_INFLUX_TOKEN
or a file, never from the command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from pantau.cli.common import fail
from pantau.core.configfile import format_validation_error

if TYPE_CHECKING:
    from cloud.influx_config import InfluxSettings

InfluxUrlOpt = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional on 3.11
    typer.Option("--influx", help="InfluxDB URL [env PANTAU_INFLUX_URL; http://127.0.0.1:8086]"),
]
InfluxDbOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--database", help="InfluxDB database [env PANTAU_INFLUX_DB; pantau]"),
]
InfluxUserOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--influx-user",
        help="InfluxDB 1.x user [env PANTAU_INFLUX_USER]; its password from "
        "PANTAU_INFLUX_PASSWORD or --influx-password-file",
    ),
]
InfluxPasswordFileOpt = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option("--influx-password-file", help="read the InfluxDB password from this file"),
]
InfluxTokenFileOpt = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option(
        "--influx-token-file",
        help="read an InfluxDB 2.x/3.x token from this file [or env PANTAU_INFLUX_TOKEN]",
    ),
]


def influx_from_cli(
    *,
    url: str | None,
    database: str | None,
    user: str | None,
    password_file: Path | None,
    token_file: Path | None,
    timeout_s: float,
) -> InfluxSettings:
    """The settings the options give, then the environment, then the defaults; exit on error."""
    from pydantic import ValidationError  # noqa: PLC0415 - keep `pantau --help` fast

    from cloud.influx_config import influx_settings  # noqa: PLC0415

    try:
        return influx_settings(
            os.environ,
            url=url,
            database=database,
            username=user,
            password_file=password_file,
            token_file=token_file,
            timeout_s=timeout_s,
        )
    except ValidationError as exc:
        raise fail(format_validation_error("InfluxDB settings", exc)) from None
