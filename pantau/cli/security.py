"""``pantau certs`` and ``pantau sites``: TLS material and per-site broker credentials."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
import yaml
from rich.console import Console

from pantau.cli.common import fail

if TYPE_CHECKING:
    from pantau.ops.brokerauth import DynsecAdmin

certs_app = typer.Typer(
    help="A development PKI: CA, broker certificate, per-site client certificates "
    "(production uses the operator's own CA).",
    no_args_is_help=True,
)
sites_app = typer.Typer(
    help="Per-site broker accounts, managed on the running broker (dynamic security plugin).",
    no_args_is_help=True,
)
broker_app = typer.Typer(
    help="The broker's account store (mosquitto dynamic security plugin).", no_args_is_help=True
)

PkiDir = Annotated[Path, typer.Option("--dir", help="PKI directory (ca.crt, ca.key, ...)")]
AuthDir = Annotated[
    Path,
    typer.Option(
        "--dir",
        help="broker account directory (dynamic-security.json, admin.password, collector.password)",
    ),
]
DistrictOption = Annotated[
    str,
    typer.Option(
        "--district",
        help="district the site counts in; kept by the cloud (the agent's claim is not trusted)",
    ),
]
LatOption = Annotated[
    Optional[float],  # noqa: UP045 - typer needs Optional on 3.11
    typer.Option("--lat", min=-90, max=90, help="latitude (WGS84), shown on the wall's map"),
]
LonOption = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option("--lon", min=-180, max=180, help="longitude (WGS84)"),
]
err = Console(stderr=True)
# _lazy: the CLI is also how edge agents start; the `cryptography` library (several MB) is
# imported only by the commands that make certificates and credentials.


@certs_app.command("init")
def certs_init(
    directory: PkiDir,
    host: Annotated[
        list[str],
        typer.Option("--host", help="broker host name or IP as agents dial it (repeatable)"),
    ],
    force: Annotated[bool, typer.Option("--force", help="replace an existing CA")] = False,
) -> None:
    """Create the CA and the broker's certificate (SAN = every --host)."""
    from pantau.ops.pki import PkiError, init_ca, issue_broker  # noqa: PLC0415 - see _lazy above

    try:
        ca = init_ca(directory, force=force)
        broker = issue_broker(directory, host)
    except PkiError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"CA: {ca.cert} (key {ca.key}, keep it offline)")
    typer.echo(f"broker: {broker.cert} {broker.key} for {', '.join(host)}")


@certs_app.command("site")
def certs_site(
    site: Annotated[str, typer.Argument(help="site id (becomes the certificate's CN)")],
    directory: PkiDir,
) -> None:
    """Issue a site's client certificate (for brokers that authenticate by certificate)."""
    from pantau.ops.pki import PkiError, issue_site  # noqa: PLC0415

    try:
        issued = issue_site(directory, site)
    except PkiError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{site}: {issued.cert} {issued.key}")


AdminUrl = Annotated[
    str,
    typer.Option(
        "--admin-url",
        help="the broker as pantau-admin reaches it (its loopback listener on the broker host)",
    ),
]
CaOption = Annotated[
    Optional[Path],  # noqa: UP045 - typer needs Optional on 3.11
    typer.Option("--ca", help="CA certificate the agent verifies the broker with"),
]


def _admin(directory: Path, url: str, ca: Path | None = None) -> DynsecAdmin:
    from pantau.ops.brokerauth import BrokerAccountFiles, DynsecAdmin  # noqa: PLC0415

    password = BrokerAccountFiles(directory).admin_password()
    return DynsecAdmin(url, password=password, ca_file=ca)


@broker_app.command("init")
def broker_init(directory: AuthDir) -> None:
    """Create the accounts file for mosquitto's dynamic security plugin (once, broker stopped).

    Writes dynamic-security.json (admin and collector accounts, roles) and admin.password and
    collector.password (0600), owned like the directory. Point the broker's
    `plugin_opt_config_file` at the JSON (see deploy/mosquitto/mosquitto.conf) and start it;
    sites are then added at run time with `pantau sites add`, no reload needed.
    """
    from pantau.ops.brokerauth import BrokerAccountFiles, BrokerAuthError  # noqa: PLC0415

    files = BrokerAccountFiles(directory)
    try:
        files.init()
    except (BrokerAuthError, OSError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"accounts: {files.dynsec_file}")
    typer.echo(f"admin password: {files.admin_password_file}")
    typer.echo(f"collector password: {files.collector_password_file}")


