"""Config of the device checks: a camera's ``onvif:`` section, the site's recorders and how often
both are asked. Imported by ``edge_agent.config``; imports nothing of the agent."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pantau.core.contract import Ident
from pantau.core.units import Seconds


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OnvifConfig(_Config):
    """A camera's ONVIF device service (identity, clock, services, events)."""

    host: str | None = Field(default=None, description="defaults to the camera's host")
    port: int = Field(default=80, ge=1, le=65535, description="ONVIF HTTP port")
    username: str | None = Field(default=None, description="defaults to the camera's user")
    password: str | None = Field(
        default=None, repr=False, description="defaults to the camera's password"
    )
    events: bool = Field(
        default=True,
        description="subscribe to the camera's events (PullPoint): tamper, signal loss, storage "
        "failure, reboot",
    )


class CameraRecording(_Config):
    """Where one camera is recorded on a recorder."""

    camera: Ident = Field(description="the camera id (``cameras[].id``)")
    channel: int = Field(ge=1, le=4096, description="the recorder's channel (track) number")
    retention_goal_days: float = Field(
        default=30.0, gt=0, le=3650, description="days its recording must be kept"
    )


class HikvisionRecorder(_Config):
    """A Hikvision NVR or DVR, asked over ISAPI (HTTP Digest)."""

    type: Literal["hikvision"]
    id: Ident = Field(description="recorder id, unique within the site")
    url: str = Field(description="http(s)://host[:port] of the recorder's web service")
    username: str = Field(description="a recorder user allowed to search recordings")
    password: str = Field(repr=False, description="that user's password")
    timezone: str | None = Field(
        default=None,
        description="the recorder's time zone (IANA, e.g. Asia/Jakarta) if its answers carry "
        "local times without an offset; default: what the recorder's time settings say",
    )
    search_times: Literal["local", "utc"] = Field(
        default="local",
        description="how the recorder writes search times: its local wall time (most firmwares, "
        "even where the time ends in Z) or true UTC",
    )
    cameras: list[CameraRecording] = Field(min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _check(self) -> HikvisionRecorder:
        if urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError(f"recorder {self.id!r}: url must start with http:// or https://")
        cameras = [c.camera for c in self.cameras]
        if len(cameras) != len(set(cameras)):
            raise ValueError(f"recorder {self.id!r}: a camera is listed twice")
        return self


class OnvifRecordingSource(_Config):
    """Which of an ONVIF recorder's recordings holds one camera."""

    camera: Ident = Field(description="the camera id (``cameras[].id``)")
    recording: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the recording token (``FindRecordings``); absent: the recorder's only "
        "recording, as on a camera recording to its own card",
    )
    retention_goal_days: float = Field(
        default=30.0, gt=0, le=3650, description="days its recording must be kept"
    )


class OnvifRecorder(_Config):
    """A camera recording to its own card, or an NVR, asked over ONVIF Profile G (search
    service: ``FindRecordings``, ``FindEvents``)."""

    type: Literal["onvif"]
    id: Ident = Field(description="recorder id, unique within the site")
    host: str = Field(min_length=1, description="the device's address")
    port: int = Field(default=80, ge=1, le=65535, description="ONVIF HTTP port")
    username: str | None = Field(default=None, description="an ONVIF user allowed to search")
    password: str | None = Field(default=None, repr=False, description="that user's password")
    cameras: list[OnvifRecordingSource] = Field(min_length=1, max_length=256)

    @model_validator(mode="after")
    def _check(self) -> OnvifRecorder:
        cameras = [c.camera for c in self.cameras]
        if len(cameras) != len(set(cameras)):
            raise ValueError(f"recorder {self.id!r}: a camera is listed twice")
        if len(self.cameras) > 1 and any(c.recording is None for c in self.cameras):
            raise ValueError(
                f"recorder {self.id!r}: with several cameras, give each its recording token"
            )
        return self


class ZoneminderRecorder(_Config):
    """A ZoneMinder server (1.36), asked over its JSON API; ``cameras[].channel`` is the
    monitor id."""

    type: Literal["zoneminder"]
    id: Ident = Field(description="recorder id, unique within the site")
    url: str = Field(description="http(s)://host[:port]/zm, the folder that holds ``api/``")
    username: str | None = Field(
        default=None, description="a ZoneMinder user with API access (absent: auth is off)"
    )
    password: str | None = Field(default=None, repr=False, description="that user's password")
    timezone: str | None = Field(
        default=None,
        description="the server's time zone (IANA) if its own (``host/getTimeZone``) is wrong",
    )
    cameras: list[CameraRecording] = Field(min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _check(self) -> ZoneminderRecorder:
        if urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError(f"recorder {self.id!r}: url must start with http:// or https://")
        if (self.username is None) != (self.password is None):
            raise ValueError(f"recorder {self.id!r}: give both username and password, or neither")
        cameras = [c.camera for c in self.cameras]
        if len(cameras) != len(set(cameras)):
            raise ValueError(f"recorder {self.id!r}: a camera is listed twice")
        return self


RecorderConfig = Annotated[
    HikvisionRecorder | OnvifRecorder | ZoneminderRecorder, Field(discriminator="type")
]


EventName = Literal["tamper", "signal_loss", "storage_failure"]
ONE_SHOT: tuple[EventName, ...] = ("tamper",)


class EventsConfig(_Config):
    """How cameras' ONVIF events are watched (PullPoint; cameras with ``onvif.events``)."""

    subscription_s: Seconds = Field(
        default=300.0,
        ge=10,
        le=86400,
        description="subscriptions are asked this long and renewed before they lapse; short, "
        "because pantau never unsubscribes (many cameras cannot) and a lost one must lapse",
    )
    pull_timeout_s: Seconds = Field(
        default=10.0, ge=1, le=60, description="how long one PullMessages waits for an event"
    )
    hold_s: Seconds = Field(
        default=600.0,
        gt=0,
        le=86400,
        description="a one-shot event (no end is ever reported) is cleared by pantau this long "
        "after the camera's last report of it",
    )
    one_shot: list[EventName] = Field(
        default_factory=lambda: list(ONE_SHOT),
        description="events held and cleared as one-shot even when the camera sends them as a "
        "state (cameras report tamper as a moment and never its end)",
    )
    retry_max_s: Seconds = Field(
        default=300.0, ge=1, le=3600, description="longest wait before subscribing again"
    )


class DeviceChecksConfig(_Config):
    """How often and how patiently devices (ONVIF services, recorders) are asked."""

    interval_s: Seconds = Field(
        default=300.0, ge=5, le=86400, description="per device; cheap, but devices are slow"
    )
    timeout_s: Seconds = Field(
        default=10.0, gt=0, le=120, description="the whole check of one device, every call in it"
    )
    window_s: int = Field(
        default=3600, ge=60, le=86400, description="recording judged over this past span"
    )
    max_answer_bytes: int = Field(
        default=2_000_000,
        ge=10_000,
        le=50_000_000,
        description="a device answer longer than this is refused (hostile or broken device)",
    )
    concurrency: int = Field(default=4, ge=1, le=64, description="devices asked at once")
    events: EventsConfig = Field(
        default_factory=EventsConfig, description="cameras' events (tamper, signal, storage)"
    )
