"""``pantau keys``: the command center's Ed25519 key pair for signed commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pantau.cli.common import fail

keys_app = typer.Typer(help="The command signing key (Ed25519) of the command center.")

PRIVATE_NAME = "command.key"
PUBLIC_NAME = "command.pub"


@keys_app.command("init")
def init(
    out: Annotated[
        Path, typer.Option("--out", help="directory for command.key (0600) and command.pub")
    ],
    force: Annotated[bool, typer.Option("--force", help="replace an existing pair")] = False,
) -> None:
    """Generate a key pair: command.key stays on the command center (remediation.key_file or
    PANTAU_COMMAND_KEY_FILE); command.pub goes into every site.yaml (commands.public_key)."""
    from pantau.core.signing import new_key_pair  # noqa: PLC0415 - cloud-only (cryptography)

    private_path, public_path = out / PRIVATE_NAME, out / PUBLIC_NAME
    if private_path.exists() and not force:
        raise fail(
            f"{private_path} exists; agents trust its public key. Use --force to replace it "
            "(then put the new command.pub into every site.yaml)"
        )
    out.mkdir(parents=True, exist_ok=True)
    private, public = new_key_pair()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(private + "\n")
    os.chmod(private_path, 0o600)  # an existing file keeps its mode through O_TRUNC
    public_path.write_text(public + "\n")
    typer.echo(f"private key: {private_path} (mode 0600, never copy it to a site)")
    typer.echo(f"public key:  {public}")
