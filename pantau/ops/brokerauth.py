"""Broker accounts through Mosquitto's dynamic security plugin: identity-bound clients and
subscribe-time ACLs.

Every account is a dynsec client. A site's user name is its site id and it may connect only
with its own agent client id (``pantau-agent-<site>``), so it can neither take over another
site's session nor a collector's. Its role lets it publish only its own readings and status and
subscribe only to its own command and receipt topics: ``#``, ``$share/...`` and other sites'
topics are refused in the SUBACK, so a site cannot join the collectors' shared group and make the
broker drop other sites' messages. The collector account reads every site and may publish only
receipts; the admin account manages accounts over ``$CONTROL/dynamic-security/v1``. Unlisted
access is denied (``defaultACLAccess`` all false but unsubscribe).

The broker loads the JSON written by ``init_files`` at start; afterwards accounts change at run
time through the control topic (``DynsecAdmin``), so no file is rewritten under the broker and no
reload is needed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pantau.core.contract import (
    ID_PATTERN,
    RESERVED_ID_PREFIX,
    TOPIC_ROOT,
    TopicKind,
    agent_client_id,
    site_command_filter,
    site_receipts_topic,
    site_topic,
)
from pantau.core.siteregistry import (
    REGISTRY_FILE,
    RegisteredSite,
    RegistryError,
    load_registry,
    save_registry,
)

COLLECTOR_USER = "pantau-collector"
ADMIN_USER = "pantau-admin"
PBKDF2_ITERATIONS = 101  # mosquitto's default for dynsec and mosquitto_passwd
SALT_BYTES = 12
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
CONTROL_TIMEOUT_S = 10.0
SITE_ROLE_PREFIX = "pantau-site-"


class BrokerAuthError(Exception):
    """An account file or command failed, or a site id is refused; the message says which."""


def check_site_id(site: str) -> None:
    """Refuse ids that are not valid site ids or that name one of our own accounts."""
    if not re.fullmatch(ID_PATTERN, site) or site.startswith(RESERVED_ID_PREFIX):
        raise BrokerAuthError(
            f"{site!r} is not a valid site id (letters, digits, _ . -; max 64; not starting "
            f"with {RESERVED_ID_PREFIX!r})"
        )


def hash_password(password: str, *, salt: bytes | None = None) -> dict[str, Any]:
    """A dynsec client's ``password``/``salt``/``iterations`` (PBKDF2-SHA512, base64)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": PBKDF2_ITERATIONS,
    }


def _acl(kind: str, topic: str, *, priority: int = 0) -> dict[str, Any]:
    return {"acltype": kind, "topic": topic, "priority": priority, "allow": True}


def site_role(site: str) -> dict[str, Any]:
    """The role of one site: its own topics and nothing else."""
    own = f"{TOPIC_ROOT}/sites/{site}"
    return {
        "rolename": SITE_ROLE_PREFIX + site,
        "acls": [
            _acl("publishClientSend", site_topic(site, TopicKind.READINGS)),
            _acl("publishClientSend", site_topic(site, TopicKind.STATUS)),
            _acl("subscribeLiteral", site_command_filter(site)),
            _acl("subscribeLiteral", site_receipts_topic(site)),
            _acl("publishClientReceive", f"{own}/command/#"),
            _acl("publishClientReceive", site_receipts_topic(site)),
        ],
    }


def collector_role() -> dict[str, Any]:
    """Reads every site (plainly or in any shared group); publishes receipts and commands."""
    acls = []
    for kind in (TopicKind.READINGS, TopicKind.STATUS):
        every = f"{TOPIC_ROOT}/sites/+/{kind.value}"
        acls += [
            _acl("subscribePattern", every),
            _acl("subscribePattern", f"$share/+/{every}"),
            _acl("publishClientReceive", every),
        ]
    acls.append(_acl("publishClientSend", f"{TOPIC_ROOT}/sites/+/receipts"))
    # The command center's signed commands (pantau/core/commands.py); sites may only read them.
    acls.append(_acl("publishClientSend", f"{TOPIC_ROOT}/sites/+/command/#"))
    return {"rolename": COLLECTOR_USER, "acls": acls}


def admin_role() -> dict[str, Any]:
    """Manages accounts through the plugin's control topic."""
    topic = "$CONTROL/dynamic-security/#"
    kinds = ("publishClientSend", "publishClientReceive", "subscribePattern")
    return {"rolename": ADMIN_USER, "acls": [_acl(k, topic) for k in kinds]}


