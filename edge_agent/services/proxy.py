"""The route a district's service probes take when its offices reach the internet through an
HTTP proxy (``services.proxy`` in site.yaml): one CONNECT tunnel per connection, so TLS (and
the certificate check) stays end to end, between the probe and the service."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from edge_agent.services.http import MAX_LINE_BYTES, HttpError, read_head


class ProxyError(Exception):
    """The proxy refused or broke the tunnel (the probe's ``tcp`` step fails with this)."""


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy that accepts CONNECT."""

    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Proxy:
        """``http://host:port`` (validated by the settings)."""
        parts = urlsplit(url)
        return cls(parts.hostname or "", parts.port or 3128)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


async def open_tunnel(
    proxy: Proxy, address: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A stream to ``address:port`` through ``proxy``; ``ProxyError`` saying why not."""
    try:
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port, limit=MAX_LINE_BYTES)
    except OSError as exc:
        raise ProxyError(f"proxy {proxy}: {exc.strerror or exc}") from exc
    target = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    try:
        writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode("ascii"))
        await writer.drain()
        status, _headers = await read_head(reader)
    except (HttpError, ConnectionError, ssl.SSLError) as exc:
        writer.close()
        raise ProxyError(f"proxy {proxy}: {exc or type(exc).__name__}") from exc
    if status != 200:
        writer.close()
        raise ProxyError(f"proxy {proxy} refused CONNECT {target}: status {status}")
    return reader, writer
