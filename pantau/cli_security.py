"""``pantau certs`` and ``pantau sites``: TLS material and per-site broker credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml
from rich.console import Console

certs_app = typer.Typer(
    help="A development PKI: CA, broker certificate, per-site client certificates "
    "(production uses the operator's own CA).",
    no_args_is_help=True,
)
sites_app = typer.Typer(
    help="Per-site broker accounts: Mosquitto password file and ACL.", no_args_is_help=True
)

PkiDir = Annotated[Path, typer.Option("--dir", help="PKI directory (ca.crt, ca.key, ...)")]
AuthDir = Annotated[
    Path, typer.Option("--dir", help="broker auth directory (passwd, acl, collector.password)")
]
err = Console(stderr=True)
# _lazy: the CLI is also how edge agents start; the `cryptography` library (several MB) is
# imported only by the commands that make certificates and credentials.


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=2)


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
    from pantau.pki import PkiError, init_ca, issue_broker  # noqa: PLC0415 - see _lazy above

    try:
        ca = init_ca(directory, force=force)
        broker = issue_broker(directory, host)
    except PkiError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"CA: {ca.cert} (key {ca.key}, keep it offline)")
    typer.echo(f"broker: {broker.cert} {broker.key} for {', '.join(host)}")


@certs_app.command("site")
def certs_site(
    site: Annotated[str, typer.Argument(help="site id (becomes the certificate's CN)")],
    directory: PkiDir,
) -> None:
    """Issue a site's client certificate (for brokers that authenticate by certificate)."""
    from pantau.pki import PkiError, issue_site  # noqa: PLC0415

    try:
        issued = issue_site(directory, site)
    except PkiError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{site}: {issued.cert} {issued.key}")


@sites_app.command("add")
def sites_add(
    site: Annotated[str, typer.Argument(help="site id (the broker user name)")],
    directory: AuthDir,
    broker: Annotated[
        str, typer.Option("--broker", help="broker URL the agent dials")
    ] = "mqtts://127.0.0.1:8883",
    ca: Annotated[
        Optional[Path],  # noqa: UP045 - typer needs Optional on 3.11
        typer.Option("--ca", help="CA certificate the agent verifies the broker with"),
    ] = None,
) -> None:
    """Create (or rotate) a site's credentials; print the agent's `broker:` section.

    The password is shown once; only its hash is kept. Reload the broker afterwards
    (`systemctl reload mosquitto` or SIGHUP).
    """
    from pantau.brokerauth import BrokerAuthError, BrokerAuthFiles  # noqa: PLC0415

    try:
        password = BrokerAuthFiles(directory).add_site(site)
    except BrokerAuthError as exc:
        raise _fail(str(exc)) from None
    section: dict[str, object] = {"url": broker, "username": site, "password": password}
    if ca is not None:
        section["ca_file"] = str(ca)
    typer.echo(f"# agent config for {site}: paste into its site.yaml (shown once)")
    typer.echo(yaml.safe_dump({"broker": section}, sort_keys=False), nl=False)
    err.print(f"{site} added to {directory}; reload the broker to apply", highlight=False)


@sites_app.command("remove")
def sites_remove(
    site: Annotated[str, typer.Argument(help="site id to revoke")], directory: AuthDir
) -> None:
    """Revoke a site's credentials (takes effect when the broker reloads)."""
    from pantau.brokerauth import BrokerAuthError, BrokerAuthFiles  # noqa: PLC0415

    try:
        BrokerAuthFiles(directory).remove_site(site)
    except BrokerAuthError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{site} removed; reload the broker to apply")


@sites_app.command("list")
def sites_list(directory: AuthDir) -> None:
    """Sites with broker accounts."""
    from pantau.brokerauth import BrokerAuthError, BrokerAuthFiles  # noqa: PLC0415

    try:
        for site in BrokerAuthFiles(directory).sites():
            typer.echo(site)
    except BrokerAuthError as exc:
        raise _fail(str(exc)) from None
