"""A loopback HTTP/1.1 server with keep-alive for device simulators: listening, serving each
connection request by request (``handle_one``), and a stop that drops every connection."""

from __future__ import annotations

import asyncio
import contextlib

STOP_TIMEOUT_S = 2.0


class LoopbackHttpServer:
    """Subclasses answer one request in ``handle_one`` (False ends the connection)."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def listen(self, port: int = 0) -> None:
        """Listen on 127.0.0.1 (port 0: a free one)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):  # Python 3.11 has no Server.close_clients()
                writer.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), STOP_TIMEOUT_S)

    async def handle_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False closes the connection."""
        raise NotImplementedError

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while await self.handle_one(reader, writer):
                pass
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
