"""A simulated district's whole internet path: the agent's MQTT uplink (``Uplink``) and the
HTTP proxy (CONNECT) its service probes go through (``services.proxy``), so one ``cut()`` takes
the district off the internet for both, as a real uplink failure does; ``block(port)`` breaks
only its route to one service while MQTT stays up."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from simulators.uplink import RELAY_CHUNK_BYTES, Uplink

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 4096  # a CONNECT request's head


class ConnectProxy:
    """An HTTP CONNECT proxy on a free loopback port: refuses every tunnel while cut, and
    tunnels to a blocked port answer 502 (the route to that service is broken)."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.is_up = True
        self.blocked: set[int] = set()
        self.tunnels = 0  # tunnels opened (a test can see the probes used the proxy)

    @property
    def url(self) -> str:
        """The agent's ``services.proxy``."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every tunnel."""
        self.cut()
        if self._server:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cut(self) -> None:
        """Drop every tunnel and refuse new ones until ``restore()``."""
        self.is_up = False
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def restore(self) -> None:
        """Tunnel again."""
        self.is_up = True

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
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.tunnels += 1
        self._writers.update((writer, up_writer))
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(_pipe(reader, up_writer))
                tasks.create_task(_pipe(up_reader, writer))
        except* (ConnectionError, OSError):
            pass
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(RELAY_CHUNK_BYTES):
            if writer.is_closing():
                break
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


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
