"""A simulated district's whole internet path: the agent's MQTT uplink (``Uplink``) and the
HTTP proxy (CONNECT) its service probes go through (``services.proxy``), so one ``cut()`` takes
the district off the internet for both, as a real uplink failure does; ``block(port)`` breaks
only its route to one service while MQTT stays up."""

from __future__ import annotations

import asyncio
import logging

from simulators.uplink import CuttableListener, Uplink

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 4096  # a CONNECT request's head


class ConnectProxy(CuttableListener):
    """An HTTP CONNECT proxy on a free loopback port: refuses every tunnel while cut, and
    tunnels to a blocked port answer 502 (the route to that service is broken)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked: set[int] = set()
        self.tunnels = 0  # tunnels opened (a test can see the probes used the proxy)

    @property
    def url(self) -> str:
        """The agent's ``services.proxy``."""
        return f"http://127.0.0.1:{self.port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        current = asyncio.current_task()
        if current is not None:
            self._tasks.add(current)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            if current is not None:
                self._tasks.discard(current)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.is_up:
            return
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        method, _, rest = head[:MAX_REQUEST_BYTES].decode("latin-1").partition(" ")
        host, _, port = rest.partition(" ")[0].rpartition(":")
        if method != "CONNECT" or not port.isdigit():
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            return
        if int(port) in self.blocked:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            return
        try:
            up = await asyncio.open_connection(host.strip("[]"), int(port))
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.tunnels += 1
        await self._relay((reader, writer), up)


class SitePath:
    """A district's internet: its MQTT uplink to the broker and its proxy to the services."""

    def __init__(self, broker_host: str, broker_port: int) -> None:
        self.mqtt = Uplink(broker_host, broker_port)
        self.proxy = ConnectProxy()

    @property
    def port(self) -> int:
        """The MQTT relay's port (the agent's broker)."""
        return self.mqtt.port

    @property
    def is_up(self) -> bool:
        """False while cut."""
        return self.mqtt.is_up

    async def start(self) -> None:
        """Start both relays."""
        await self.mqtt.start()
        await self.proxy.start()

    async def stop(self) -> None:
        """Stop both relays."""
        await self.mqtt.stop()
        await self.proxy.stop()

    def cut(self) -> None:
        """The uplink fails: the agent loses the broker and the services at once."""
        self.mqtt.cut()
        self.proxy.cut()

    def restore(self) -> None:
        """The uplink is back, for both."""
        self.mqtt.restore()
        self.proxy.restore()

    def block(self, port: int) -> None:
        """Only the route to the service on ``port`` breaks; MQTT and other services stay up."""
        self.proxy.blocked.add(port)
