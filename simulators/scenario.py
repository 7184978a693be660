"""Scenario files: simulated sites and a deterministic schedule of faults (docs/scenarios.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pantau.core.configfile import load_yaml_model
from pantau.core.contract import Ident
from pantau.core.units import Seconds
from simulators.cabinet import UpsState
from simulators.cameras import CameraMode
from simulators.video import Picture


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SimSite(_Model):
    """A simulated site: its cameras are named c1..cN."""

    id: Ident = Field(description="site id")
    district: Ident = Field(description="district id")
    lat: float = Field(ge=-90, le=90, description="latitude")
    lon: float = Field(ge=-180, le=180, description="longitude")
    cameras: int = Field(default=4, ge=0, le=1024, description="number of fake cameras")
    ups: bool = Field(default=False, description="a UPS on SNMP (net-snmp snmpd) in the cabinet")
    recorder: bool = Field(
        default=False, description="a Hikvision NVR simulator records every camera (ISAPI)"
    )
    onvif: bool = Field(default=False, description="every camera answers ONVIF (identity, clock)")
    switch: bool = Field(
        default=False,
        description="a PoE switch on SNMP (net-snmp snmpd) powers the cameras, cN on port N",
    )

    def camera_ids(self) -> list[str]:
        """``c1`` .. ``cN``."""
        return [f"c{i}" for i in range(1, self.cameras + 1)]


class CameraEvent(_Model):
    """Switch a camera's behaviour or picture at ``at`` for ``for`` seconds (then back)."""

    at: Seconds = Field(ge=0, description="seconds from the start")
    camera: str = Field(pattern=r"^[^/]+/[^/]+$", description="site/camera, e.g. s1/c2")
    state: CameraMode | None = Field(default=None, description="down, hung, slow, auth_fail or up")
    picture: Picture | None = Field(
        default=None, description="moving, frozen, black, blurred or stopped"
    )
    duration: Seconds | None = Field(default=None, alias="for", gt=0, description="how long")

    @model_validator(mode="after")
    def _one_change(self) -> CameraEvent:
        if (self.state is None) == (self.picture is None):
            raise ValueError(f"camera event for {self.camera}: give either state or picture")
        return self


class UplinkEvent(_Model):
    """Cut a site's uplink: its agent runs but cannot reach the broker."""

    at: Seconds = Field(ge=0)
    site: Ident
    uplink: Literal["down"]
    duration: Seconds = Field(alias="for", gt=0)


class PowerEvent(_Model):
    """Cut a site's power: the agent (killed, no goodbye) and its cameras are off."""

    at: Seconds = Field(ge=0)
    site: Ident
    power: Literal["down"]
    duration: Seconds = Field(alias="for", gt=0)


class UpsEvent(_Model):
    """Switch a site's UPS to battery (or battery low) for ``for`` seconds."""

    at: Seconds = Field(ge=0)
    site: Ident
    ups: UpsState = Field(description="on_battery or battery_low")
    duration: Seconds = Field(alias="for", gt=0)


class MalformedEvent(_Model):
    """Publish one malformed message on a site's readings topic."""

    at: Seconds = Field(ge=0)
    malformed: Ident = Field(description="site whose topic receives the bad message")


class EdgeFaultEvent(_Model):
    """Publish, on a site's topic, what an agent sends after edge faults: a gap with the disk
    queue error it had, and a batch stamped an hour ahead (as from a site whose clock is wrong,
    which the collector refuses and counts)."""

    at: Seconds = Field(ge=0)
    edge_faults: Ident = Field(description="site whose topic receives the fault reports")


class RecordingGapEvent(_Model):
    """The site's recorder keeps nothing of a camera for ``for`` seconds (needs ``recorder``)."""

    at: Seconds = Field(ge=0)
    record_gap: str = Field(pattern=r"^[^/]+/[^/]+$", description="site/camera")
    duration: Seconds = Field(alias="for", gt=0)

    @property
    def camera(self) -> str:
        """site/camera."""
        return self.record_gap


