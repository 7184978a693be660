"""``pantau dashboards``: build the Grafana dashboards and provisioning, or push them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from pantau.cli.common import fail, secret

dashboards_app = typer.Typer(help="Grafana dashboards: build JSON + provisioning, or push them.")


@dashboards_app.command("build")
def dashboards_build(
    out: Annotated[Path, typer.Option("--out", help="output directory")],
    influx: Annotated[
        str, typer.Option("--influx", envvar="PANTAU_INFLUX_URL", help="InfluxDB URL for Grafana")
    ] = "http://influxdb:8086",
    database: Annotated[
        str, typer.Option("--database", envvar="PANTAU_INFLUX_DB", help="InfluxDB database")
    ] = "pantau",
    user: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--influx-user", envvar="PANTAU_INFLUX_USER", help="InfluxDB user"),
    ] = None,
    password: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--influx-password", envvar="PANTAU_INFLUX_PASSWORD", help="its password"),
    ] = None,
    dashboards_path: Annotated[
        str, typer.Option("--dashboards-path", help="where Grafana will find the JSON files")
    ] = "/var/lib/grafana/dashboards/pantau",
) -> None:
    """Write DIR/dashboards/*.json and DIR/provisioning/{datasources,dashboards}/pantau.yaml."""
    from dashboards.build import build_all  # noqa: PLC0415

    for path in build_all(
        out,
        influx_url=influx,
        database=database,
        user=user,
        password=password,
        dashboards_path=dashboards_path,
    ):
        Console().print(f"wrote {path}")


@dashboards_app.command("push")
def dashboards_push(
    grafana: Annotated[
        str, typer.Option("--grafana", help="Grafana URL, e.g. http://grafana:3000")
    ],
    token: Annotated[
        str, typer.Option("--token", envvar="GRAFANA_TOKEN", help="service account token")
    ],
) -> None:
    """Upload every dashboard into the folder "Pantau" over Grafana's HTTP API."""
    import httpx  # noqa: PLC0415

    secret(token, None, "--token")
    from dashboards.build import PushError, push_all  # noqa: PLC0415

    try:
        uids = push_all(grafana, token)
    except (PushError, httpx.HTTPError) as exc:
        raise fail(f"push to {grafana} failed: {exc}") from None
    Console().print(f"pushed {len(uids)} dashboards: {', '.join(uids)}")
