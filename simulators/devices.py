"""A simulation whose sites also have recorders, ONVIF cameras and PoE switches: per site with
``recorder``, a Hikvision NVR simulator recording every camera; per camera of a site with
``onvif``, an ONVIF device service; per site with ``switch``, a PoE switch behind snmpd whose
port N powers camera cN. The agents' configs get the matching ``recorders``, ``cameras[].onvif``,
``devices``, ``switches``, ``cameras[].switch`` and ``commands`` sections, and the scenario's
recording gaps, camera replacements and hangs act on them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from simulators.cameras import CameraMode
from simulators.hikvision_sim import HikvisionSimulator, NvrState, Span
from simulators.onvif_events_sim import CameraEvents
from simulators.onvif_sim import OnvifDevice, OnvifSimulator
from simulators.runner import Simulation, SimulationOptions, SiteRuntime
from simulators.scenario import (
    CameraEvent,
    CameraReplacedEvent,
    Event,
    HangEvent,
    RecordingGapEvent,
    Scenario,
    SimSite,
    TamperEvent,
)
from simulators.switch import POWER_OID, WATCH_S, FakeSwitch

# The recorder has kept this much of every camera, and recording runs on past the run's end.
KEPT = dt.timedelta(days=3)
AHEAD = dt.timedelta(days=1)
# Each camera's retention goal; the site's last camera asks for more than the recorder keeps,
# so "retention below goal" has something to show.
GOAL_DAYS, LAST_GOAL_DAYS = 2.0, 7.0
# Simulations last minutes: devices are asked every few seconds about the last ten minutes.
DEVICE_INTERVAL_S, DEVICE_TIMEOUT_S, RECORD_WINDOW_S = 5.0, 3.0, 600
# A power-cycle keeps PoE off this long, then the agent probes the camera this often (a real
# camera boots in a minute; the fake one answers at once, and a demo lasts a minute).
POWER_OFF_S, RECOVERY_PROBE_S, RECOVERY_TIMEOUT_S = 1.0, 0.5, 30.0
SWITCH_ID, SWITCH_TIMEOUT_S = "sw1", 0.5


def channel(site: SimSite, camera: str) -> int:
    """A camera's channel on its site's recorder: c1 is 1."""
    return site.camera_ids().index(camera) + 1


def cut(spans: list[Span], start: dt.datetime, end: dt.datetime) -> list[Span]:
    """``spans`` without ``[start, end]``."""
    kept: list[Span] = []
    for s, e in spans:
        if e <= start or s >= end:
            kept.append((s, e))
            continue
        if s < start:
            kept.append((s, start))
        if e > end:
            kept.append((end, e))
    return kept


class DeviceSimulation(Simulation):
    """``Simulation`` plus the sites' recorders and ONVIF device services."""

    def __init__(
        self, scenario: Scenario, options: SimulationOptions, *, command_key: str | None = None
    ) -> None:
        """``command_key``: the command center's public key the agents of switch sites take
        signed commands with (None: they take none)."""
        super().__init__(scenario, options)
        self.command_key = command_key
        self.nvrs: dict[str, HikvisionSimulator] = {}
        self.onvif: dict[str, dict[str, OnvifSimulator]] = {}
        self.switches: dict[str, FakeSwitch] = {}
        self._watchers: list[asyncio.Task[None]] = []
        self.services_ca: Path | None = None  # set when simulated services run (their CA)

    async def start(self) -> None:
        """Start the devices, then cameras, collectors and agents (``stop`` ends them all)."""
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        for site in self.scenario.sites:
            if site.recorder:
                nvr = HikvisionSimulator(NvrState())
                await nvr.__aenter__()
                self.nvrs[site.id] = nvr
                for camera in site.camera_ids():
                    nvr.state.record(channel(site, camera) * 100 + 1, now - KEPT, now + AHEAD)
            if site.onvif:
                self.onvif[site.id] = {}
                for camera in site.camera_ids():
                    device = OnvifDevice(serial=f"SC200-{site.id}-{camera}", events=CameraEvents())
                    self.onvif[site.id][camera] = await OnvifSimulator(device).start()
            if site.switch:
                switch = FakeSwitch(self.options.workdir / "switches" / site.id, site.cameras)
                await asyncio.to_thread(switch.start)
                self.switches[site.id] = switch
        await super().start()
        for site_id, switch in self.switches.items():
            self._watchers.append(
                asyncio.create_task(
                    power_by_port(switch, self.sites[site_id]), name=f"poe-{site_id}"
                )
            )

    async def stop(self) -> None:
        """Stop everything ``Simulation.stop`` stops, then the devices."""
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        try:
            await super().stop()
        finally:
            for switch in self.switches.values():
                await asyncio.to_thread(switch.stop)
            for nvr in self.nvrs.values():
                await nvr.__aexit__(None, None, None)
            for cameras in self.onvif.values():
                for service in cameras.values():
                    await service.stop()

    def agent_config(self, runtime: SiteRuntime, index: int) -> dict[str, object]:
        """The site's agent config with its recorder and ONVIF sections."""
        config = super().agent_config(runtime, index)
        if self.services_ca is not None:
            interval = max(5.0, 2 * self.scenario.probe_interval)
            config["services"] = {
                "interval_s": interval,
                "ca_file": str(self.services_ca),
                "proxy": runtime.uplink.proxy.url,  # an uplink cut cuts the services too
            }
        site = runtime.site
        services = self.onvif.get(site.id, {})
        cameras = config["cameras"]
        assert isinstance(cameras, list)
        for camera in cameras:
            if camera["id"] in services:
                camera["onvif"] = {
                    "host": "127.0.0.1",
                    "port": services[camera["id"]].port,
                }
        nvr = self.nvrs.get(site.id)
        if nvr is not None:
            ids = site.camera_ids()
            config["recorders"] = [
                {
                    "type": "hikvision",
                    "id": "nvr1",
                    "url": nvr.url,
                    "username": nvr.state.username,
                    "password": nvr.state.password,
                    "cameras": [
                        {
                            "camera": camera,
                            "channel": channel(site, camera),
                            "retention_goal_days": LAST_GOAL_DAYS
                            if camera == ids[-1]
                            else GOAL_DAYS,
                        }
                        for camera in ids
                    ],
                }
            ]
        switch = self.switches.get(site.id)
        if switch is not None:
            for port, camera in enumerate(cameras, start=1):
                camera["switch"] = {"switch": SWITCH_ID, "port": port}
            config["switches"] = [
                {
                    "id": SWITCH_ID,
                    "host": "127.0.0.1",
                    "port": switch.port,
                    "community": switch.community,
                    "write_community": switch.write_community,
                    "power_oid": POWER_OID,
                    "timeout_s": SWITCH_TIMEOUT_S,
                }
            ]
            if self.command_key is not None:
                config["commands"] = {
                    "public_key": self.command_key,
                    "power_off_s": POWER_OFF_S,
                    "recovery_probe_s": RECOVERY_PROBE_S,
                    "recovery_timeout_s": RECOVERY_TIMEOUT_S,
                }
        if services or nvr is not None:
            config["devices"] = {
                "interval_s": DEVICE_INTERVAL_S,
                "timeout_s": DEVICE_TIMEOUT_S,
                "window_s": RECORD_WINDOW_S,
            }
        return config

    async def apply(self, event: Event, phase: str) -> None:
        """Carry out a device event here, any other as ``Simulation`` does."""
        if isinstance(event, RecordingGapEvent):
            if phase == "start":  # the recorder's files for the gap never get written
                site_id, camera = event.camera.split("/")
                site = next(s for s in self.scenario.sites if s.id == site_id)
                tracks = self.nvrs[site_id].state.tracks
                track = channel(site, camera) * 100 + 1
                start = dt.datetime.now(dt.UTC)
                end = start + dt.timedelta(seconds=event.duration)
                tracks[track] = cut(tracks[track], start, end)
                self._note(f"recorder of {site_id}: no recording of {event.camera} for "
                           f"{event.duration:g} s")  # fmt: skip
        elif isinstance(event, CameraReplacedEvent):
            site_id, camera = event.camera.split("/")
            self.onvif[site_id][camera].device.serial = event.serial
            self._note(f"camera {event.camera} replaced (serial {event.serial})")
        elif isinstance(event, TamperEvent):
            site_id, camera = event.camera.split("/")
            events = self.onvif[site_id][camera].device.events
            assert events is not None
            events.set_tamper(phase == "start")
            self._note(f"camera {event.camera} tampered" if phase == "start"
                       else f"camera {event.camera} no longer tampered")  # fmt: skip
        elif isinstance(event, HangEvent):  # not the desired mode: a power-cycle ends it
            site_id, camera = event.camera.split("/")
            runtime = self.sites[site_id]
            if runtime.powered:
                await runtime.cameras[camera].set_mode(CameraMode.HUNG)
            self._note(f"camera {event.camera} hung (port up, RTSP silent)")
        else:
            await super().apply(event, phase)
            site_id, _, camera = getattr(event, "camera", "").partition("/")
            switch = self.switches.get(site_id)
            if isinstance(event, CameraEvent) and event.state is CameraMode.DOWN and switch:
                # A dead camera takes its port's link down: the cloud tells "down: link".
                linked = int(phase == "end")
                port = channel(self.sites[site_id].site, camera)
                await asyncio.to_thread(switch.set_port, port, link=linked, load=linked)


async def power_by_port(switch: FakeSwitch, runtime: SiteRuntime) -> None:
    """Until cancelled: a camera whose port's PoE is switched off goes down; switched on again,
    it boots into its scenario mode (a hang does not survive a power-cycle, wrong credentials
    do)."""
    ports = {channel(runtime.site, camera): camera for camera in runtime.cameras}
    unpowered: set[int] = set()
    while True:
        state = await asyncio.to_thread(switch.state)
        for port, camera in ports.items():
            off = state[str(port)]["admin"] != 1
            if off and port not in unpowered:
                unpowered.add(port)
                await runtime.cameras[camera].set_mode(CameraMode.DOWN)
            elif not off and port in unpowered:
                unpowered.discard(port)
                if runtime.powered:
                    await runtime.cameras[camera].set_mode(runtime.desired[camera])
        await asyncio.sleep(WATCH_S)
