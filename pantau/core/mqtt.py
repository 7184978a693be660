"""A narrow asyncio seam over paho-mqtt: connect, publish, subscribe, receive, ack, close.

paho runs its network loop in its own thread (``loop_start``); everything it reports is handed to
the asyncio loop with ``call_soon_threadsafe``, so callers only ever see coroutines, futures and an
``asyncio.Queue`` of messages. Nothing outside this module and ``mqtt_client`` (which builds
the paho client) imports paho.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from pantau.core.contract import PublishTopic, TopicFilter
from pantau.core.mqtt_client import paho_client
from pantau.core.mqtt_types import (
    BrokerAddress,
    FatalConnectError,
    LinkSettings,
    Message,
    MqttError,
    NotConnectedError,
    Will,
    tls_verify_error,
)

__all__ = [
    "BrokerAddress",
    "FatalConnectError",
    "LinkSettings",
    "Message",
    "MqttError",
    "MqttLink",
    "NotConnectedError",
    "Will",
]

log = logging.getLogger(__name__)

INBOUND_BLOCK_POLL_S = 0.5  # how often a blocked paho thread checks whether we are closing

# CONNACK codes that mean "not you" (bad protocol, client id, credentials, not authorized, bad
# auth method): retried all the same, slowly and loudly, because the fix is on the broker (a
# password file or account being repaired) and must not need every agent restarted.
REFUSED_CONNACK = frozenset({0x84, 0x85, 0x86, 0x87, 0x8C})
REFUSED_LOG_EVERY_S = 60.0  # repeat the loud line at most this often while refused


class MqttLink:
    """One MQTT connection with automatic reconnect, owned by an asyncio loop.

    Args:
        settings: connection settings.
        on_connected: called on the asyncio loop after every successful CONNACK, after the
            subscriptions were renewed (e.g. to publish a birth message).
        next_will: called on the network thread before every connection attempt; the Will it
            returns is the one registered for that attempt (replacing ``settings.will``), so a
            will can name its own connection (a session sequence number, as Sparkplug B's
            bdSeq). If it raises, the attempt keeps the previous will.
        message_queue_size: bound of the inbound queue; when it is full, reading from the
            broker pauses (TCP backpressure) until the consumer catches up.
    """

    def __init__(
        self,
        settings: LinkSettings,
        *,
        on_connected: Callable[[], None] | None = None,
        next_will: Callable[[], Will] | None = None,
        message_queue_size: int = 10_000,
    ) -> None:
        self._settings = settings
        self._on_connected = on_connected
        self._next_will = next_will
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscriptions: list[tuple[TopicFilter, int]] = []
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._generation = 0
        self._fatal: FatalConnectError | None = None
        self._refused: str | None = None
        self._refused_logged_at = float("-inf")
        self._closing = False
        self._awaiting_subacks: set[int] = set()
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.disconnected.set()
        self.failed = asyncio.Event()
        self.refused_event = asyncio.Event()  # set at each refusal; cleared by a connection
        self.messages: asyncio.Queue[Message] = asyncio.Queue(maxsize=message_queue_size)
        self._client = self._make_client()

    @property
    def generation(self) -> int:
        """Number of successful connects so far."""
        return self._generation

    def _make_client(self) -> paho.Client:
        client, self._tls = paho_client(self._settings)
        if self._next_will is not None:
            client.on_pre_connect = self._paho_on_pre_connect
        client.on_connect = self._paho_on_connect
        client.on_connect_fail = self._paho_on_connect_fail
        client.on_disconnect = self._paho_on_disconnect
        client.on_message = self._paho_on_message
        client.on_publish = self._paho_on_publish
        client.on_subscribe = self._paho_on_subscribe
        return client

    async def start(self) -> None:
        """Start connecting in the background; returns at once (see ``wait_connected``)."""
        self._loop = asyncio.get_running_loop()
        s = self._settings
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = s.session_expiry_s
        props.ReceiveMaximum = s.receive_maximum
        if s.max_packet_bytes:
            props.MaximumPacketSize = s.max_packet_bytes
        self._client.connect_async(
            s.address.host,
            s.address.port,
            keepalive=s.keepalive_s,
            clean_start=s.clean_start,
            properties=props,
        )
        self._client.loop_start()

    @property
    def refused(self) -> str | None:
        """Why the broker refused the latest attempt; ``None`` once connected."""
        return self._refused

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait for a connection; raise ``FatalConnectError`` or ``TimeoutError``.

        A refusal by the broker raises ``FatalConnectError`` here (the caller asked for a
        connection now), although the link itself keeps retrying until closed.
        """
        async with asyncio.timeout(timeout_s):
            waits = {
                asyncio.create_task(event.wait())
                for event in (self.connected, self.failed, self.refused_event)
            }
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()
        if self._fatal:
            raise self._fatal
        if not self.connected.is_set() and self._refused:
            raise FatalConnectError(f"broker refused: {self._refused}")

    async def raise_on_failure(self) -> None:
        """Wait until the link cannot work without a local fix, then raise ``FatalConnectError``.

        That is an untrusted broker certificate or a refused subscription; refused credentials
        are retried (see ``REFUSED_CONNACK``). Services run this as a task so that such errors
        stop them loudly.
        """
        await self.failed.wait()
        assert self._fatal is not None
        raise self._fatal

    async def subscribe(self, filters: Sequence[TopicFilter], qos: int = 1) -> None:
        """Subscribe now (if connected) and again after every reconnect.

        Subscribe before ``start()`` to have ``connected`` wait for the SUBACKs.
        """
        for f in filters:
            self._subscriptions.append((f, qos))
            if self.connected.is_set():
                self._client.subscribe(f, qos=qos)

    def publish_nowait(
        self, topic: PublishTopic, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        """Publish; the future resolves when the broker acknowledged (QoS 1) or sent (QoS 0).

        Raises:
            NotConnectedError: there is no connection; nothing was handed to paho.
        """
        if not self.connected.is_set() or self._loop is None:
            raise NotConnectedError(f"not connected to {self._settings.address.host}")
        future: asyncio.Future[None] = self._loop.create_future()
        # paho may report the PUBACK from its thread before publish() returns; that report is
        # marshalled to this loop, so it runs only after the mid below is registered.
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        # paho keeps QoS>0 messages for resend even when the socket just went away (NO_CONN).
        if info.rc not in (
            MQTTErrorCode.MQTT_ERR_SUCCESS,
            MQTTErrorCode.MQTT_ERR_QUEUE_SIZE,
            MQTTErrorCode.MQTT_ERR_NO_CONN,
        ):
            raise NotConnectedError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        self._pending[info.mid] = future
        return future

    async def publish(
        self, topic: PublishTopic, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish and wait for the broker's acknowledgement."""
        await self.publish_nowait(topic, payload, qos=qos, retain=retain)

    def ack(self, message: Message) -> None:
        """Acknowledge a QoS 1 message (manual-ack links only).

        A message from an earlier connection is not acked: the broker redelivers it on the resumed
        session, with a packet id that may by now name another message.
        """
        if message.qos > 0 and message.generation == self._generation:
            self._client.ack(message.mid, message.qos)

    async def close(self, *, graceful: bool = True) -> None:
        """Disconnect (sending DISCONNECT if ``graceful``) and stop the network thread."""
        self._closing = True
        if graceful:
            self._client.disconnect()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._client.loop_stop)
        if not graceful:
            sock = self._client.socket()
            if sock is not None:
                sock.close()
        self.connected.clear()
        self.disconnected.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(NotConnectedError("link closed"))
        self._pending.clear()

    # --- paho thread callbacks: marshal everything to the asyncio loop -------------------------

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def _paho_on_pre_connect(self, client: paho.Client, _u: Any) -> None:
        # paho calls this before every attempt, the first included, on its network thread.
        assert self._next_will is not None
        try:
            will = self._next_will()
        except Exception:  # an exception here would end paho's network thread
            log.exception(
                "could not compose the will of %s; keeping the previous one",
                self._settings.client_id,
            )
            return
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)

    def _paho_on_connect_fail(self, client: paho.Client, _u: Any) -> None:
        # paho does not say why a connect failed. An untrusted broker certificate will not fix
        # itself: find out with one handshake of our own and stop retrying if that is it.
        if self._tls is None or self._fatal is not None:
            return
        address = self._settings.address
        problem = tls_verify_error(self._tls, address.host, address.port)
        if problem:
            log.error("broker %s:%d is not trusted: %s", address.host, address.port, problem)
            self._call(
                self._set_fatal,
                FatalConnectError(
                    f"broker certificate of {address.host}:{address.port} rejected ({problem}); "
                    "check ca_file and that the broker's certificate names this host"
                ),
            )

    def _paho_on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        code = int(reason.value)
        if code != 0:
            if code in REFUSED_CONNACK:
                self._call(self._set_refused, str(reason))
            else:
                log.warning("broker refused %s: %s (retrying)", self._settings.client_id, reason)
            return
        # Messages can arrive before the SUBACKs; they already belong to this connection.
        self._generation += 1
        # "Connected" means subscribed too: a publisher that waits for us (a simulation, a test)
        # must not publish into a topic nobody is subscribed to yet; brokers drop those.
        self._awaiting_subacks = {
            int(client.subscribe(f, qos=qos)[1] or 0) for f, qos in list(self._subscriptions)
        }
        if not self._awaiting_subacks:
            self._call(self._on_connect_loop)

    def _paho_on_subscribe(
        self, client: paho.Client, _u: Any, mid: int, reasons: list[Any], _p: Any
    ) -> None:
        # Runs on paho's network thread, like on_connect, so the set is not shared concurrently.
        if mid not in self._awaiting_subacks:
            return
        self._awaiting_subacks.discard(mid)
        refused = [str(r) for r in reasons if int(r.value) >= 0x80]
        if refused:
            log.error("broker refused subscription of %s: %s", self._settings.client_id, refused)
            self._call(self._set_fatal, FatalConnectError(f"subscription refused: {refused}"))
            client.disconnect()
            return
        if not self._awaiting_subacks:
            self._call(self._on_connect_loop)

    def _set_refused(self, reason: str) -> None:
        now = time.monotonic()
        if self._refused != reason or now - self._refused_logged_at >= REFUSED_LOG_EVERY_S:
            a = self._settings.address
            log.error(
                "broker %s:%d refused %s: %s; retrying every <= %g s until the broker's accounts "
                "are fixed",
                a.host,
                a.port,
                self._settings.client_id,
                reason,
                self._settings.reconnect_max_s,
            )
            self._refused_logged_at = now
        self._refused = reason
        self.refused_event.set()

    def _set_fatal(self, error: FatalConnectError) -> None:
        self._fatal = error
        self.failed.set()

    def _on_connect_loop(self) -> None:
        log.info(
            "connected to %s:%s as %s",
            self._settings.address.host,
            self._settings.address.port,
            self._settings.client_id,
        )
        self._refused = None
        self.refused_event.clear()
        self.connected.set()
        self.disconnected.clear()
        if self._on_connected:
            self._on_connected()

    def _paho_on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._call(self._on_disconnect_loop, str(reason))

    def _on_disconnect_loop(self, reason: str) -> None:
        if self.connected.is_set() and not self._closing:
            log.info("disconnected from broker (%s); reconnecting", reason)
        self.connected.clear()
        self.disconnected.set()

    def _paho_on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        """Hand a message to the asyncio side, blocking paho's thread while the queue is full.

        Blocking here stops paho reading the socket, so TCP pushes back on the broker. We cannot
        rely on our Receive Maximum alone: mosquitto 2.0.11 (Debian 12) floods past it once acks
        flow (eclipse-mosquitto/mosquitto#2301). If we block longer than the keepalive the
        broker drops us; the persistent session then redelivers whatever we had not acked.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        message = Message(
            msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain), msg.mid, self._generation
        )
        put = asyncio.run_coroutine_threadsafe(self.messages.put(message), loop)
        while True:
            try:
                put.result(timeout=INBOUND_BLOCK_POLL_S)
            except concurrent.futures.TimeoutError:
                if self._closing or loop.is_closed():
                    put.cancel()
                    return
                continue
            except (concurrent.futures.CancelledError, RuntimeError):
                return
            return

    def _paho_on_publish(self, _c: paho.Client, _u: Any, mid: int, _r: Any, _p: Any) -> None:
        self._call(self._resolve, mid)

    def _resolve(self, mid: int) -> None:
        future = self._pending.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(None)
