"""Simulated e-government services: HTTPS servers on loopback with real TLS from the project's
CA (``pantau.ops.pki``), each with a behaviour: healthy, a certificate close to expiry, slow,
an error page served with status 200, down (503 or closed), and a catalogue entry whose DNS
name does not resolve. ``catalogue()`` gives the matching ``services.yaml`` content;
``running_services`` runs them for the demo with the cloud's prober."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cloud.remediation.sender import read_key
from cloud.services.catalogue import load_catalogue
from cloud.services.prober import PointWriter, run_prober
from cloud.services.publish import publish_catalogue
from edge_agent.services.probe import probe_service, tls_context
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from pantau.core.readings import ServiceReading
from pantau.core.services import ServiceCheck
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


@contextlib.asynccontextmanager
async def running_services(
    base: Path,
    *,
    mqtt_url: str,
    influx: PointWriter,
    sites: dict[str, str],
    interval_s: float,
    fail: str | None = "simpeg",
    fail_after_s: float = 0.0,
    key_file: Path | None = None,
) -> AsyncIterator[tuple[SimServices, Path]]:
    """The demo's services: started, their catalogue written and published (retained) to every
    site, probed from the cloud every ``interval_s``; ``fail`` starts answering 503 after
    ``fail_after_s``. Signed with the command key in ``key_file`` if given (sites with
    ``commands.public_key`` take only a signed catalogue). Yields the services and the
    catalogue's path."""
    sims = SimServices.standard(base / "services-pki")
    await sims.start()
    path = base / "services.yaml"
    path.write_text(yaml.safe_dump(sims.catalogue(version=1)))
    link = MqttLink(
        LinkSettings(address=BrokerAddress.parse(mqtt_url), client_id="pantau-demo-services")
    )
    stop = asyncio.Event()
    context = tls_context(sims.ca_file)

    async def probe(check: ServiceCheck) -> ServiceReading:
        return await probe_service(check, context)

    async def fail_later() -> None:
        await asyncio.sleep(fail_after_s)
        if fail is not None:
            sims.services[fail].fail()
            log.info("simulated service %s now answers 503", fail)

    try:
        await link.start()
        await link.wait_connected(15)
        key = read_key(key_file) if key_file else None
        await publish_catalogue(link, load_catalogue(path), sites, key)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                run_prober(path, probe, influx, interval_s=interval_s, stop=stop),
                name="demo-cloud-prober",
            )
            failing = tasks.create_task(fail_later(), name="demo-service-fault")
            try:
                yield sims, path
            finally:
                stop.set()
                failing.cancel()
    finally:
        await link.close()
        await sims.stop()
