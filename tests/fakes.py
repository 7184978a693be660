"""Fakes of pantau's own seams (never of a library): a broker link, a point sink and a dead-letter
sink for the collector's ingest pipeline, in the manner of Telegraf's ``FakeClient``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from cloud.deadletter import DeadLetter
from pantau.core.contract import PublishTopic
from pantau.core.mqtt_types import Message, NotConnectedError


@dataclass
class FakeLink:
    """Messages are fed with ``fire``; acks and publishes are recorded in order."""

    messages: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    acked: list[int] = field(default_factory=list)  # mids, in ack order
    published: list[tuple[str, bytes]] = field(default_factory=list)
    connected: bool = True
    events: list[str] = field(default_factory=list)  # shared timeline with the sinks
    _mid: int = 0

    def fire(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Deliver a message as the broker would; return its mid."""
        self._mid += 1
        self.messages.put_nowait(Message(topic, payload, 1, retain, self._mid, 1))
        return self._mid

    def ack(self, message: Message) -> None:
        self.acked.append(message.mid)
        self.events.append(f"ack {message.mid}")

    def publish_nowait(
        self, topic: PublishTopic, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        if not self.connected:
            raise NotConnectedError("fake link is disconnected")
        self.published.append((topic, payload))
        self.events.append(f"publish {topic}")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@dataclass
class FakeSink:
    """Stores lines; a write can be held (``hold``) until its gate is set; lines containing a
    string of ``refuse`` are refused for good."""

    events: list[str]
    lines: list[str] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    gates: list[asyncio.Event] = field(default_factory=list)  # one per write, in call order
    hold: bool = False
    healthy: bool = True
    last_error: str | None = None
    calls: int = 0

    async def write(self, lines: list[str]) -> list[tuple[str, str]]:
        self.calls += 1
        gate = asyncio.Event()
        self.gates.append(gate)
        if not self.hold:
            gate.set()
        await gate.wait()
        bad = [line for line in lines if any(r in line for r in self.refuse)]
        refused = [(line, "refused by the fake") for line in bad]
        self.lines += [line for line in lines if line not in bad]
        self.events.append(f"write {len(lines)}")
        return refused


@dataclass
class FakeDeadLetters:
    """Keeps dead letters in memory."""

    events: list[str]
    letters: list[DeadLetter] = field(default_factory=list)

    async def add(self, letters: list[DeadLetter]) -> None:
        self.letters += letters
        self.events.append(f"dead {len(letters)}")


class WallClock:
    """The agent's ``StampClock`` seam on the wall clock: stamps in whole milliseconds."""

    def boot_ns(self) -> int:
        return time.time_ns()

    def now_ns(self) -> int:
        return time.time_ns()

    def stamp(self, device: tuple[str, ...], ts_ns: int) -> int:
        return ts_ns - ts_ns % 1_000_000
