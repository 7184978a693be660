"""The agent's messages, in the contract minor its collectors speak.

A batch is assembled from the queue's JSON bodies without re-serialising them (they were
validated as contract models when queued); a collector of an older minor gets them without
the fields it does not know (``pantau.core.compat``). ``tests/test_wire_unit.py`` pins the output
against ``ReadingBatch`` for every reading kind in both dialects.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from pantau.core.compat import downgrade_body, fields_newer_than
from pantau.core.contract import (
    CONTRACT_MINOR,
    PROTOCOL_VERSION,
    READING_KINDS,
    ContractNotice,
    ReadingBatch,
    Receipt,
    SiteStatus,
)
from pantau.core.mqtt_types import Message

log = logging.getLogger(__name__)


def encode_batch(
    site: str,
    district: str,
    rows: Iterable[tuple[str, bytes]],
    *,
    msg: int | None = None,
    minor: int = CONTRACT_MINOR,
) -> bytes:
    """A ``ReadingBatch`` JSON from ``(kind, body)`` rows, for a collector of ``minor``."""
    groups: dict[str, list[bytes]] = {kind: [] for kind in READING_KINDS}
    unknown = fields_newer_than(ReadingBatch, minor)  # whole kinds the collector cannot store
    for kind, body in rows:
        if kind in unknown:
            continue
        groups[kind].append(body if minor >= CONTRACT_MINOR else downgrade_body(kind, body, minor))
    head = f'{{"v":{PROTOCOL_VERSION}'
    if minor >= 1:
        head += f',"minor":{CONTRACT_MINOR}'
    head += f',"site":"{site}","district":"{district}"'
    if msg is not None:
        head += f',"msg":{msg}'
    parts = [head.encode()]
    for kind, bodies in groups.items():
        if bodies:
            parts.append(b',"' + kind.encode() + b'":[' + b",".join(bodies) + b"]")
    parts.append(b"}")
    return b"".join(parts)


def encode_status(status: SiteStatus, minor: int) -> bytes:
    """A birth or will for a collector of ``minor``."""
    if minor >= 1:
        return status.model_copy(update={"minor": CONTRACT_MINOR}).model_dump_json().encode()
    return status.model_dump_json(exclude=set(fields_newer_than(SiteStatus, minor))).encode()


def parse_answer(message: Message) -> Receipt | ContractNotice | None:
    """A receipt or a contract notice from the receipts topic; ``None`` (logged) if neither."""
    for model in (ContractNotice, Receipt):
        try:
            return model.model_validate_json(message.payload)
        except ValidationError as exc:
            error = exc
    log.warning("ignored a malformed receipt on %s: %s", message.topic, error)
    return None


class PeerContract:
    """The contract minor this agent's collectors speak, learnt from their notices and kept on
    disk (an agent must not send fields its collector refuses after a restart)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self.minor = 0
        if path is not None and path.exists():
            try:
                self.minor = min(CONTRACT_MINOR, int(json.loads(path.read_text())["minor"]))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("ignored unreadable contract state %s: %s", path, exc)

    def learn(self, notice: ContractNotice) -> bool:
        """Take a collector's notice; True if the minor we speak changed."""
        minor = min(CONTRACT_MINOR, notice.minor)
        if minor == self.minor:
            return False
        log.info("collectors speak contract %s: sending minor %d", notice.contract, minor)
        self.minor = minor
        if self._path is not None:
            try:
                tmp = self._path.with_suffix(".tmp")
                tmp.write_text(json.dumps({"minor": minor, "contract": notice.contract}))
                os.replace(tmp, self._path)
            except OSError as exc:  # a full disk: we relearn it from the next notice
                log.warning("could not keep the contract state in %s: %s", self._path, exc)
        return True
