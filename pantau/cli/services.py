"""``pantau services``: publish the service catalogue to the agents, probe it from the cloud."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Optional

import typer

from pantau.cli.common import fail, secret
from pantau.cli.influx_options import (
    InfluxDbOpt,
    InfluxPasswordFileOpt,
    InfluxTokenFileOpt,
    InfluxUrlOpt,
    InfluxUserOpt,
    influx_from_cli,
)
from pantau.core.configfile import ConfigError
from pantau.core.service import configure_logging, run_with_stop

services_app = typer.Typer(help="E-government services: the catalogue, the cloud's prober.")

CatalogueOpt = Annotated[Path, typer.Option("--catalogue", help="services.yaml")]


@services_app.command("publish")
def publish(
    catalogue: CatalogueOpt,
    sites_registry: Annotated[
        Path, typer.Option("--sites-registry", help="the site registry (`pantau sites place`)")
    ],
    broker: Annotated[str, typer.Option("--broker", help="mqtt:// or mqtts:// URL")] = (
        "mqtt://127.0.0.1:1883"
    ),
    username: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--username", help="an account that may publish commands (the collector's)"),
    ] = None,
    password_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--password-file", help="its password [or env PANTAU_MQTT_PASSWORD]"),
    ] = None,
    ca_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--ca-file", help="CA bundle for mqtts://"),
    ] = None,
    key_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--key-file", help="the command key (`pantau keys init`): signs it"),
    ] = None,
) -> None:
    """Send each registered site its district's part of the catalogue (retained, signed with
    the command key if given); agents probe it at once and report its version."""
    import os  # noqa: PLC0415

    from cloud.remediation.sender import CommandKeyError, read_key  # noqa: PLC0415
    from cloud.services.catalogue import load_catalogue  # noqa: PLC0415
    from cloud.services.publish import publish_catalogue  # noqa: PLC0415
    from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink  # noqa: PLC0415
    from pantau.core.siteregistry import RegistryError, load_registry  # noqa: PLC0415

    configure_logging("INFO")
    try:
        cat = load_catalogue(catalogue)
        registry = load_registry(sites_registry)
        key = read_key(key_file) if key_file else None
    except (ConfigError, RegistryError, CommandKeyError) as exc:
        raise fail(str(exc)) from None
    if not registry.sites:
        raise fail(f"{sites_registry} has no site: register them with `pantau sites place`")
    password = secret(os.environ.get("PANTAU_MQTT_PASSWORD"), password_file, "--password-file")
    link = MqttLink(
        LinkSettings(
            address=BrokerAddress.parse(broker),
            client_id="pantau-services-publish",
            username=username,
            password=password,
            ca_file=str(ca_file) if ca_file else None,
        )
    )

    async def run() -> int:
        await link.start()
        try:
            await link.wait_connected(15)
            sites = {site: s.district for site, s in registry.sites.items()}
            return await publish_catalogue(link, cat, sites, key)
        finally:
            await link.close()

    count = asyncio.run(run())
    typer.echo(f"catalogue version {cat.version} published to {count} sites")


@services_app.command("probe")
def probe(
    catalogue: CatalogueOpt,
    interval: Annotated[float, typer.Option("--interval", min=5, help="seconds")] = 60.0,
    ca_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--ca-file", help="extra CA trusted for services' certificates"),
    ] = None,
    influx: InfluxUrlOpt = None,
    database: InfluxDbOpt = None,
    influx_user: InfluxUserOpt = None,
    influx_password_file: InfluxPasswordFileOpt = None,
    influx_token_file: InfluxTokenFileOpt = None,
) -> None:
    """Probe every service from the cloud (site=cloud) until stopped: the vantage point that
    tells a service down from a district cut off."""
    from cloud.influx import InfluxClient  # noqa: PLC0415
    from cloud.services.catalogue import load_catalogue  # noqa: PLC0415
    from cloud.services.prober import run_prober  # noqa: PLC0415
    from edge_agent.services.probe import probe_service, tls_context  # noqa: PLC0415
    from pantau.core.readings import ServiceReading  # noqa: PLC0415
    from pantau.core.services import ServiceCheck  # noqa: PLC0415

    configure_logging("INFO")
    try:
        load_catalogue(catalogue)  # refuse a broken file at start, not in the loop
    except ConfigError as exc:
        raise fail(str(exc)) from None
    settings = influx_from_cli(
        url=influx,
        database=database,
        user=influx_user,
        password_file=influx_password_file,
        token_file=influx_token_file,
        timeout_s=10.0,
    )
    context = tls_context(ca_file)

    async def one(check: ServiceCheck) -> ServiceReading:
        return await probe_service(check, context)

    async def serve(stop: asyncio.Event) -> None:
        async with InfluxClient(settings) as client:
            await run_prober(catalogue, one, client, interval_s=interval, stop=stop)

    run_with_stop(serve)
