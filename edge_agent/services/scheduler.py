"""Probes the running catalogue's services every ``services.interval_s`` and queues one
``services`` reading per service, stamped by the agent's clock."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from edge_agent.queue_rows import ItemSink as Sink
from edge_agent.queue_rows import StampClock as Clock
from edge_agent.services.catalogue import CatalogueKeeper
from edge_agent.services.probe import probe_service, tls_context
from edge_agent.services.proxy import Proxy
from edge_agent.services.settings import ServiceProbeSettings
from pantau.core.mqtt_types import Message
from pantau.core.readings import ServiceReading
from pantau.core.services import ServiceCheck

log = logging.getLogger(__name__)


class ServiceScheduler:
    """Runs the catalogue's probes; ``on_message`` takes new catalogues from the link."""

    def __init__(
        self,
        settings: ServiceProbeSettings,
        keeper: CatalogueKeeper,
        *,
        clock: Clock,
        queue: Sink,
        executor: ThreadPoolExecutor,
        notify: Callable[[], None],
    ) -> None:
        self._settings = settings
        self.keeper = keeper
        self._context = tls_context(settings.ca_file)
        self._proxy = Proxy.parse(settings.proxy) if settings.proxy else None
        self._clock = clock
        self._queue = queue
        self._executor = executor
        self._notify = notify
        self._changed = asyncio.Event()
        self.cycles = 0  # probe cycles done (tests wait on it)

    def on_message(self, message: Message) -> None:
        """A message on ``command/services``: a new catalogue is probed at once."""
        if self.keeper.take(message.payload) is not None:
            self._changed.set()

    async def run(self) -> None:
        """Probe every ``interval_s`` (at once after a new catalogue) until cancelled."""
        while True:
            catalogue = self.keeper.current
            if catalogue is not None and catalogue.services and self._settings.enabled:
                await self._cycle(catalogue.services)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._settings.interval_s)

    async def _cycle(self, services: list[ServiceCheck]) -> None:
        started_ns = self._clock.boot_ns()
        gate = asyncio.Semaphore(self._settings.concurrency)

        async def one(check: ServiceCheck) -> ServiceReading | None:
            async with gate:
                try:
                    return await probe_service(check, self._context, proxy=self._proxy)
                except Exception:  # one service's oddity must not stop the others' probes
                    log.exception("probe of service %s failed", check.name)
                    return None

        t = time.perf_counter()
        results = await asyncio.gather(*(one(check) for check in services))
        items: list[tuple[str, int, bytes]] = []
        for result in results:
            if result is None:
                continue
            ts = self._clock.stamp(("service", result.service), started_ns)
            body = result.model_copy(update={"ts": ts}).model_dump_json(exclude_none=True)
            items.append(("services", ts, body.encode()))
        await asyncio.get_running_loop().run_in_executor(
            self._executor,
            functools.partial(self._queue.append, items, now_ns=self._clock.now_ns()),
        )
        self._notify()
        self.cycles += 1
        log.debug("probed %d services in %.1f s", len(items), time.perf_counter() - t)


def route(
    services: ServiceScheduler, commands: Callable[[Message], None]
) -> Callable[[Message], None]:
    """The command topic's dispatch: the catalogue to ``services``, the rest to ``commands``."""

    def dispatch(message: Message) -> None:
        if message.topic.endswith("/command/services"):
            services.on_message(message)
        else:
            commands(message)

    return dispatch
