"""Sign and publish one command on a site's ``command/run`` topic."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pantau.core.commands import Action, Command
from pantau.core.contract import PublishTopic, site_command_topic
from pantau.core.signing import SigningKeyError, load_private, new_nonce, sign
from pantau.core.units import NS_PER_S


class CommandKeyError(Exception):
    """The signing key cannot be read: the message says which file and what to do."""


class CommandLink(Protocol):
    """What sending needs of a broker connection (``MqttLink``)."""

    async def publish(
        self, topic: PublishTopic, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish and wait for the broker's acknowledgement."""
        ...


def read_key(path: Path) -> Ed25519PrivateKey:
    """The private key from its file (base64 of 32 bytes, as ``pantau keys init`` writes)."""
    try:
        return load_private(path.read_text())
    except OSError as exc:
        raise CommandKeyError(
            f"cannot read the command key {path}: {exc.strerror}; create it with "
            "'pantau keys init --out DIR' or point key_file/PANTAU_COMMAND_KEY_FILE at it"
        ) from exc
    except SigningKeyError as exc:
        raise CommandKeyError(f"{path}: {exc}") from exc


class CommandSender:
    """Signs commands with the command center's key and publishes them (QoS 1)."""

    def __init__(self, link: CommandLink, key: Ed25519PrivateKey, *, ttl_s: float) -> None:
        self._link = link
        self._key = key
        self._ttl_ns = int(ttl_s * NS_PER_S)

    async def send(
        self,
        site: str,
        camera: str,
        action: Action,
        *,
        trigger: str,
        problem: int | None = None,
        now_ns: int | None = None,
    ) -> Command:
        """Sign and publish; returns the command sent (its nonce identifies the answer)."""
        issued = time.time_ns() if now_ns is None else now_ns
        command = Command(
            site=site,
            device=camera,
            action=action,
            nonce=new_nonce(),
            issued_ns=issued,
            expires_ns=issued + self._ttl_ns,
            trigger=trigger,
            problem=problem,
        )
        await self._link.publish(site_command_topic(site), sign(command, self._key), qos=1)
        return command
