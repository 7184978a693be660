"""Broker credentials: Mosquitto's password file and the ACL that binds each site to its topics.

The password file is the single list of accounts; the ACL file is rendered from it, so they
cannot disagree. A site's user name is its site id: it may publish only its own readings and
status and read only its own commands; the collector account reads every site and publishes
nothing. Anonymous clients are refused by the broker config (``allow_anonymous false``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from pantau.contract import (
    ID_PATTERN,
    TopicKind,
    all_sites_filter,
    site_command_filter,
    site_topic,
)

COLLECTOR_USER = "pantau-collector"
# Mosquitto 2.x "$7$": PBKDF2-SHA512, 101 iterations (its default), 12-byte salt, 64-byte hash.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12


class BrokerAuthError(Exception):
    """A credentials file is invalid or a site id is refused; the message says which."""


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A password hash in mosquitto_passwd's ``$7$`` format."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    return (
        f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}"
        f"${base64.b64encode(digest).decode()}"
    )


def verify_password(password: str, hashed: str) -> bool:
    """True if ``password`` matches a ``$7$`` hash."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    iterations, salt, digest = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
    computed = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return secrets.compare_digest(computed, digest)


@dataclass(frozen=True)
class BrokerAuthFiles:
    """The broker's ``passwd`` and ``acl`` files in one directory."""

    directory: Path

    @property
    def password_file(self) -> Path:
        """Mosquitto ``password_file``."""
        return self.directory / "passwd"

    @property
    def acl_file(self) -> Path:
        """Mosquitto ``acl_file``."""
        return self.directory / "acl"

    @property
    def collector_password_file(self) -> Path:
        """The collector's password (the collector runs beside the broker; owner-only)."""
        return self.directory / "collector.password"

    def users(self) -> dict[str, str]:
        """User name -> hash, in file order."""
        if not self.password_file.exists():
            return {}
        users = {}
        for number, line in enumerate(self.password_file.read_text().splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep:
                raise BrokerAuthError(f"{self.password_file}:{number}: not 'user:hash'")
            users[user] = hashed
        return users

    def sites(self) -> list[str]:
        """Site accounts (every user but the collector)."""
        return sorted(u for u in self.users() if u != COLLECTOR_USER)

    def add_site(self, site: str, *, password: str | None = None) -> str:
        """Create or replace a site's account; return its (new) password."""
        if not re.fullmatch(ID_PATTERN, site) or site == COLLECTOR_USER:
            raise BrokerAuthError(
                f"{site!r} is not a valid site id (letters, digits, _ . -; max 64; not "
                f"{COLLECTOR_USER!r})"
            )
        self.ensure_collector()
        password = password or secrets.token_urlsafe(24)
        users = self.users()
        users[site] = hash_password(password)
        self._save(users)
        return password

    def remove_site(self, site: str) -> None:
        """Revoke a site: the broker refuses it once it reloads (SIGHUP)."""
        users = self.users()
        if site not in users or site == COLLECTOR_USER:
            raise BrokerAuthError(f"no site {site!r} in {self.password_file}")
        del users[site]
        self._save(users)

    def ensure_collector(self) -> str:
        """Create the collector's account on first use; return its password."""
        users = self.users()
        if COLLECTOR_USER in users and self.collector_password_file.exists():
            return self.collector_password_file.read_text().strip()
        password = secrets.token_urlsafe(24)
        _write_private(self.collector_password_file, password + "\n")
        users[COLLECTOR_USER] = hash_password(password)
        self._save(users)
        return password

    def _save(self, users: dict[str, str]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = "".join(f"{user}:{hashed}\n" for user, hashed in users.items())
        _write_private(self.password_file, lines)
        _write_private(self.acl_file, render_acl(sorted(u for u in users if u != COLLECTOR_USER)))


def render_acl(sites: list[str]) -> str:
    """Mosquitto ACL: each site its own topics; the collector reads all and writes nothing."""
    out = [
        "# generated by `pantau sites`; edit the password file through it, not by hand",
        f"user {COLLECTOR_USER}",
        f"topic read {all_sites_filter(TopicKind.READINGS)}",
        f"topic read {all_sites_filter(TopicKind.STATUS)}",
        "",
    ]
    for site in sites:
        out += [
            f"user {site}",
            f"topic write {site_topic(site, TopicKind.READINGS)}",
            f"topic write {site_topic(site, TopicKind.STATUS)}",
            f"topic read {site_command_filter(site)}",
            "",
        ]
    return "\n".join(out)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)  # a reloading broker never reads a half-written file
