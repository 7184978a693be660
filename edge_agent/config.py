"""Edge agent configuration, one YAML file per site."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge_agent.devices.settings import DeviceChecksConfig, OnvifConfig, RecorderConfig
from edge_agent.services.settings import ServiceProbeSettings
from edge_agent.switch_settings import CommandsConfig, SwitchConfig, SwitchPortRef
from pantau.core.contract import Ident
from pantau.core.units import Seconds


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteConfig(_Config):
    """Where this agent is."""

    id: Ident = Field(description="site id, unique in the fleet; the MQTT topic prefix")
    district: Ident = Field(description="district id, for grouping on dashboards and reports")
    lat: float = Field(ge=-90, le=90, description="latitude in degrees (WGS84)")
    lon: float = Field(ge=-180, le=180, description="longitude in degrees (WGS84)")


class BrokerConfig(_Config):
    """The MQTT broker this agent reports to."""

    url: str = Field(description="mqtt://host:port or mqtts://host:port")
    username: str | None = Field(default=None, description="site credential user name")
    password: str | None = Field(default=None, description="site credential password", repr=False)
    ca_file: Path | None = Field(default=None, description="CA bundle that signed the broker")
    cert_file: Path | None = Field(default=None, description="client certificate (mTLS)")
    key_file: Path | None = Field(default=None, description="client key (mTLS)")
    keepalive_s: int = Field(
        default=10,
        ge=2,
        le=600,
        description="MQTT keepalive; the broker declares the site offline after 1.5x this",
    )
    reconnect_max_s: Seconds = Field(
        default=10.0,
        ge=1,
        le=300,
        description="longest wait between reconnect attempts (backoff doubles up to it); short, "
        "so a restored uplink is used quickly",
    )

    @model_validator(mode="after")
    def _check_url(self) -> BrokerConfig:
        if urlsplit(self.url).scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"url {self.url!r} must start with mqtt:// or mqtts://")
        return self


class StreamThresholdsConfig(_Config):
    """Where a measured picture value becomes a fault (tune per camera from the data)."""

    dark_luma: float = Field(
        default=35.0,
        ge=0,
        le=255,
        description="mean luma below: dark, whatever the camera's normal",
    )
    dark_ratio: float = Field(
        default=0.25, ge=0, le=1, description="luma below this share of the camera's normal: dark"
    )
    frozen_motion: float = Field(
        default=4.0,
        ge=0,
        description="largest local change between keyframes (luma levels) below: unchanged",
    )
    frozen_ratio: float = Field(
        default=0.9, gt=0, le=1, description="share of unchanged keyframe pairs that is frozen"
    )
    blur_sharpness: float = Field(
        default=40.0,
        ge=0,
        description="variance of the Laplacian below: blurred or covered, whatever the normal",
    )
    blur_ratio: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="sharpness below this share of the camera's normal: blurred",
    )
    baseline_probes: int = Field(
        default=3, ge=1, le=1000, description="healthy probes before the camera's normal is used"
    )
    view_change: float = Field(
        default=0.4,
        gt=0,
        le=1,
        description="distance from the camera's learned view (0 the same, 1 unrelated) from "
        "which the view changed: moved, re-aimed or covered",
    )
    view_relearn_probes: int = Field(
        default=12,
        ge=1,
        le=10_000,
        description="probes in a row showing one new view (and no other fault) after which it "
        "becomes the camera's learned view",
    )
    stall_s: Seconds = Field(
        default=2.0,
        gt=0,
        le=60,
        description="no new video for this long (wall time) within the sample: no_video",
    )


class CameraStreamConfig(_Config):
    """Per-camera stream-probe settings."""

    enabled: bool = Field(default=True, description="probe this camera's stream")
    thresholds: StreamThresholdsConfig | None = Field(
        default=None, description="override the site's thresholds for this camera"
    )


class StreamProbeConfig(_Config):
    """Decoding a few seconds of each camera's video: costly, so rare and bounded."""

    enabled: bool = Field(default=False, description="probe streams at all")
    interval_s: Seconds = Field(
        default=300.0, ge=1, le=86400, description="per camera; probes are spread over it"
    )
    sample_s: Seconds = Field(default=3.0, gt=0, le=30, description="video decoded per probe")
    timeout_s: Seconds = Field(
        default=5.0, gt=0, le=60, description="open / read timeout, and the wait for a first frame"
    )
    transport: Literal["tcp", "udp", "auto"] = Field(
        default="auto",
        description="RTSP transport: tcp (interleaved), udp, or auto (tcp, then udp if the "
        "camera cannot be opened over tcp, e.g. it answers 461 Unsupported transport)",
    )
    concurrency: int = Field(
        default=1, ge=1, le=64, description="streams decoded at once: the site's CPU budget"
    )
    thresholds: StreamThresholdsConfig = Field(default_factory=StreamThresholdsConfig)


