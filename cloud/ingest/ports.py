"""The collector's seams: what it needs from a broker link, a point sink and a dead-letter
store. Production adapters are ``pantau.core.mqtt.MqttLink``, ``cloud.sink.InfluxSink`` and
``cloud.ingest.adapters.ThreadedDeadLetters``; tests hand in fakes (``tests/fakes.py``)."""

from __future__ import annotations

import asyncio
from typing import Protocol

from cloud.deadletter import DeadLetter
from cloud.ingest.births import Birth
from pantau.core.contract import PublishTopic
from pantau.core.mqtt_types import Message


class BrokerLink(Protocol):
    """A started MQTT link with manual acks."""

    @property
    def messages(self) -> asyncio.Queue[Message]:
        """Messages in arrival order."""
        ...

    def ack(self, message: Message) -> None:
        """Acknowledge ``message`` (the broker forgets it)."""
        ...

    def publish_nowait(
        self, topic: PublishTopic, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        """Hand a message to the broker; raise ``NotConnectedError`` while disconnected."""
        ...


class PointSink(Protocol):
    """Stores line-protocol points durably."""

    healthy: bool
    last_error: str | None

    async def write(self, lines: list[str]) -> list[tuple[str, str]]:
        """Return once stored; the ``(line, error)`` pairs refused for good are returned."""
        ...


class DeadLetterSink(Protocol):
    """Keeps rejected messages durably."""

    async def add(self, letters: list[DeadLetter]) -> None:
        """Return once ``letters`` are stored."""
        ...


class BirthLookup(Protocol):
    """The store's latest numbered birth of a site (written by any collector)."""

    async def latest_birth(self, site: str) -> Birth | None:
        """``None`` if the site has no numbered birth within raw retention."""
        ...