def initial_config(*, admin_password: str, collector_password: str) -> dict[str, Any]:
    """The plugin's JSON with the admin and collector accounts and no site yet."""
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [
            {
                "username": ADMIN_USER,
                "textname": "pantau account admin",
                "roles": [{"rolename": ADMIN_USER}],
                **hash_password(admin_password),
            },
            {
                "username": COLLECTOR_USER,
                "textname": "pantau collectors",
                "roles": [{"rolename": COLLECTOR_USER}],
                **hash_password(collector_password),
            },
        ],
        "groups": [],
        "roles": [admin_role(), collector_role()],
    }


def add_site_commands(site: str, password: str) -> list[dict[str, Any]]:
    """Create a site's role and client (the client bound to the site's agent client id)."""
    check_site_id(site)
    role = site_role(site)
    return [
        {"command": "createRole", "rolename": role["rolename"], "acls": role["acls"]},
        {
            "command": "createClient",
            "username": site,
            "password": password,
            "clientid": agent_client_id(site),
            "textname": f"site {site}",
            "roles": [{"rolename": role["rolename"]}],
        },
    ]


@dataclass(frozen=True)
class BrokerAccountFiles:
    """The broker's account directory: the plugin's JSON and the two service passwords."""

    directory: Path

    @property
    def dynsec_file(self) -> Path:
        """``plugin_opt_config_file`` of the dynamic security plugin."""
        return self.directory / "dynamic-security.json"

    @property
    def admin_password_file(self) -> Path:
        """The admin account's password (for ``pantau sites``; owner-only)."""
        return self.directory / "admin.password"

    @property
    def collector_password_file(self) -> Path:
        """The collector account's password (the collector runs beside the broker)."""
        return self.directory / "collector.password"

    @property
    def sites_file(self) -> Path:
        """The site registry: each site's district and location (the collector's
        ``sites_registry``; ``pantau.core.siteregistry``)."""
        return self.directory / REGISTRY_FILE

    def place_site(
        self, site: str, district: str, *, lat: float | None = None, lon: float | None = None
    ) -> None:
        """Register (or move) ``site`` in ``district``; the collector picks it up by itself."""
        check_site_id(site)
        try:
            entry = RegisteredSite(district=district, lat=lat, lon=lon)
            registry = load_registry(self.sites_file)
            registry.sites[site] = entry
            save_registry(self.sites_file, registry)
        except ValidationError as exc:
            raise BrokerAuthError(f"{site}: {exc.errors()[0]['msg']} ({district!r})") from None
        except RegistryError as exc:
            raise BrokerAuthError(str(exc)) from None

    def unplace_site(self, site: str) -> None:
        """Take ``site`` out of the registry (nothing if it is not there)."""
        try:
            registry = load_registry(self.sites_file)
            if registry.sites.pop(site, None) is not None:
                save_registry(self.sites_file, registry)
        except RegistryError as exc:
            raise BrokerAuthError(str(exc)) from None

    def init(self) -> None:
        """Write the plugin's JSON and new admin/collector passwords; refuse to overwrite.

        Files take the directory's owner, so a directory owned by the broker's user stays
        readable (and the JSON writable) by the broker after root runs this.
        """
        existing = [p for p in (self.dynsec_file, self.admin_password_file) if p.exists()]
        if existing:
            raise BrokerAuthError(
                f"{existing[0]} exists: accounts are already set up (change them with "
                "`pantau sites`, or remove the directory to start over)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        admin, collector = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        if self.collector_password_file.exists():
            collector = self.collector_password()
        else:
            write_private(self.collector_password_file, collector + "\n")
        write_private(self.admin_password_file, admin + "\n")
        config = initial_config(admin_password=admin, collector_password=collector)
        write_private(self.dynsec_file, json.dumps(config, indent=2) + "\n")

    def admin_password(self) -> str:
        """The admin password, or an error saying how to create it."""
        return self._read(self.admin_password_file)

    def collector_password(self) -> str:
        """The collector password, or an error saying how to create it."""
        return self._read(self.collector_password_file)

    def _read(self, path: Path) -> str:
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise BrokerAuthError(
                f"cannot read {path} ({exc.strerror}); run `pantau broker init --dir "
                f"{self.directory}` once, before the broker's first start"
            ) from None


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically, mode 0600, owned by the owner of ``path``'s directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = path.parent.stat()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    if os.geteuid() == 0 and (owner.st_uid, owner.st_gid) != (0, 0):
        os.chown(tmp, owner.st_uid, owner.st_gid)
    os.replace(tmp, path)  # a reader never sees a half-written file


class DynsecAdmin:
    """Sends account commands to a running broker's dynamic security plugin (synchronously)."""

    def __init__(
        self,
        url: str,
        *,
        password: str,
        ca_file: Path | None = None,
        timeout_s: float = CONTROL_TIMEOUT_S,
    ) -> None:
        from pantau.core.mqtt import BrokerAddress  # noqa: PLC0415 - keep paho out of pure helpers

        self._address = BrokerAddress.parse(url)
        self._password = password
        self._ca_file = ca_file
        self._timeout_s = timeout_s

    def run(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send ``commands``; return one response per command (``error`` set where it failed)."""
        import paho.mqtt.client as paho  # noqa: PLC0415
        from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

        done = threading.Event()
        result: dict[str, Any] = {}
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{ADMIN_USER}-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        client.username_pw_set(ADMIN_USER, self._password)
        if self._address.tls:
            client.tls_set(ca_certs=str(self._ca_file) if self._ca_file else None)

        def on_connect(c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if int(reason.value) != 0:
                result["refused"] = str(reason)
                done.set()
                return
            c.subscribe(f"{CONTROL_TOPIC}/response", qos=1)

        def on_subscribe(c: Any, _u: Any, _m: Any, reasons: list[Any], _p: Any) -> None:
            if any(int(r.value) >= 0x80 for r in reasons):
                result["refused"] = "subscription to the control topic refused"
                done.set()
                return
            c.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)

        def on_message(_c: Any, _u: Any, message: Any) -> None:
            result["responses"] = json.loads(message.payload).get("responses", [])
            done.set()

        client.on_connect, client.on_subscribe = on_connect, on_subscribe
        client.on_message = on_message
        try:
            client.connect(self._address.host, self._address.port, keepalive=30)
        except OSError as exc:
            raise BrokerAuthError(
                f"cannot reach the broker at {self._address.host}:{self._address.port}: {exc}"
            ) from None
        client.loop_start()
        try:
            if not done.wait(self._timeout_s):
                raise BrokerAuthError(
                    f"no answer from the dynamic security plugin at {self._address.host}:"
                    f"{self._address.port} in {self._timeout_s:g} s (is the plugin loaded?)"
                )
        finally:
            client.disconnect()
            client.loop_stop()
        if "refused" in result:
            raise BrokerAuthError(f"broker refused the admin account: {result['refused']}")
        responses: list[dict[str, Any]] = result["responses"]
        return responses

    def check(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``run`` and raise on the first failed command."""
        responses = self.run(commands)
        for response in responses:
            if response.get("error"):
                raise BrokerAuthError(f"{response.get('command')}: {response['error']}")
        return responses

    def add_site(self, site: str, *, password: str | None = None) -> str:
        """Create a site's account, or give an existing one a new password; return it."""
        password = password or secrets.token_urlsafe(24)
        responses = self.run(add_site_commands(site, password))
        errors = [r.get("error", "") for r in responses]
        if not any(errors):
            return password
        if errors[1] and "already exists" in errors[1].lower():  # a rotation
            self.check(
                [
                    {
                        "command": "modifyClient",
                        "username": site,
                        "password": password,
                        "clientid": agent_client_id(site),
                        "roles": [{"rolename": SITE_ROLE_PREFIX + site}],
                    }
                ]
            )
            return password
        raise BrokerAuthError(f"adding {site!r} failed: {'; '.join(e for e in errors if e)}")

    def remove_site(self, site: str) -> None:
        """Delete a site's account and role; the broker disconnects it at once."""
        check_site_id(site)
        responses = self.run(
            [
                {"command": "deleteClient", "username": site},
                {"command": "deleteRole", "rolename": SITE_ROLE_PREFIX + site},
            ]
        )
        if responses and responses[0].get("error"):
            raise BrokerAuthError(f"removing {site!r} failed: {responses[0]['error']}")

    def sites(self) -> list[str]:
        """Site accounts on the broker."""
        response = self.check([{"command": "listClients", "count": -1}])[0]
        clients = response.get("data", {}).get("clients", [])
        return sorted(c for c in clients if not str(c).startswith(RESERVED_ID_PREFIX))