class CameraConfig(_Config):
    """One IP camera and how to probe it."""

    id: Ident = Field(description="camera id, unique within the site")
    host: str | None = Field(
        default=None, description="host to TCP-probe; defaults to the RTSP URL's host"
    )
    rtsp_url: str | None = Field(default=None, description="rtsp://host[:554]/path")
    snapshot_url: str | None = Field(default=None, description="http(s) URL of a JPEG snapshot")
    username: str | None = Field(default=None, description="camera user (Digest or Basic auth)")
    password: str | None = Field(default=None, description="camera password", repr=False)
    stream: CameraStreamConfig = Field(
        default_factory=CameraStreamConfig, description="stream probe (needs rtsp_url)"
    )
    onvif: OnvifConfig | None = Field(
        default=None, description="ONVIF device checks: identity, clock, events (absent: none)"
    )
    switch: SwitchPortRef | None = Field(
        default=None, description="the switch port that links and powers it (absent: unknown)"
    )

    @model_validator(mode="after")
    def _check_urls(self) -> CameraConfig:
        if not self.rtsp_url and not self.snapshot_url:
            raise ValueError("give rtsp_url, snapshot_url or both")
        if self.rtsp_url and urlsplit(self.rtsp_url).scheme != "rtsp":
            raise ValueError(f"rtsp_url {self.rtsp_url!r} must start with rtsp://")
        if self.snapshot_url and urlsplit(self.snapshot_url).scheme not in ("http", "https"):
            raise ValueError(f"snapshot_url {self.snapshot_url!r} must be http(s)://")
        return self


class ProbeConfig(_Config):
    """How often and how patiently cameras are probed."""

    interval_s: Seconds = Field(default=10.0, ge=0.2, le=3600, description="probe period")
    timeout_s: Seconds = Field(
        default=3.0, gt=0, le=60, description="per stage (connect, RTSP answer, snapshot)"
    )
    concurrency: int = Field(default=32, ge=1, le=1024, description="cameras probed at once")

    @model_validator(mode="after")
    def _timeout_fits(self) -> ProbeConfig:
        if self.timeout_s * 3 > self.interval_s * 2:
            raise ValueError(
                f"timeout_s {self.timeout_s} is too long for interval_s {self.interval_s}: "
                "three stages must fit in two intervals"
            )
        return self


class SimulatedCabinet(_Config):
    """Simulated cabinet sensors: temperature, humidity, mains voltage, UPS battery."""

    type: Literal["simulated"]
    id: Ident = Field(description="sensor id prefix")
    seed: int = Field(default=0, description="noise seed; the same seed gives the same values")
    base_temp_c: float = Field(default=30.0, ge=-40, le=80, description="daily mean temperature")


class HostSensors(_Config):
    """The agent host's own metrics: CPU temperature, load, disk free, uplink round trip."""

    type: Literal["host"]
    id: Ident = Field(default="host", description="sensor id prefix")
    disk_path: Path = Field(default=Path("/"), description="filesystem whose free space counts")


class SnmpUps(_Config):
    """A UPS speaking the standard UPS-MIB (RFC 1628) over SNMP v2c."""

    type: Literal["snmp_ups"]
    id: Ident = Field(default="ups", description="sensor id")
    host: str = Field(description="UPS network card address")
    port: int = Field(default=161, ge=1, le=65535, description="SNMP UDP port")
    community: str = Field(default="public", min_length=1, repr=False, description="v2c community")
    timeout_s: Seconds = Field(default=2.0, gt=0, le=30, description="per request")
    retries: int = Field(default=1, ge=0, le=5, description="retries per request")


class ModbusRegister(_Config):
    """One value in a Modbus device: where it is and how to turn it into a number."""

    kind: Ident = Field(description="sensor kind it becomes, e.g. temperature, humidity, door_open")
    table: Literal["holding", "input", "coil", "discrete"] = Field(
        default="holding", description="register table (coil/discrete give 0 or 1)"
    )
    address: int = Field(ge=0, le=65535, description="0-based register or bit address")
    type: Literal["int16", "uint16", "int32", "uint32", "float32"] = Field(
        default="int16", description="register encoding (32-bit types span two registers)"
    )
    word_order: Literal["big", "little"] = Field(
        default="big", description="which register of a 32-bit value comes first"
    )
    scale: float = Field(default=1.0, description="value = raw x scale + offset")
    offset: float = Field(default=0.0, description="value = raw x scale + offset")


class ModbusSensors(_Config):
    """Environmental sensors over Modbus TCP; the register map is config, not code."""

    type: Literal["modbus"]
    id: Ident = Field(default="env", description="sensor id")
    host: str = Field(description="Modbus TCP device or gateway")
    port: int = Field(default=502, ge=1, le=65535, description="Modbus TCP port")
    unit: int = Field(default=1, ge=0, le=255, description="unit (device) id behind a gateway")
    timeout_s: Seconds = Field(default=2.0, gt=0, le=30, description="per request")
    registers: list[ModbusRegister] = Field(min_length=1, description="what to read")

    @model_validator(mode="after")
    def _unique_kinds(self) -> ModbusSensors:
        kinds = [r.kind for r in self.registers]
        if len(kinds) != len(set(kinds)):
            raise ValueError(f"modbus sensor {self.id!r}: each register needs its own kind")
        return self


