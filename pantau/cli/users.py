"""``pantau users``: accounts, roles, district scope and personal API tokens (for the admin)."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from pantau.cli.common import fail
from pantau.core.paths import state_db_url

if TYPE_CHECKING:
    from cloud.auth.identity import Identity

PASSWORD_ENV = "PANTAU_USER_PASSWORD"  # noqa: S105 - the variable's name, not a password
users_app = typer.Typer(help="Accounts, roles, district scope and personal API tokens.")
tokens_app = typer.Typer(help="Personal API tokens: named, expiring, revocable.")
users_app.add_typer(tokens_app, name="token")

StateOpt = Annotated[
    str,
    typer.Option(
        "--state",
        help="state database URL (as `pantau api --state`); default: state.sqlite in "
        "PANTAU_DATA_DIR, /var/lib/pantau (root) or ~/.local/state/pantau",
    ),
]
PasswordFileOpt = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option(
        "--password-file",
        help=f"read the password from this file (else ${PASSWORD_ENV}, else a prompt); "
        "never from the command line",
    ),
]


@contextmanager
def _identity(state: str) -> Iterator[Identity]:
    from cloud.auth.identity import Identity  # noqa: PLC0415 - pantau[cloud] only

    ids = Identity(state or state_db_url())
    try:
        yield ids
    finally:
        ids.close()


def _record(ids: Identity, event: str, target: str, details: dict[str, Any]) -> None:
    """Append an account change to the audit trail; the actor is the server's OS user."""
    from cloud.audit import AuditEvent, AuditTrail  # noqa: PLC0415

    AuditTrail(ids.engine).append(AuditEvent(event), f"cli:{getpass.getuser()}", target, details)


def _password(path: Path | None) -> str:
    if path is not None:
        try:
            return path.read_text().rstrip("\n")
        except OSError as exc:
            raise fail(f"cannot read {path}: {exc.strerror}") from None
    if from_env := os.environ.get(PASSWORD_ENV):
        return from_env
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="account name (letters, digits, _ . @ -)")],
    role: Annotated[
        str, typer.Option("--role", help="viewer, technician, supervisor or admin")
    ] = "viewer",
    district: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--district", help="a district in scope (repeat for several)"),
    ] = None,
    all_districts: Annotated[
        bool, typer.Option("--all-districts", help="every district (province staff, admins)")
    ] = False,
    lang: Annotated[str, typer.Option("--lang", help="id (Bahasa Indonesia) or en")] = "id",
    no_password: Annotated[
        bool, typer.Option("--no-password", help="no local password: signs in through OIDC only")
    ] = False,
    password_file: PasswordFileOpt = None,
    state: StateOpt = "",
) -> None:
    """Create an account scoped to districts (or every district)."""
    from cloud.auth.accounts import AccountError  # noqa: PLC0415
    from cloud.auth.passwords import PasswordPolicyError  # noqa: PLC0415
    from cloud.auth.principal import Role  # noqa: PLC0415

    if all_districts == bool(district):
        raise fail("give --district D (repeatable) or --all-districts")
    try:
        chosen = Role(role)
    except ValueError:
        raise fail(f"role {role!r}: one of {', '.join(r.value for r in Role)}") from None
    with _identity(state) as ids:
        try:
            hashed = None if no_password else ids.passwords.hash(_password(password_file))
            user = ids.accounts.add(
                username,
                role=chosen,
                districts=None if all_districts else district,
                password_hash=hashed,
                lang=lang,
            )
        except (AccountError, PasswordPolicyError, ValueError) as exc:
            raise fail(str(exc)) from None
        _record(
            ids,
            "user_added",
            f"user:{user.username}",
            {"role": user.role.value, "districts": _districts(user.districts), "lang": lang},
        )
    scope = "every district" if user.districts is None else ", ".join(sorted(user.districts))
    Console().print(f"user {user.username}: {user.role.value} of {scope}", highlight=False)


@users_app.command("list")
def list_users(state: StateOpt = "") -> None:
    """Every account with its role, scope and state."""
    table = Table("username", "role", "districts", "lang", "source", "password", "state")
    with _identity(state) as ids:
        for user in ids.accounts.all():
            table.add_row(
                user.username,
                user.role.value,
                "*" if user.districts is None else ",".join(sorted(user.districts)),
                user.lang,
                user.source,
                "yes" if user.password_hash else "no (OIDC only)",
                "disabled" if user.disabled else "active",
            )
    Console().print(table)


