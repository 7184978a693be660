"""Service probes against real TLS servers (the project's CA): a healthy service passes with its
certificate's days and protocol, a certificate 10 days from expiry says 10, an error page served
with status 200 fails its keyword check, a slow one is timed, a 503 fails its status, a name
that does not resolve fails at DNS, a server the agent does not trust fails at TLS; hostile
answers (garbage, endless headers, an endless body, a redirect loop) end as results, bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from edge_agent.services.probe import probe_service, tls_context
from edge_agent.services.proxy import Proxy
from pantau.core.readings import ServiceReading, ServiceStage
from pantau.core.services import ServiceCheck
from simulators.services import Behaviour, SimService, SimServices
from simulators.site_path import SitePath


@pytest.fixture
async def sims(tmp_path: Path) -> AsyncIterator[SimServices]:
    services = SimServices.standard(tmp_path / "pki")
    services.services["down"] = SimService("down", "x", behaviour=Behaviour.DOWN)
    await services.start()
    try:
        yield services
    finally:
        await services.stop()


def checks(sims: SimServices) -> dict[str, ServiceCheck]:
    return {
        entry["name"]: ServiceCheck.model_validate(entry) for entry in sims.catalogue()["services"]
    }


async def probe(check: ServiceCheck, sims: SimServices) -> ServiceReading:
    return await probe_service(check, tls_context(sims.ca_file))


async def test_each_simulated_service_gets_its_verdict(sims: SimServices) -> None:
    """One probe of each: the verdict, the failing step and the measured facts."""
    c = checks(sims)
    ok = await probe(c["simpeg"], sims)
    assert ok.ok and ok.stage is None and ok.status == 200, ok
    assert ok.tls_version in ("TLSv1.2", "TLSv1.3")
    assert ok.cert_days is not None and 364 < ok.cert_days < 366
    assert None not in (ok.dns_ms, ok.connect_ms, ok.tls_ms, ok.ttfb_ms, ok.total_ms)
    expiring = await probe(c["perizinan"], sims)
    assert expiring.ok and expiring.cert_days is not None and 9.9 < expiring.cert_days <= 10
    error_page = await probe(c["siskeudes"], sims)
    assert not error_page.ok and error_page.status == 200
    assert error_page.stage is ServiceStage.KEYWORD and "Selamat datang" in error_page.detail
    slow = await probe(c["lapor"], sims)
    assert slow.ok and slow.total_ms is not None and slow.total_ms >= 1500
    down = await probe(c["down"], sims)
    assert not down.ok and down.stage is ServiceStage.STATUS and down.status == 503
    nowhere = await probe(c["eoffice"], sims)
    assert not nowhere.ok and nowhere.stage is ServiceStage.DNS, nowhere


async def test_a_server_not_signed_by_a_trusted_ca_fails_at_tls(sims: SimServices) -> None:
    """Without the project's CA the same healthy service is refused at the handshake."""
    reading = await probe_service(checks(sims)["simpeg"], tls_context(None))
    assert not reading.ok and reading.stage is ServiceStage.TLS
    assert "certificate" in reading.detail


async def test_a_wrong_name_fails_at_tls(sims: SimServices) -> None:
    """The certificate is for localhost/127.0.0.1; the same server reached under another name
    (``dns_name`` resolves localhost, the URL names portal.test) is a name mismatch."""
    port = sims.services["simpeg"].port
    check = ServiceCheck(
        name="x", opd="o", url=f"https://portal.test:{port}/", dns_name="localhost"
    )
    reading = await probe(check, sims)
    assert not reading.ok and reading.stage is ServiceStage.TLS, reading


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def hostile(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"SSH-2.0-OpenSSH_8.9\r\n\r\n")
    await writer.drain()
    writer.close()


async def _endless_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\n")
    try:
        for i in range(100_000):
            writer.write(f"X-H{i}: y\r\n".encode())
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def _endless_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n")
    try:
        while True:
            writer.write(b"x" * 65536)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    writer.close()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)
    writer.close()