@sites_app.command("add")
def sites_add(
    site: Annotated[str, typer.Argument(help="site id (the broker user name)")],
    directory: AuthDir,
    district: DistrictOption,
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", help="write the agent's broker: section here (mode 0600)"),
    ] = None,
    admin_url: AdminUrl = "mqtt://127.0.0.1:1883",
    broker: Annotated[
        str, typer.Option("--broker", help="broker URL the agent dials")
    ] = "mqtts://127.0.0.1:8883",
    ca: CaOption = None,
    lat: LatOption = None,
    lon: LonOption = None,
) -> None:
    """Create a site's account (or give it a new password) on the running broker, and register
    its district (and location) in the site registry (sites.yaml in --dir).

    The site may publish only its own readings and status, subscribe only to its own command and
    receipt topics, and connect only as its own agent (client id pantau-agent-SITE). The
    collector stores its data under the registered district, whatever the agent claims. The
    agent's `broker:` section, with the password (shown once, only its hash is kept), goes to
    --out (0600); without --out it is printed with a warning. Takes effect at once.
    """
    from pantau.ops.brokerauth import (  # noqa: PLC0415
        BrokerAccountFiles,
        BrokerAuthError,
        check_site_id,
        write_private,
    )

    try:
        check_site_id(site)
        BrokerAccountFiles(directory).place_site(site, district, lat=lat, lon=lon)
        password = _admin(directory, admin_url).add_site(site)
    except BrokerAuthError as exc:
        raise fail(str(exc)) from None
    section: dict[str, object] = {"url": broker, "username": site, "password": password}
    if ca is not None:
        section["ca_file"] = str(ca)
    text = f"# agent config for {site}: merge into its site.yaml\n" + yaml.safe_dump(
        {"broker": section}, sort_keys=False
    )
    if out is not None:
        write_private(out, text)
        err.print(f"{site} added; its broker section is in {out} (mode 0600)", highlight=False)
        return
    err.print(
        f"[yellow]warning:[/yellow] {site}'s password follows on stdout; keep it out of "
        "world-readable files (use --out)",
        highlight=False,
    )
    typer.echo(text, nl=False)


@sites_app.command("remove")
def sites_remove(
    site: Annotated[str, typer.Argument(help="site id to revoke")],
    directory: AuthDir,
    admin_url: AdminUrl = "mqtt://127.0.0.1:1883",
) -> None:
    """Revoke a site's account (the broker disconnects it at once) and unregister it."""
    from pantau.ops.brokerauth import BrokerAccountFiles, BrokerAuthError  # noqa: PLC0415

    try:
        _admin(directory, admin_url).remove_site(site)
        BrokerAccountFiles(directory).unplace_site(site)
    except BrokerAuthError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{site} removed")


@sites_app.command("place")
def sites_place(
    site: Annotated[str, typer.Argument(help="site id")],
    directory: AuthDir,
    district: DistrictOption,
    lat: LatOption = None,
    lon: LonOption = None,
) -> None:
    """Register or move a site's district (and location) without touching its account.

    For sites added before the registry, and for a site that moves; the collector rereads the
    registry by itself. Data already stored keeps the district it was stored under.
    """
    from pantau.ops.brokerauth import BrokerAccountFiles, BrokerAuthError  # noqa: PLC0415

    files = BrokerAccountFiles(directory)
    try:
        files.place_site(site, district, lat=lat, lon=lon)
    except BrokerAuthError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{site}: district {district} ({files.sites_file})")


@sites_app.command("list")
def sites_list(directory: AuthDir, admin_url: AdminUrl = "mqtt://127.0.0.1:1883") -> None:
    """Sites with broker accounts."""
    from pantau.ops.brokerauth import BrokerAuthError  # noqa: PLC0415

    try:
        for site in _admin(directory, admin_url).sites():
            typer.echo(site)
    except BrokerAuthError as exc:
        raise fail(str(exc)) from None
