"""``pantau audit``: check the tamper-evident audit trail and read it."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Optional

import typer

from pantau.cli.common import fail
from pantau.core.paths import state_db_url

audit_app = typer.Typer(help="The tamper-evident audit trail (logins, acks, maintenance, users).")

StateOpt = Annotated[
    str,
    typer.Option(
        "--state",
        help="state database URL (as `pantau api --state`); default: state.sqlite in "
        "PANTAU_DATA_DIR, /var/lib/pantau (root) or ~/.local/state/pantau",
    ),
]
_ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")


@audit_app.command("verify")
def verify(
    state: StateOpt = "",
    anchor: Annotated[
        Optional[str],  # noqa: UP045 - typer needs Optional on 3.11
        typer.Option(
            "--anchor",
            help="ID:SHA256 of a chain head published earlier (the monthly report prints it): "
            "also check that row still has that hash",
        ),
    ] = None,
) -> None:
    """Check every row's hash and its link to the row before; exit 1 naming the first edited,
    inserted or deleted row."""
    from cloud.audit import AuditTrail  # noqa: PLC0415 - pantau[cloud] only

    pinned: tuple[int, str] | None = None
    if anchor is not None:
        found = _ANCHOR.match(anchor.strip().lower())
        if found is None:
            raise fail(f"--anchor {anchor!r} must look like 1234:<64 hex digits>")
        pinned = (int(found.group(1)), found.group(2))
    trail = AuditTrail(state or state_db_url())
    try:
        verdict = trail.verify(pinned)
    finally:
        trail.close()
    if not verdict.ok:
        typer.echo(f"audit trail BROKEN at row {verdict.row}: {verdict.problem}", err=True)
        raise typer.Exit(code=1)
    head = verdict.head
    where = f"head {head.last_id}:{head.last_hash}" if head else "no head"
    typer.echo(f"audit trail OK: {verdict.rows} rows chain without a break; {where}")


@audit_app.command("list")
def list_rows(
    state: StateOpt = "",
    limit: Annotated[int, typer.Option("--limit", min=1, help="the newest N rows")] = 50,
) -> None:
    """The newest rows, oldest first (UTC)."""
    from cloud.audit import AuditTrail  # noqa: PLC0415

    trail = AuditTrail(state or state_db_url())
    try:
        head = trail.head()
        rows = trail.records(after_id=max(0, (head.last_id if head else 0) - limit))
    finally:
        trail.close()
    for r in rows:
        when = dt.datetime.fromtimestamp(r.at_ns / 1e9, tz=dt.UTC).isoformat(timespec="seconds")
        typer.echo(f"{r.id}\t{when}\t{r.event}\t{r.actor}\t{r.target}\t{r.details}")