class CameraReplacedEvent(_Model):
    """A camera is swapped: its ONVIF service answers another serial from then on (needs
    ``onvif``)."""

    at: Seconds = Field(ge=0)
    replaced: str = Field(pattern=r"^[^/]+/[^/]+$", description="site/camera")
    serial: str = Field(min_length=1, max_length=64, description="the new camera's serial")

    @property
    def camera(self) -> str:
        """site/camera."""
        return self.replaced


class HangEvent(_Model):
    """A camera hangs: its port stays up and powered, its RTSP falls silent, until its port is
    power-cycled (needs ``switch``)."""

    at: Seconds = Field(ge=0)
    hang: str = Field(pattern=r"^[^/]+/[^/]+$", description="site/camera")

    @property
    def camera(self) -> str:
        """site/camera."""
        return self.hang


class TamperEvent(_Model):
    """A camera's ONVIF event service reports tampering for ``for`` seconds, then its end
    (needs ``onvif``)."""

    at: Seconds = Field(ge=0)
    tamper: str = Field(pattern=r"^[^/]+/[^/]+$", description="site/camera")
    duration: Seconds = Field(alias="for", gt=0)

    @property
    def camera(self) -> str:
        """site/camera."""
        return self.tamper


DeviceEvent = RecordingGapEvent | CameraReplacedEvent | HangEvent | TamperEvent
CAMERA_EVENTS = (CameraEvent, RecordingGapEvent, CameraReplacedEvent, HangEvent, TamperEvent)

Event = Annotated[
    CameraEvent
    | UplinkEvent
    | PowerEvent
    | UpsEvent
    | MalformedEvent
    | EdgeFaultEvent
    | RecordingGapEvent
    | CameraReplacedEvent
    | HangEvent
    | TamperEvent,
    Field(union_mode="left_to_right"),
]


class Scenario(_Model):
    """A seeded, deterministic simulation."""

    seed: int = Field(default=0, description="seeds the simulated sensors")
    probe_interval: Seconds = Field(default=5.0, ge=0.5, le=600, description="agents' period")
    probe_timeout: Seconds = Field(default=1.0, gt=0, le=30, description="per probe stage")
    keepalive: int = Field(default=5, ge=2, le=600, description="agents' MQTT keepalive, s")
    stream_interval: Seconds | None = Field(
        default=None, ge=1, description="stream probe period per camera (none: no stream probes)"
    )
    stream_sample: Seconds = Field(default=2.0, gt=0, le=30, description="video per probe")
    stream_concurrency: int = Field(default=1, ge=1, le=64, description="decodes at once per site")
    sites: list[SimSite] = Field(min_length=1)
    events: list[Event] = Field(default_factory=list)
    services: bool = Field(
        default=False,
        description="simulated e-government services probed from every site and the cloud; "
        "one of them fails (simulators/services.py)",
    )

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        sites = {s.id: s for s in self.sites}
        if len(sites) != len(self.sites):
            raise ValueError("site ids must be unique")
        for index, event in enumerate(self.events):
            site_id = (
                event.camera.split("/")[0]
                if isinstance(event, CAMERA_EVENTS)
                else event.malformed
                if isinstance(event, MalformedEvent)
                else event.edge_faults
                if isinstance(event, EdgeFaultEvent)
                else event.site
            )
            if site_id not in sites:
                raise ValueError(f"events.{index}: unknown site {site_id!r}")
            if isinstance(event, UpsEvent) and not sites[site_id].ups:
                raise ValueError(f"events.{index}: site {site_id} has no UPS (set ups: true)")
            needs = {
                RecordingGapEvent: "recorder",
                CameraReplacedEvent: "onvif",
                TamperEvent: "onvif",
                HangEvent: "switch",
            }.get(type(event))
            if needs and not getattr(sites[site_id], needs):
                raise ValueError(
                    f"events.{index}: site {site_id} has no {needs} (set {needs}: true)"
                )
            if isinstance(event, CAMERA_EVENTS):
                camera = event.camera.split("/")[1]
                if camera not in sites[site_id].camera_ids():
                    raise ValueError(f"events.{index}: site {site_id} has no camera {camera!r}")
        if self.probe_timeout * 3 > self.probe_interval * 2:
            raise ValueError("probe_timeout is too long for probe_interval")
        return self


