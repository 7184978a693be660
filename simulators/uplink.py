"""A site's uplink: a TCP relay between an agent and the broker that can be cut and restored."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)

RELAY_CHUNK_BYTES = 65_536


class Uplink:
    """Relays ``127.0.0.1:port`` to the broker; ``cut()`` drops every connection until restored."""

    def __init__(self, broker_host: str, broker_port: int) -> None:
        self._target = (broker_host, broker_port)
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
        self._drop_all()
        if self._server:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cut(self) -> None:
        """Drop every relayed connection and refuse new ones until ``restore()``."""
        self.is_up = False
        self._drop_all()

    def restore(self) -> None:
        """Relay again."""
        self.is_up = True

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.is_up:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        current = asyncio.current_task()
        if current is not None:
            self._tasks.add(current)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._pipe(reader, up_writer))
                tasks.create_task(self._pipe(up_reader, writer))
        except* (ConnectionError, OSError):
            pass
        finally:
            if current is not None:
                self._tasks.discard(current)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(RELAY_CHUNK_BYTES):
                if writer.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