@users_app.command("disable")
def disable(username: str, state: StateOpt = "") -> None:
    """Disable an account: its sessions end and its tokens stop working at once."""
    from cloud.auth.accounts import AccountError  # noqa: PLC0415

    with _identity(state) as ids:
        try:
            user = ids.accounts.set_disabled(username, disabled=True)
        except AccountError as exc:
            raise fail(str(exc)) from None
        ended = ids.sessions.end_all(user.id)
        _record(ids, "user_disabled", f"user:{username}", {"sessions_ended": ended})
    Console().print(f"user {username} disabled ({ended} session(s) ended)", highlight=False)


@users_app.command("enable")
def enable(username: str, state: StateOpt = "") -> None:
    """Enable an account again and lift a login lockout."""
    from cloud.auth.accounts import AccountError  # noqa: PLC0415

    with _identity(state) as ids:
        try:
            ids.accounts.set_disabled(username, disabled=False)
        except AccountError as exc:
            raise fail(str(exc)) from None
        ids.throttle.unlock(username)
        _record(ids, "user_enabled", f"user:{username}", {})
    Console().print(f"user {username} enabled", highlight=False)


@users_app.command("password")
def password(username: str, password_file: PasswordFileOpt = None, state: StateOpt = "") -> None:
    """Set a new password; the account's sessions end."""
    from cloud.auth.accounts import AccountError  # noqa: PLC0415
    from cloud.auth.passwords import PasswordPolicyError  # noqa: PLC0415

    with _identity(state) as ids:
        try:
            user = ids.accounts.require(username)
            ids.accounts.set_password_hash(username, ids.passwords.hash(_password(password_file)))
        except (AccountError, PasswordPolicyError) as exc:
            raise fail(str(exc)) from None
        ids.sessions.end_all(user.id)
        _record(ids, "user_password", f"user:{username}", {})
    Console().print(f"password of {username} changed", highlight=False)


@tokens_app.command("create")
def token_create(
    username: str,
    name: Annotated[str, typer.Option("--name", help="what it is for, e.g. wall-ops-room")],
    days: Annotated[
        int, typer.Option("--days", min=1, max=3650, help="valid for this many days")
    ] = 90,
    state: StateOpt = "",
) -> None:
    """Create a personal token; it is printed once (send it as Authorization: Bearer)."""
    from cloud.auth.accounts import AccountError  # noqa: PLC0415

    with _identity(state) as ids:
        try:
            user = ids.accounts.require(username)
            bearer, info = ids.tokens.create(
                user.id, name=name, expires_ns=time.time_ns() + days * 86400 * 10**9
            )
        except (AccountError, ValueError) as exc:
            raise fail(str(exc)) from None
        details = {"user": username, "name": name, "expires": _when(info.expires_ns)}
        _record(ids, "token_created", f"token:{info.id}", details)
    err = Console(stderr=True)
    err.print(
        f"token {info.id} '{name}' of {username}, valid until {_when(info.expires_ns)}; "
        "shown only now:",
        highlight=False,
    )
    print(bearer)  # stdout alone, for `> file` or a pipe


@tokens_app.command("list")
def token_list(username: str, state: StateOpt = "") -> None:
    """A user's tokens (never their secrets)."""
    from cloud.auth.accounts import AccountError  # noqa: PLC0415

    table = Table("id", "name", "created", "expires", "last used", "state")
    now = time.time_ns()
    with _identity(state) as ids:
        try:
            user = ids.accounts.require(username)
        except AccountError as exc:
            raise fail(str(exc)) from None
        for t in ids.tokens.of_user(user.id):
            status = "revoked" if t.revoked_ns else ("expired" if t.expires_ns <= now else "live")
            table.add_row(
                str(t.id),
                t.name,
                _when(t.created_ns),
                _when(t.expires_ns),
                _when(t.last_used_ns) if t.last_used_ns else "-",
                status,
            )
    Console().print(table)


@tokens_app.command("revoke")
def token_revoke(token_id: int, state: StateOpt = "") -> None:
    """Revoke a token by id (it stays listed as revoked)."""
    with _identity(state) as ids:
        if not ids.tokens.revoke(token_id):
            raise fail(f"no live token {token_id} (see `pantau users token list USER`)")
        _record(ids, "token_revoked", f"token:{token_id}", {})
    Console().print(f"token {token_id} revoked", highlight=False)


def _when(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _districts(districts: frozenset[str] | None) -> list[str] | None:
    return None if districts is None else sorted(districts)