def load_scenario(path: Path) -> Scenario:
    """Load and validate a scenario file (``ConfigError`` names the bad key)."""
    return load_yaml_model(path, Scenario)


def demo_scenario(sites: int, cameras: int, duration_s: float, *, seed: int = 7) -> Scenario:
    """The built-in demo: not all green, so every dashboard panel has something to show.

    A camera goes down, one hangs, one rejects credentials, one shows a frozen picture and one a
    blurred (covered) one, s1's UPS goes on battery, one site loses its uplink (store and
    forward), the last site loses power (offline via Last Will, then back), one malformed
    message is sent, and s1's topic gets edge fault reports (a gap, a disk-queue error, a batch
    from a clock an hour ahead). s1's cameras are recorded by a Hikvision NVR simulator and answer
    ONVIF: its recorder keeps nothing of the down camera for a while, s1/c1 is replaced and
    later reports tampering for a while (ONVIF events).
    s1's cameras are powered by a PoE switch: the down camera's port goes down ("down: link"),
    and the hung camera (port up, RTSP silent) is healed by the automatic policy's power-cycle.
    """
    sim_sites = [
        SimSite(
            id=f"s{i}",
            district=f"d{(i - 1) // 2 + 1}",
            lat=-3.80 - 0.15 * (i - 1),
            lon=102.26 + 0.2 * (i - 1),
            cameras=cameras,
            ups=i == 1,
            recorder=i == 1,
            onvif=i == 1,
            switch=i == 1,
        )
        for i in range(1, sites + 1)
    ]
    d = duration_s
    events: list[Event] = [
        MalformedEvent(at=0.1 * d, malformed="s1"),
        EdgeFaultEvent(at=0.1 * d, edge_faults="s1"),
    ]
    if cameras >= 2:
        events.append(CameraEvent(at=0.15 * d, camera="s1/c2", state=CameraMode.DOWN))
    if cameras >= 3:  # early, so the policy's power-cycle and the recovery fit in the run
        events.append(HangEvent(at=0.05 * d, hang="s1/c3"))
    if cameras >= 4:
        events.append(
            CameraEvent.model_validate(
                {"at": 0.2 * d, "camera": "s1/c4", "state": "auth_fail", "for": 0.4 * d}
            )
        )
    if sites >= 2:
        events.append(
            UplinkEvent.model_validate(
                {"at": 0.3 * d, "site": "s2", "uplink": "down", "for": 0.25 * d}
            )
        )
    if sites >= 3 or sites == 1:
        last = sim_sites[-1].id
        events.append(
            PowerEvent.model_validate(
                {"at": 0.45 * d, "site": last, "power": "down", "for": 0.25 * d}
            )
        )
    events.append(
        UpsEvent.model_validate({"at": 0.1 * d, "site": "s1", "ups": "on_battery", "for": d})
    )
    if cameras >= 2:  # s1/c2 is down: its recorder keeps nothing; s1/c1 is swapped
        events.append(
            RecordingGapEvent.model_validate(
                {"at": 0.15 * d, "record_gap": "s1/c2", "for": 0.5 * d}
            )
        )
        events.append(
            CameraReplacedEvent.model_validate(
                {"at": 0.3 * d, "replaced": "s1/c1", "serial": "SC200-REPLACED"}
            )
        )
    events.append(TamperEvent.model_validate({"at": 0.6 * d, "tamper": "s1/c1", "for": 0.2 * d}))
    if sites >= 2 and cameras >= 3:
        # Picture faults, found by the stream probes (c2 and c3 come early in their schedule).
        events.append(CameraEvent(at=0.05 * d, camera="s2/c2", picture=Picture.FROZEN))
        events.append(CameraEvent(at=0.05 * d, camera="s2/c3", picture=Picture.BLURRED))
    return Scenario(
        seed=seed,
        probe_interval=5.0,
        probe_timeout=1.0,
        keepalive=5,
        stream_interval=30.0,
        stream_sample=1.5,
        sites=sim_sites,
        events=events,
        services=True,
    )
