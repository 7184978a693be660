"""One probe of one service: DNS, TCP connect, TLS handshake (chain valid for the name, days to
expiry, protocol), HTTP status, body keyword or JSON path, redirects followed up to a limit;
each phase timed, the whole under the check's deadline. Every failure is a result naming the
step, never an exception; the agent's and the cloud's probers run this same code."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from edge_agent.services.http import (
    MAX_LINE_BYTES,
    HttpAnswer,
    HttpError,
    read_body,
    read_head,
    request_bytes,
)
from edge_agent.services.proxy import Proxy, ProxyError, open_tunnel
from pantau.core.readings import ServiceReading, ServiceStage
from pantau.core.services import ServiceCheck

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system's trust store plus ``ca_file``; hostname checked, TLS 1.2 at least."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _StepFailedError(Exception):
    def __init__(self, stage: ServiceStage, detail: str) -> None:
        super().__init__(detail)
        self.stage = stage
        self.detail = detail


@dataclass
class _Run:
    """What the probe learnt so far (phases of the last hop; the status after redirects)."""

    stage: ServiceStage = ServiceStage.DNS
    times: dict[str, float] = field(default_factory=dict)
    status: int | None = None
    cert_days: float | None = None
    tls_version: str | None = None
    redirects: int = 0
    body_bytes: int | None = None
    proxy: Proxy | None = None  # the route (not learnt): connections go through this proxy


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)


async def probe_service(
    check: ServiceCheck, context: ssl.SSLContext, *, proxy: Proxy | None = None
) -> ServiceReading:
    """Probe ``check`` once (through ``proxy``'s CONNECT tunnels if given; the name is still
    resolved here, by the district's resolver); ``ts`` of the result is 0 (the caller stamps
    it)."""
    run = _Run(proxy=proxy)
    started = time.perf_counter()
    ok, stage, detail = True, None, ""
    try:
        async with asyncio.timeout(check.timeout_s):
            await _probe(check, context, run)
    except _StepFailedError as exc:
        ok, stage, detail = False, exc.stage, exc.detail
    except TimeoutError:
        ok, stage = False, run.stage
        detail = f"no answer within {check.timeout_s:g} s ({run.stage.value})"
    return ServiceReading(
        service=check.name,
        ts=0,
        ok=ok,
        stage=stage,
        detail=detail[:200].replace("\r", " ").replace("\n", " "),
        status=run.status,
        dns_ms=run.times.get("dns"),
        connect_ms=run.times.get("connect"),
        tls_ms=run.times.get("tls"),
        ttfb_ms=run.times.get("ttfb"),
        total_ms=_ms(started),
        cert_days=run.cert_days,
        tls_version=run.tls_version,
        redirects=run.redirects if check.url else None,
        body_bytes=run.body_bytes,
    )


async def _probe(check: ServiceCheck, context: ssl.SSLContext, run: _Run) -> None:
    if check.target is not None:
        host, port = check.target.rsplit(":", 1)
        _reader, writer = await _connect(
            check, host, int(port), context if check.tls else None, run
        )
        writer.close()
        return
    url = check.url or ""
    for hop in range(check.max_redirects + 1):
        answer = await _fetch(check, url, context, run)
        location = answer.headers.get("location")
        if answer.status in _REDIRECTS and location is not None:
            if hop == check.max_redirects:
                raise _StepFailedError(
                    ServiceStage.REDIRECT, f"more than {check.max_redirects} redirects"
                )
            url = urljoin(url, location)
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
                raise _StepFailedError(ServiceStage.REDIRECT, f"bad Location {location[:60]!r}")
            run.redirects += 1
            continue
        _judge(check, answer)
        return


async def _fetch(check: ServiceCheck, url: str, context: ssl.SSLContext, run: _Run) -> HttpAnswer:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if secure else 80)
    except ValueError as exc:
        raise _StepFailedError(ServiceStage.REDIRECT, f"bad port in {url[:60]!r}") from exc
    reader, writer = await _connect(check, host, port, context if secure else None, run)
    try:
        run.stage = ServiceStage.HTTP
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        sent = time.perf_counter()
        writer.write(request_bytes(check.method.value, target, host_header))
        await writer.drain()
        try:
            status, headers = await read_head(reader)
            run.times["ttfb"] = _ms(sent)
            run.status = status
            if check.method.value == "HEAD" or status in (204, 304) or status in _REDIRECTS:
                body, truncated = b"", False
            else:
                body, truncated = await read_body(reader, headers, check.max_body_bytes)
        except (HttpError, ConnectionError, ssl.SSLError) as exc:
            raise _StepFailedError(ServiceStage.HTTP, str(exc) or type(exc).__name__) from exc
        run.body_bytes = len(body)
        return HttpAnswer(status, headers, body, truncated)
    finally:
        writer.close()


async def _connect(
    check: ServiceCheck, host: str, port: int, context: ssl.SSLContext | None, run: _Run
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Resolve (``dns_name`` for the first hop), connect, and shake hands if ``context``."""
    name = check.dns_name if check.dns_name and run.redirects == 0 else host
    run.stage = ServiceStage.DNS
    t = time.perf_counter()
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _StepFailedError(ServiceStage.DNS, f"{name}: {exc}") from exc
    run.times["dns"] = _ms(t)
    address: Any = infos[0][4][0]
    run.stage = ServiceStage.TCP
    t = time.perf_counter()
    try:
        if run.proxy is not None:
            reader, writer = await open_tunnel(run.proxy, address, port)
        else:
            reader, writer = await asyncio.open_connection(address, port, limit=MAX_LINE_BYTES)
    except ProxyError as exc:
        raise _StepFailedError(ServiceStage.TCP, f"{address}:{port}: {exc}") from exc
    except OSError as exc:
        raise _StepFailedError(
            ServiceStage.TCP, f"{address}:{port}: {exc.strerror or exc}"
        ) from exc
    run.times["connect"] = _ms(t)
    if context is None:
        return reader, writer
    run.stage = ServiceStage.TLS
    t = time.perf_counter()
    try:
        await writer.start_tls(context, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        writer.close()
        raise _StepFailedError(ServiceStage.TLS, f"certificate: {exc.verify_message}") from exc
    except (ssl.SSLError, OSError) as exc:
        writer.close()
        raise _StepFailedError(ServiceStage.TLS, f"handshake: {exc}") from exc
    run.times["tls"] = _ms(t)
    tls = writer.get_extra_info("ssl_object")
    if isinstance(tls, ssl.SSLObject):
        run.tls_version = tls.version()
        not_after = (tls.getpeercert() or {}).get("notAfter")  # verified: the dict is there
        if isinstance(not_after, str):
            expires = ssl.cert_time_to_seconds(not_after)
            run.cert_days = round((expires - time.time()) / 86400, 3)
    return reader, writer


def _judge(check: ServiceCheck, answer: HttpAnswer) -> None:
    if answer.status not in check.expect_status:
        raise _StepFailedError(
            ServiceStage.STATUS, f"status {answer.status}, expected {check.expect_status}"
        )
    more = " (in the first bytes read)" if answer.truncated else ""
    if check.keyword is not None:
        text = answer.body.decode("utf-8", errors="replace")
        if check.keyword not in text:
            raise _StepFailedError(ServiceStage.KEYWORD, f"body lacks {check.keyword!r}{more}")
    if check.json_path is not None:
        _json_check(check, answer.body, more)


def _json_check(check: ServiceCheck, body: bytes, more: str) -> None:
    try:
        node: Any = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _StepFailedError(ServiceStage.JSON, f"body is not JSON{more}") from exc
    for key in (check.json_path or "").split("."):
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise _StepFailedError(ServiceStage.JSON, f"no {check.json_path} in the body")
    if check.json_value is not None:
        got = node if isinstance(node, str) else json.dumps(node)
        if got != check.json_value:
            raise _StepFailedError(
                ServiceStage.JSON, f"{check.json_path} is {got[:40]!r}, not {check.json_value!r}"
            )
