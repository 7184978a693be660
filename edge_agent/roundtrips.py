"""The collector's clock against the agent's, from receipt round trips.

A receipt is stamped by the collector between the agent's publish and the receipt's arrival, so
the collector's clock minus the midpoint is the offset, off by at most half the round trip. The
fastest of the last ``CLOCK_SAMPLES`` round trips wins (as NTP prefers its shortest delays).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Protocol

from pantau.core.contract import PublishTopic
from pantau.core.mqtt import NotConnectedError

CLOCK_SAMPLES = 20  # receipts whose round trip estimates the clock offset (the fastest wins)


class RoundTrips:
    """Offset samples against ``now_ns`` (the clock the agent stamps from)."""

    def __init__(self, now_ns: Callable[[], int] = time.time_ns) -> None:
        self.now_ns = now_ns
        self._samples: list[tuple[int, int]] = []  # (round trip ns, offset ns)
        self._probes: dict[int, int] = {}  # clock probe message id -> sent at

    @property
    def best(self) -> tuple[int, int] | None:
        """(offset ns, round trip ns) of the fastest recent sample, ``None`` before the first."""
        if not self._samples:
            return None
        rtt, offset = min(self._samples)
        return offset, rtt

    def add(self, sent_ns: int, arrived_ns: int, stored_ns: int) -> None:
        """One receipt: published at ``sent_ns``, arrived at ``arrived_ns`` (both ``now_ns``),
        stamped ``stored_ns`` by the collector."""
        self._samples.append((arrived_ns - sent_ns, stored_ns - (sent_ns + arrived_ns) // 2))
        del self._samples[:-CLOCK_SAMPLES]

    def probe_sent(self, msg: int) -> None:
        """A message sent only for its receipt (the last ``CLOCK_SAMPLES`` are remembered)."""
        self._probes = dict(list(self._probes.items())[-CLOCK_SAMPLES + 1 :])
        self._probes[msg] = self.now_ns()

    def probe_answered(self, msg: int, arrived_ns: int, stored_ns: int) -> None:
        """A receipt named ``msg``: a sample if it was a probe."""
        sent = self._probes.pop(msg, None)
        if sent is not None:
            self.add(sent, arrived_ns, stored_ns)


class ProbeLink(Protocol):
    """What a clock probe needs of the broker connection (``MqttLink``, or a fake)."""

    connected: asyncio.Event

    def publish_nowait(
        self, topic: PublishTopic, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        """Publish; the future resolves at the PUBACK. Raises ``NotConnectedError``."""
        ...


class ClockProbe:
    """Sends an empty batch with a message id, only for its receipt's round trip: the agent's
    first clock offset, before it sends any reading (the publisher's receipt handling passes
    the answer to ``RoundTrips.probe_answered``)."""

    def __init__(
        self,
        link: ProbeLink,
        round_trips: RoundTrips,
        *,
        topic: PublishTopic,
        encode: Callable[[int], bytes],
    ) -> None:
        self._link, self._round_trips, self._topic, self._encode = link, round_trips, topic, encode

    def __call__(self) -> bool:
        """Send one probe; ``False`` if not connected."""
        if not self._link.connected.is_set():
            return False
        msg = secrets.randbits(62)
        try:
            future = self._link.publish_nowait(self._topic, self._encode(msg), qos=1)
        except NotConnectedError:
            return False
        # Its PUBACK does not matter (a lost probe is followed by another): outcome read, dropped.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._round_trips.probe_sent(msg)
        return True