@pytest.mark.parametrize(
    ("handler", "stage", "within_s"),
    [
        (_garbage, ServiceStage.HTTP, 2.0),
        (_endless_headers, ServiceStage.HTTP, 2.0),
        (_endless_body, ServiceStage.KEYWORD, 2.0),
        (_loop, ServiceStage.REDIRECT, 2.0),
        (_silent, ServiceStage.HTTP, 2.5),
    ],
)
async def test_hostile_answers_end_as_bounded_results(
    handler: Handler, stage: ServiceStage, within_s: float
) -> None:
    """Each ends as a failed step within its deadline; an endless body is read only up to the
    cap (and lacks the keyword); a redirect loop stops at max_redirects."""
    server, port = await hostile(handler)
    check = ServiceCheck(
        name="h", opd="o", url=f"http://127.0.0.1:{port}/", keyword="never there",
        max_body_bytes=100_000, timeout_s=1.5, max_redirects=2,
    )  # fmt: skip
    try:
        t = time.monotonic()
        reading = await probe_service(check, tls_context(None))
        assert time.monotonic() - t < within_s
    finally:
        server.close()
    assert not reading.ok and reading.stage is stage, reading
    if stage is ServiceStage.KEYWORD:
        assert reading.body_bytes == 100_000
    if stage is ServiceStage.REDIRECT:
        assert reading.redirects == 2


async def test_json_path_and_tcp_checks(sims: SimServices) -> None:
    """A JSON body's path is checked; a TCP-with-TLS target needs no HTTP."""
    port = sims.services["simpeg"].port

    async def api(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b'{"status": {"db": "ok"}, "items": [1, 2]}'
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        await writer.drain()
        writer.close()

    server, api_port = await hostile(api)
    url = f"http://127.0.0.1:{api_port}/health"
    try:
        good = await probe(
            ServiceCheck(name="a", opd="o", url=url, json_path="status.db", json_value="ok"), sims
        )
        wrong = await probe(
            ServiceCheck(name="a", opd="o", url=url, json_path="status.db", json_value="up"), sims
        )
        missing = await probe(ServiceCheck(name="a", opd="o", url=url, json_path="items.5"), sims)
    finally:
        server.close()
    assert good.ok, good
    assert not wrong.ok and wrong.stage is ServiceStage.JSON
    assert not missing.ok and missing.stage is ServiceStage.JSON
    tcp = await probe(ServiceCheck(name="t", opd="o", target=f"localhost:{port}", tls=True), sims)
    assert tcp.ok and tcp.cert_days is not None and tcp.status is None


async def test_probes_through_a_districts_proxy(sims: SimServices) -> None:
    """Through a CONNECT proxy the certificate is still checked end to end (an untrusting
    agent fails at TLS); a route the proxy cannot give fails at tcp naming the proxy's answer;
    a cut proxy fails at tcp; nothing is direct (the proxy counts its tunnels)."""
    path = SitePath("127.0.0.1", 1)  # its MQTT side is not used here
    await path.start()
    try:
        proxy = Proxy.parse(path.proxy.url)
        c = checks(sims)
        context = tls_context(sims.ca_file)
        ok = await probe_service(c["simpeg"], context, proxy=proxy)
        assert ok.ok and ok.cert_days is not None and ok.cert_days > 300, ok
        assert path.proxy.tunnels == 1
        untrusted = await probe_service(c["simpeg"], tls_context(None), proxy=proxy)
        assert not untrusted.ok and untrusted.stage is ServiceStage.TLS
        path.block(sims.services["simpeg"].port)
        blocked = await probe_service(c["simpeg"], context, proxy=proxy)
        assert (blocked.ok, blocked.stage) == (False, ServiceStage.TCP)
        assert "status 502" in (blocked.detail or ""), blocked.detail
        assert (await probe_service(c["perizinan"], context, proxy=proxy)).ok
        path.cut()
        cut = await probe_service(c["perizinan"], context, proxy=proxy)
        assert (cut.ok, cut.stage) == (False, ServiceStage.TCP), cut
        assert path.proxy.tunnels == 3
    finally:
        await path.stop()
