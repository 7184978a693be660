"""Simulated e-government services: HTTPS servers on loopback with real TLS from the project's
CA (``pantau.ops.pki``), each with a behaviour: healthy, a certificate close to expiry, slow,
an error page served with status 200, down (503 or closed), and a catalogue entry whose DNS
name does not resolve. ``catalogue()`` gives the matching ``services.yaml`` content."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pantau.ops.pki import init_ca, issue_server

log = logging.getLogger(__name__)

OK_PAGE = b"<html><title>SIMPEG</title><body>Selamat datang di layanan</body></html>"
ERROR_PAGE = b"<html><body>Fatal error: koneksi database gagal</body></html>"
KEYWORD = "Selamat datang"
UNRESOLVABLE = "layanan.invalid"  # RFC 2606: never resolves


class Behaviour(enum.StrEnum):
    """What a simulated service does."""

    OK = "ok"
    SLOW = "slow"  # answers after ``slow_s``
    ERROR_200 = "error_200"  # an error page with status 200
    DOWN = "down"  # 503


@dataclass
class SimService:
    """One service; ``behaviour`` may change while it runs (``fail()``, ``heal()``)."""

    name: str
    opd: str
    behaviour: Behaviour = Behaviour.OK
    cert_days: float = 365.0
    slow_s: float = 1.5
    port: int = 0
    requests: int = 0
    _server: asyncio.Server | None = field(default=None, repr=False)

    def fail(self) -> None:
        """Answer 503 from now on."""
        self.behaviour = Behaviour.DOWN

    def heal(self) -> None:
        """Answer normally again."""
        self.behaviour = Behaviour.OK

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            # A stop cancels a handler mid-answer; ending it normally keeps asyncio's stream
            # callback from logging the cancellation as an error (Python 3.11).
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                self.requests += 1
                if self.behaviour is Behaviour.SLOW:
                    await asyncio.sleep(self.slow_s)
                status, body = {
                    Behaviour.DOWN: (b"503 Service Unavailable", b"maintenance"),
                    Behaviour.ERROR_200: (b"200 OK", ERROR_PAGE),
                }.get(self.behaviour, (b"200 OK", OK_PAGE))
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n"
                    b"Connection: close\r\n\r\n" + body
                )
                await writer.drain()
        finally:
            writer.close()


class SimServices:
    """Runs the simulated services; ``ca_file`` is what agents must trust."""

    def __init__(self, pki_dir: Path, services: list[SimService]) -> None:
        self._dir = pki_dir
        self.services = {s.name: s for s in services}
        self.ca_file = pki_dir / "ca.crt"

    @classmethod
    def standard(cls, pki_dir: Path) -> SimServices:
        """The demo's set: two healthy, one expiring in 10 days, one slow, one error page."""
        return cls(
            pki_dir,
            [
                SimService("simpeg", "bkpsdm"),
                SimService("sipd", "bappeda"),
                SimService("perizinan", "dpmptsp", cert_days=10.0),
                SimService("lapor", "kominfo", behaviour=Behaviour.SLOW),
                SimService("siskeudes", "dpmd", behaviour=Behaviour.ERROR_200),
            ],
        )

    async def start(self) -> None:
        """Issue certificates (a CA if none) and listen on free loopback ports."""
        if not self.ca_file.exists():
            init_ca(self._dir)
        for service in self.services.values():
            issued = issue_server(
                self._dir, service.name, ["localhost", "127.0.0.1"], days=service.cert_days
            )
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(issued.cert), str(issued.key))
            server = await asyncio.start_server(service._handle, "127.0.0.1", 0, ssl=context)
            service._server = server
            service.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening."""
        for service in self.services.values():
            if service._server is not None:
                service._server.close()
                with contextlib.suppress(Exception):
                    await service._server.wait_closed()

    def catalogue(self, *, version: int = 1, unresolvable: bool = True) -> dict[str, Any]:
        """The ``services.yaml`` content for these services (and one unresolvable name)."""
        entries: list[dict[str, Any]] = [
            {
                "name": s.name,
                "title": s.name.upper(),
                "opd": s.opd,
                "url": f"https://localhost:{s.port}/",
                "keyword": KEYWORD,
                "max_latency_ms": 1000,
                "tls_warn_days": 14,
                "timeout_s": 5,
            }
            for s in self.services.values()
        ]
        if unresolvable:
            entries.append(
                {
                    "name": "eoffice",
                    "title": "E-OFFICE",
                    "opd": "setda",
                    "url": f"https://{UNRESOLVABLE}/",
                    "timeout_s": 5,
                }
            )
        return {"version": version, "services": entries}
