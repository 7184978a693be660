"""A site's uplink: a TCP relay between an agent and the broker that can be cut and restored."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)

RELAY_CHUNK_BYTES = 65_536


class CuttableListener:
    """A loopback listener whose ``cut()`` drops every connection it carries and refuses new
    ones until ``restore()``; subclasses serve a connection in ``_accept``."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.is_up = True

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop all connections."""
        self.cut()
        if self._server:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cut(self) -> None:
        """Drop every connection and refuse new ones until ``restore()``."""
        self.is_up = False
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def restore(self) -> None:
        """Carry connections again."""
        self.is_up = True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _relay(
        self,
        near: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        far: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        """Pipe both ways until either side closes; ``cut()`` closes both."""
        self._writers.update((near[1], far[1]))
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(pipe(near[0], far[1]))
                tasks.create_task(pipe(far[0], near[1]))
        except* (ConnectionError, OSError):
            pass
        finally:
            for w in (near[1], far[1]):
                self._writers.discard(w)
                w.close()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until end of stream, then close ``writer``."""
    try:
        while data := await reader.read(RELAY_CHUNK_BYTES):
            if writer.is_closing():
                break
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


class Uplink(CuttableListener):
    """Relays ``127.0.0.1:port`` to the broker; ``cut()`` drops every connection until restored."""

    def __init__(self, broker_host: str, broker_port: int) -> None:
        super().__init__()
        self._target = (broker_host, broker_port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.is_up:
            writer.close()
            return
        try:
            up = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        current = asyncio.current_task()
        if current is not None:
            self._tasks.add(current)
        try:
            await self._relay((reader, writer), up)
        finally:
            if current is not None:
                self._tasks.discard(current)
