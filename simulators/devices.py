"""A simulation whose sites also have recorders and ONVIF cameras: per site with ``recorder``, a
Hikvision NVR simulator recording every camera; per camera of a site with ``onvif``, an ONVIF
device service. The agents' configs get the matching ``recorders``, ``cameras[].onvif`` and
``devices`` sections, and the scenario's recording gaps and camera replacements act on them.
"""

from __future__ import annotations

import datetime as dt

from simulators.hikvision_sim import HikvisionSimulator, NvrState, Span
from simulators.onvif_sim import OnvifDevice, OnvifSimulator
from simulators.runner import Simulation, SimulationOptions, SiteRuntime
from simulators.scenario import (
    CameraReplacedEvent,
    Event,
    RecordingGapEvent,
    Scenario,
    SimSite,
)

# The recorder has kept this much of every camera, and recording runs on past the run's end.
KEPT = dt.timedelta(days=3)
AHEAD = dt.timedelta(days=1)
# Each camera's retention goal; the site's last camera asks for more than the recorder keeps,
# so "retention below goal" has something to show.
GOAL_DAYS, LAST_GOAL_DAYS = 2.0, 7.0
# Simulations last minutes: devices are asked every few seconds about the last ten minutes.
DEVICE_INTERVAL_S, DEVICE_TIMEOUT_S, RECORD_WINDOW_S = 5.0, 3.0, 600


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

    def __init__(self, scenario: Scenario, options: SimulationOptions) -> None:
        super().__init__(scenario, options)
        self.nvrs: dict[str, HikvisionSimulator] = {}
        self.onvif: dict[str, dict[str, OnvifSimulator]] = {}

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
                    device = OnvifDevice(serial=f"SC200-{site.id}-{camera}")
                    self.onvif[site.id][camera] = await OnvifSimulator(device).start()
        await super().start()

    async def stop(self) -> None:
        """Stop everything ``Simulation.stop`` stops, then the devices."""
        try:
            await super().stop()
        finally:
            for nvr in self.nvrs.values():
                await nvr.__aexit__(None, None, None)
            for cameras in self.onvif.values():
                for service in cameras.values():
                    await service.stop()

    def agent_config(self, runtime: SiteRuntime, index: int) -> dict[str, object]:
        """The site's agent config with its recorder and ONVIF sections."""
        config = super().agent_config(runtime, index)
        site = runtime.site
        services = self.onvif.get(site.id, {})
        cameras = config["cameras"]
        assert isinstance(cameras, list)
        for camera in cameras:
            if camera["id"] in services:
                camera["onvif"] = {
                    "host": "127.0.0.1",
                    "port": services[camera["id"]].port,
                    "events": False,  # the simulator has no PullPoint service
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
        else:
            await super().apply(event, phase)
