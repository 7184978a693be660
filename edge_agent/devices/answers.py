"""HTTP sessions whose answers are bounded: a device that sends more than ``max_bytes`` (or
announces it) gets an error, never the agent's memory."""

from __future__ import annotations

import aiohttp

CHUNK_BYTES = 65_536


class AnswerTooLargeError(aiohttp.ClientPayloadError):
    """A device's answer was longer than the agent accepts."""


class CappedResponse(aiohttp.ClientResponse):
    """A response whose ``read()`` stops at ``max_bytes`` (set per session by ``capped``)."""

    max_bytes = 2_000_000

    async def read(self) -> bytes:
        """The body, refused past ``max_bytes``."""
        declared = self.content_length
        if declared is not None and declared > self.max_bytes:
            self.close()
            raise AnswerTooLargeError(
                f"answer of {declared} bytes announced (limit {self.max_bytes})"
            )
        body = bytearray()
        while chunk := await self.content.read(CHUNK_BYTES):
            body += chunk
            if len(body) > self.max_bytes:
                self.close()
                raise AnswerTooLargeError(f"answer longer than {self.max_bytes} bytes")
        self.release()
        return bytes(body)


def capped_session(*, max_bytes: int, timeout_s: float) -> aiohttp.ClientSession:
    """An aiohttp session for one device's check: bounded answers and a deadline per request."""
    response_class = type("CappedResponseN", (CappedResponse,), {"max_bytes": max_bytes})
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=2, force_close=True),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        response_class=response_class,
        max_line_size=16_384,
        max_field_size=16_384,
    )
