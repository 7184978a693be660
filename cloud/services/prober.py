"""The cloud's own vantage point: probes every service of the catalogue (the probe code is the
agents', passed in by ``pantau services probe``) and writes ``service`` points tagged
``site=cloud`` straight to InfluxDB."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from cloud.influx import InfluxError
from cloud.lineproto import join_lines, service_line
from cloud.problems.service_checks import CLOUD
from cloud.services.catalogue import load_catalogue
from pantau.core.configfile import ConfigError
from pantau.core.readings import ServiceReading
from pantau.core.services import ServiceCheck

log = logging.getLogger(__name__)

Probe = Callable[[ServiceCheck], Awaitable[ServiceReading]]
"""One probe of one service (``edge_agent.services.probe.probe_service`` with a TLS context)."""


class PointWriter(Protocol):
    """Where points go (``cloud.influx.InfluxClient``)."""

    async def write(self, body: bytes, *, rp: str | None = None) -> None: ...


async def probe_once(catalogue_path: Path, probe: Probe, sink: PointWriter) -> int:
    """Probe every service once from the cloud; return how many points were written."""
    catalogue = load_catalogue(catalogue_path)
    readings = await asyncio.gather(*(probe(check) for check in catalogue.services))
    now = time.time_ns()
    lines = [
        service_line(r.model_copy(update={"ts": now + i}), CLOUD, CLOUD)
        for i, r in enumerate(readings)
    ]
    if lines:
        await sink.write(join_lines(lines))
    return len(lines)


async def run_prober(
    catalogue_path: Path, probe: Probe, sink: PointWriter, *, interval_s: float, stop: asyncio.Event
) -> None:
    """Probe every ``interval_s`` until ``stop``; a failed round is logged, not fatal."""
    while not stop.is_set():
        try:
            written = await probe_once(catalogue_path, probe, sink)
            log.debug("cloud probe: %d services", written)
        except (InfluxError, ConfigError) as exc:  # may be back (or fixed) next round
            log.warning("cloud service probe round not stored: %s", exc)
        except Exception:  # one odd round must not end the prober
            log.exception("cloud service probe round failed")
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except TimeoutError:
            continue
