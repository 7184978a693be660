"""The demo's command-center side: the API with the technician page, and the problems service
with rules scaled to the simulation's probe interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from cloud.api.app import create_app
from cloud.auth.accounts import UserExistsError
from cloud.auth.identity import Identity
from cloud.auth.principal import Role
from cloud.influx import InfluxSettings
from cloud.problems.config import EvaluatorConfig
from cloud.problems.service import run_problems
from cloud.remediation.config import RemediationConfig
from cloud.webserver import bind_socket, serve_app

log = logging.getLogger(__name__)


DEMO_USER = "demo"
TOKEN_TTL_NS = 86400 * 10**9


@dataclass(frozen=True)
class Cockpit:
    """Where the technician page is, the demo's account, and a personal token for scripts."""

    url: str
    username: str
    password: str
    token: str

    @property
    def page_link(self) -> str:
        """The page's URL (it asks for the username and password)."""
        return f"{self.url}/"

    @property
    def sign_in(self) -> str:
        """How to sign in, for the console."""
        return f"sign in as {self.username} / {self.password}; API token {self.token}"


def demo_account(state_url: str) -> tuple[str, str]:
    """The demo's supervisor of every district, with a fresh password; (password, token)."""
    password = secrets.token_urlsafe(9)
    ids = Identity(state_url)
    try:
        hashed = ids.passwords.hash(password)
        try:
            user = ids.accounts.add(
                DEMO_USER, role=Role.SUPERVISOR, districts=None, password_hash=hashed, lang="en"
            )
        except UserExistsError:  # a reused --workdir: same account, new password
            ids.accounts.set_password_hash(DEMO_USER, hashed)
            user = ids.accounts.require(DEMO_USER)
        token, _ = ids.tokens.create(user.id, name="demo", expires_ns=time.time_ns() + TOKEN_TTL_NS)
    finally:
        ids.close()
    return password, token


def demo_rules(probe_interval_s: float) -> dict[str, object]:
    """Problem rules fast enough to see within a demo: a few probe intervals, not minutes."""
    i = probe_interval_s
    return {
        "camera": {"down_for": 3 * i, "clear_for": 3 * i},
        "site": {"offline_for": i, "clear_for": 2 * i, "stale_after": 4 * i},
    }


def _listen(host: str, port: int) -> socket.socket:
    try:
        return bind_socket(host, port)
    except OSError:
        log.warning("port %d is busy; the technician page takes a free port instead", port)
        return bind_socket(host, 0)


def demo_remediation(mqtt_url: str, key_file: Path, probe_interval_s: float) -> RemediationConfig:
    """The automatic policy, on: a camera hung for 3 probes gets one power-cycle, checked every
    half probe interval; an unanswered action counts as running for a minute."""
    return RemediationConfig.model_validate(
        {
            "broker": {"url": mqtt_url, "client_id": "pantau-demo-remediation"},
            "interval_s": max(1.0, probe_interval_s / 2),
            "key_file": str(key_file),
            "policy": {"enabled": True, "hung_probes": 3, "settle_s": 60},
        }
    )


@contextlib.asynccontextmanager
async def cockpit(
    *,
    influx_url: str,
    database: str,
    state_dir: Path,
    probe_interval_s: float,
    port: int,
    remediation: RemediationConfig | None = None,
    services_catalogue: Path | None = None,
) -> AsyncIterator[Cockpit]:
    """Serve the API and run the problems service (with ``remediation``, its policy too) until
    the block ends."""
    state_url = f"sqlite:///{state_dir / 'state.sqlite'}"
    password, token = demo_account(state_url)
    influx = InfluxSettings(url=influx_url, database=database)
    config = EvaluatorConfig.model_validate(
        {
            "influx_url": influx_url,
            "database": database,
            "state_url": state_url,
            "interval": max(1.0, probe_interval_s / 2),
            "rules": demo_rules(probe_interval_s)
            | ({"services": {"catalogue": str(services_catalogue)}} if services_catalogue else {}),
            "remediation": remediation.model_dump() if remediation else None,
        }
    )
    # The API sends manual commands on a link of its own: one client id per connection.
    manual = (
        remediation.model_copy(
            update={
                "broker": remediation.broker.model_copy(update={"client_id": "pantau-demo-api"})
            }
        )
        if remediation
        else None
    )
    sock = _listen("127.0.0.1", port)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        api = tasks.create_task(
            serve_app(
                create_app(
                    influx=influx,
                    state_url=state_url,
                    remediation=manual,
                    services_catalogue=services_catalogue,
                ),
                sock,
            ),
            name="demo-api",
        )
        problems = tasks.create_task(run_problems(config, stop), name="demo-problems")
        try:
            yield Cockpit(
                url=f"http://127.0.0.1:{sock.getsockname()[1]}",
                username=DEMO_USER,
                password=password,
                token=token,
            )
        finally:
            stop.set()
            api.cancel()
            await asyncio.gather(api, problems, return_exceptions=True)
