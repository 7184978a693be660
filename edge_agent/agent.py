"""The edge agent service: probe → queue on disk → publish, with birth and Last Will."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from edge_agent.clock import EdgeClock, HoldingQueue, keep_time
from edge_agent.commands.runner import CommandRunner
from edge_agent.config import AgentConfig
from edge_agent.connseq import ConnectionSeq
from edge_agent.probes.camera import CameraProbe, probe_camera
from edge_agent.probes.snapshot import make_http_client
from edge_agent.publisher import Publisher
from edge_agent.queue_guard import GuardedQueue
from edge_agent.rejects import EdgeRejects
from edge_agent.roundtrips import ClockProbe
from edge_agent.sensors.base import SensorValue
from edge_agent.sensors.drivers import build_drivers
from edge_agent.sensors.errors import SensorError
from edge_agent.services.catalogue import CatalogueKeeper
from edge_agent.services.scheduler import ServiceScheduler, route
from edge_agent.wire import PeerContract, encode_batch, encode_status
from pantau.core.contract import (
    AgentReading,
    SensorReading,
    SiteStatus,
    StreamFault,
    TopicKind,
    agent_client_id,
    site_command_filter,
    site_topic,
)
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink, NotConnectedError, Will

if TYPE_CHECKING:
    from edge_agent.streams import StreamScheduler

log = logging.getLogger(__name__)

OFFLINE_PUBLISH_TIMEOUT_S = 2.0  # on shutdown, how long to try telling the cloud we leave


class Agent:
    """One site's agent; ``run()`` until cancelled."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self._session = time.time_ns()
        # Stamps: the boot clock corrected by receipts (edge_agent/clock.py).
        self._clock = EdgeClock(follow_system=not config.publish.receipts)
        # Per camera: (up, since). Kept in memory, so after an agent restart "since" restarts at
        # the first probe; the data before it still shows the earlier state.
        self._states: dict[str, tuple[bool, int]] = {}
        # Per camera: the latest stream probe's verdict, carried on every cheap probe.
        self.pictures: dict[str, StreamFault] = {}
        self._address = BrokerAddress.parse(config.broker.url)
        self._drivers = build_drivers(config, self._address)
        self._switches: Any = None  # SwitchPoller: pysnmp loads only where a switch is
        if config.switches:
            from edge_agent.switch.poller import SwitchPoller  # noqa: PLC0415

            self._switches = SwitchPoller(config)
        key = config.commands.public_key if config.commands else None
        self.services = CatalogueKeeper.for_agent(config.site.id, key, config.queue.path)
        self._births: set[asyncio.Future[None]] = set()
        self._publisher: Publisher | None = None  # set by run()
        # The contract minor the collectors speak, kept beside the queue across restarts.
        self.peer = PeerContract(config.queue.path.with_suffix(".contract.json"))
        # One number per connect attempt, in its birth and its will (edge_agent/connseq.py).
        self._seq = ConnectionSeq(config.queue.path.with_suffix(".connseq"))
        self._conn_seq: int | None = None  # the current connection's number, if its will has it
        b = config.broker
        self._link = MqttLink(
            LinkSettings(
                address=self._address,
                client_id=agent_client_id(config.site.id),
                username=b.username,
                password=b.password,
                keepalive_s=b.keepalive_s,
                clean_start=True,
                ca_file=str(b.ca_file) if b.ca_file else None,
                cert_file=str(b.cert_file) if b.cert_file else None,
                key_file=str(b.key_file) if b.key_file else None,
                max_inflight_out=config.publish.max_inflight + 2,
                reconnect_max_s=b.reconnect_max_s,
            ),
            on_connected=self._publish_birth,
            next_will=self._next_will,
        )

    @property
    def link(self) -> MqttLink:
        """The agent's broker connection (state for health checks and tests)."""
        return self._link

    def _status(self, *, online: bool, ts: int | None) -> SiteStatus:
        s = self.config.site
        return SiteStatus(
            site=s.id,
            district=s.district,
            online=online,
            ts=ts,
            lat=s.lat,
            lon=s.lon,
            session=self._session,
            probe_interval_s=self.config.probe.interval_s,
            seq=self._conn_seq,
        )

    def _next_will(self) -> Will:
        """Before each connect attempt (network thread): the next connection number, and the
        will that names it. A collector of contract minor 0 refuses the number: then neither
        the will nor the births of that connection carry one (the cloud relies on that)."""
        seq = self._seq.next()
        self._conn_seq = seq if self.peer.minor >= 1 else None
        return Will(
            topic=site_topic(self.config.site.id, TopicKind.STATUS),
            payload=encode_status(self._status(online=False, ts=None), self.peer.minor),
        )

    def _publish_birth(self) -> None:
        """Called after each CONNACK: mark the site online (retained)."""
        payload = encode_status(self._status(online=True, ts=time.time_ns()), self.peer.minor)
        try:
            future = self._link.publish_nowait(
                site_topic(self.config.site.id, TopicKind.STATUS), payload, qos=1, retain=True
            )
        except NotConnectedError:
            return
        self._births.add(future)
        future.add_done_callback(self._births.discard)

    async def _refresh_birth(self) -> None:
        """Publish the birth again every ``birth_refresh_s`` while connected (same session)."""
        while True:
            await asyncio.sleep(self.config.publish.birth_refresh_s)
            if self._link.connected.is_set():
                self._publish_birth()

    async def run(self) -> None:
        """Probe, queue and publish until cancelled; on the way out, publish offline."""
        c = self.config
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"queue-{c.site.id}")
        queue = GuardedQueue(
            c.queue.path,
            max_readings=c.queue.max_readings,
            max_age_s=c.queue.max_age_s,
            ledger=c.ledger,
        )
        publisher = self._publisher = Publisher(
            link=self._link,
            queue=queue,
            executor=executor,
            site=c.site.id,
            district=c.site.district,
            config=c.publish,
            peer=self.peer,
            rejects=EdgeRejects(c.queue.path.with_suffix(".rejected.sqlite")),
            on_contract=self._publish_birth,
            now_ns=self._clock.boot_ns,
        )
        gate = HoldingQueue(queue, boot=self._clock.boot_id, holding=c.publish.receipts)
        # Rows an earlier start held and never released (it died first): the box's own time.
        gate.release_earlier(now_ns=self._clock.now_ns())
        http = make_http_client()
        streams = self._stream_probes(gate, executor, publisher) if c.stream.enabled else None
        if c.publish.receipts:  # commands come in on the same loop as receipts
            await self._link.subscribe([publisher.receipts_filter, site_command_filter(c.site.id)])
            runner = CommandRunner(
                c,
                clock=self._clock,
                switches=self._switches.switches if self._switches else {},
                http=http,
                queue=gate,
                executor=executor,
                notify=publisher.notify,
                views=streams,
            )
            services = ServiceScheduler(
                c.services, self.services, clock=self._clock, queue=gate, executor=executor,
                notify=publisher.notify,
            )  # fmt: skip
            publisher.on_command = route(services, runner.on_message)
        await self._link.start()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(
                    self._probe_loop(queue, gate, executor, publisher, http),
                    name=f"probe-{c.site.id}",
                )
                if gate.holding:
                    probe = ClockProbe(
                        self._link,
                        publisher.round_trips,
                        topic=site_topic(c.site.id, TopicKind.READINGS),
                        encode=lambda msg: encode_batch(
                            c.site.id, c.site.district, [], msg=msg, minor=self.peer.minor
                        ),
                    )
                    clock = keep_time(
                        self._clock,
                        gate,
                        publisher.round_trips,
                        probe,
                        executor,
                        on_settled=self._on_clock_settled,
                        hold_max_s=c.publish.clock_hold_s,
                    )
                    tasks.create_task(clock, name=f"clock-{c.site.id}")
                tasks.create_task(publisher.run(), name=f"publish-{c.site.id}")
                if c.publish.receipts:
                    tasks.create_task(runner.run(), name=f"commands-{c.site.id}")
                    tasks.create_task(services.run(), name=f"services-{c.site.id}")
                tasks.create_task(self._refresh_birth(), name=f"birth-{c.site.id}")
                if streams is not None:
                    tasks.create_task(streams.run(), name=f"streams-{c.site.id}")
                if c.recorders or any(cam.onvif for cam in c.cameras):
                    # onvif-zeep-async (zeep, lxml, aiohttp) loads only where devices are asked.
                    from edge_agent.devices.scheduler import DeviceScheduler  # noqa: PLC0415

                    devices = DeviceScheduler.for_site(
                        c, clock=self._clock, queue=gate, executor=executor, publisher=publisher
                    )
                    tasks.create_task(devices.run(), name=f"devices-{c.site.id}")
                tasks.create_task(self._link.raise_on_failure(), name=f"link-fatal-{c.site.id}")
        finally:
            if gate.holding:  # stopped before any receipt: they keep the box's own time
                await asyncio.get_running_loop().run_in_executor(
                    executor, functools.partial(gate.release, 0, now_ns=self._clock.now_ns())
                )
            await self._flush(publisher)
            await self._say_offline()
            await self._link.close()
            await publisher.drain_deletes()
            await http.aclose()
            self._close_drivers()
            if self._switches is not None:
                self._switches.close()
            await asyncio.get_running_loop().run_in_executor(executor, queue.close)
            executor.shutdown(wait=True)

    def _close_drivers(self) -> None:
        for driver in self._drivers:
            try:
                driver.close()
            except Exception:  # one driver's failure to close must not keep the others open
                log.exception("closing sensor driver %s failed", type(driver).__name__)

    async def _flush(self, publisher: Publisher) -> None:
        """On the way out, send what is queued (bounded: the uplink may be down)."""
        flush_s = self.config.publish.shutdown_flush_s
        if not self._link.connected.is_set() or flush_s <= 0 or len(publisher.queue) == 0:
            return
        try:
            async with asyncio.timeout(flush_s):
                await publisher.flush()
        except TimeoutError:
            log.warning(
                "left %d readings queued on disk; they go out on the next start",
                len(publisher.queue),
            )

    async def _say_offline(self) -> None:
        if not self._link.connected.is_set():
            return
        payload = encode_status(self._status(online=False, ts=time.time_ns()), self.peer.minor)
        try:
            async with asyncio.timeout(OFFLINE_PUBLISH_TIMEOUT_S):
                await self._link.publish(
                    site_topic(self.config.site.id, TopicKind.STATUS), payload, qos=1, retain=True
                )
        except (TimeoutError, NotConnectedError):
            log.warning("could not publish offline status before leaving")

    def _stream_probes(
        self, gate: HoldingQueue, executor: ThreadPoolExecutor, publisher: Publisher
    ) -> StreamScheduler:
        # PyAV and NumPy (~60 MB) load only where streams are probed.
        from edge_agent.streams import StreamScheduler  # noqa: PLC0415

        return StreamScheduler(
            self.config, clock=self._clock, pictures=self.pictures, queue=gate,
            executor=executor, publisher=publisher,
        )  # fmt: skip

    async def _probe_loop(
        self,
        queue: GuardedQueue,
        gate: HoldingQueue,
        executor: ThreadPoolExecutor,
        publisher: Publisher,
        http: Any,
    ) -> None:
        interval = self.config.probe.interval_s
        loop = asyncio.get_running_loop()
        next_at = time.monotonic()
        while True:
            items = await self.collect_once(queue, executor, http)
            # Stamped and submitted in one synchronous step (edge_agent/clock.py, thread rule).
            append = functools.partial(gate.append, items, now_ns=self._clock.now_ns())
            dropped = await loop.run_in_executor(executor, append)
            if dropped:
                log.warning(
                    "queue full: dropped the %d oldest readings (reported as a gap)", dropped
                )
            publisher.notify()
            next_at += interval
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (slow probes or a suspended host): do not burst
                next_at = time.monotonic()
                delay = 0
            await asyncio.sleep(delay)

    def _on_clock_settled(self, shift_ns: int) -> None:
        """The clock was settled: cameras' "since", stamped before, moves with their readings."""
        self._states = {cam: (up, since + shift_ns) for cam, (up, since) in self._states.items()}

    async def collect_once(
        self, queue: GuardedQueue, executor: ThreadPoolExecutor, http: Any
    ) -> list[tuple[str, int, bytes]]:
        """Probe every camera and read every sensor once; return queue items, stamped after
        the last await (the caller submits them in the same step)."""
        c = self.config
        started_ns = self._clock.boot_ns()
        semaphore = asyncio.Semaphore(c.probe.concurrency)

        async def one(camera: Any) -> CameraProbe:
            async with semaphore:
                return await probe_camera(camera, http, timeout_s=c.probe.timeout_s)

        probes = await asyncio.gather(*(one(cam) for cam in c.cameras))
        values = await self._read_sensors(self._clock.now_ns())
        ports = await self._switches.read() if self._switches is not None else []
        stats = await asyncio.get_running_loop().run_in_executor(executor, queue.stats)
        items = [self._camera_item(probe, started_ns) for probe in probes]
        if ports:
            items += self._switches.items(ports, self._clock.stamp, started_ns)
        for value in values:
            ts = self._clock.stamp(("sensor", value.sensor, value.kind), started_ns)
            sensor = SensorReading(sensor=value.sensor, kind=value.kind, ts=ts, value=value.value)
            items.append(("sensors", ts, sensor.model_dump_json().encode()))
        fault = queue.take_fault()
        ts = self._clock.stamp(("agent",), started_ns)
        oldest_age = max(0.0, (ts - stats.oldest_ts) / 1e9) if stats.oldest_ts else 0.0
        offset, correction = self._clock.error_ms(), self._clock.correction_ms()
        agent = AgentReading(
            ts=ts,
            backlog=stats.backlog,
            dropped_total=stats.dropped_total,
            oldest_age_s=round(oldest_age, 3),
            queue_error=fault.replace("\n", " ")[:200] if fault else None,
            clock_offset_ms=None if offset is None else round(offset, 3),
            clock_correction_ms=None if correction is None else round(correction, 3),
            rejected_total=self._publisher.rejected_total if self._publisher else None,
            services_version=self.services.version,
        )
        items.append(("agent", ts, agent.model_dump_json().encode()))
        return items

    def _camera_item(self, result: CameraProbe, started_ns: int) -> tuple[str, int, bytes]:
        probe = result.reading
        ts = self._clock.stamp(("camera", probe.camera), started_ns)
        previous = self._states.get(probe.camera)
        since = previous[1] if previous and previous[0] == probe.up else ts
        if previous and not previous[0] and probe.up:
            # Back up: the picture verdict from before (often open_failed) no longer holds;
            # it is unknown until the next stream probe.
            self.pictures.pop(probe.camera, None)
        self._states[probe.camera] = (probe.up, since)
        update = {"ts": ts, "since": since, "picture": self.pictures.get(probe.camera)}
        reading = probe.model_copy(update=update)
        return "cameras", ts, reading.model_dump_json(exclude_none=True).encode()

    async def _read_sensors(self, now_ns: int) -> list[SensorValue]:
        values: list[SensorValue] = []
        for driver in self._drivers:
            try:
                values.extend(await driver.read(now_ns / 1e9))
            except SensorError as exc:  # field trouble: say what, no trace
                log.warning("%s", exc)
            except Exception:  # one broken driver must not stop probing the cameras
                log.exception("sensor driver %s failed", type(driver).__name__)
        return values