SensorConfig = Annotated[
    SimulatedCabinet | HostSensors | SnmpUps | ModbusSensors, Field(discriminator="type")
]


class QueueConfig(_Config):
    """The on-disk store-and-forward queue."""

    path: Path = Field(description="SQLite file; survives kill -9 and reboots")
    max_readings: int = Field(
        default=2_000_000, ge=100, description="oldest readings are dropped (and counted) beyond"
    )
    max_age_s: Seconds = Field(
        default=7 * 86400, gt=0, description="readings older than this are dropped (and counted)"
    )


class PublishConfig(_Config):
    """How queued readings are sent."""

    batch_max_readings: int = Field(
        default=500, ge=1, le=5000, description="readings per MQTT message"
    )
    birth_refresh_s: float = Field(
        default=6 * 3600.0,
        ge=10,
        description="publish the site's online status again this often, so the latest status "
        "stays inside the cloud's raw retention however long the connection lasts",
    )
    max_inflight: int = Field(
        default=8, ge=1, le=100, description="messages awaiting PUBACK at once"
    )
    replay_rate_per_s: float = Field(
        default=10_000,
        gt=0,
        description="backlog readings per second after a reconnect; live readings go first",
    )
    ack_timeout_s: Seconds = Field(
        default=60.0, gt=0, description="republish a message not acknowledged after this long"
    )
    receipts: bool = Field(
        default=True,
        description="keep readings until the collector's receipt says InfluxDB stored them "
        "(false: forget them at the broker's PUBACK, for brokers without a receipts topic)",
    )
    receipt_timeout_s: Seconds = Field(
        default=120.0,
        gt=0,
        description="send a message again if no receipt came this long after its PUBACK (the "
        "broker may have dropped it, or the receipt was lost); longer than a typical InfluxDB "
        "outage, so an outage does not double the traffic",
    )
    max_unreceipted: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="messages awaiting a receipt at once; beyond, publishing pauses and readings "
        "wait on disk",
    )
    shutdown_flush_s: Seconds = Field(
        default=10.0,
        ge=0,
        description="on a clean stop, keep sending queued readings for up to this long",
    )
    clock_hold_s: Seconds = Field(
        default=600.0,
        ge=0,
        le=86400,
        description="after a start, readings are held (on disk, unsent) at most this long for "
        "the first receipt, which measures the box's clock, so they are stored at the true "
        "time; longer keeps more of them right after a long outage at boot, shorter sends them "
        "sooner; 0: no wait (readings before it keep the box's own time)",
    )


class AgentConfig(_Config):
    """A site's edge agent."""

    site: SiteConfig
    broker: BrokerConfig
    probe: ProbeConfig = Field(default_factory=ProbeConfig)
    stream: StreamProbeConfig = Field(
        default_factory=StreamProbeConfig, description="picture checks (frozen, dark, blurred)"
    )
    cameras: list[CameraConfig] = Field(default_factory=list, max_length=4096)
    sensors: list[SensorConfig] = Field(default_factory=list)
    recorders: list[RecorderConfig] = Field(
        default_factory=list, max_length=64, description="NVRs whose recording is verified"
    )
    devices: DeviceChecksConfig = Field(
        default_factory=DeviceChecksConfig, description="ONVIF and recorder checks"
    )
    queue: QueueConfig
    publish: PublishConfig = Field(default_factory=PublishConfig)
    switches: list[SwitchConfig] = Field(
        default_factory=list, max_length=64, description="PoE switches read over SNMP"
    )
    services: ServiceProbeSettings = Field(
        default_factory=ServiceProbeSettings, description="probes of the cloud's service catalogue"
    )
    commands: CommandsConfig | None = Field(
        default=None, description="signed commands taken from the command center (absent: none)"
    )
    ledger: bool = Field(
        default=False,
        description="testing aid: also keep every reading produced in the queue file's ledger "
        "table, the ground truth that chaos tests compare InfluxDB against (grows unbounded)",
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> AgentConfig:
        seen: set[str] = set()
        for camera in self.cameras:
            if camera.id in seen:
                raise ValueError(f"camera id {camera.id!r} is used twice")
            seen.add(camera.id)
        for recorder in self.recorders:
            if unknown := {c.camera for c in recorder.cameras} - seen:
                raise ValueError(f"recorder {recorder.id!r}: unknown cameras {sorted(unknown)}")
        switches = {s.id for s in self.switches}
        for camera in self.cameras:
            if camera.switch and camera.switch.switch not in switches:
                raise ValueError(f"camera {camera.id!r}: unknown switch {camera.switch.switch!r}")
        sensor_ids = [s.id for s in self.sensors]
        if len(sensor_ids) != len(set(sensor_ids)):
            raise ValueError("sensor ids must be unique")
        return self
