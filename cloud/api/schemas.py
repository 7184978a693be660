"""Request and response models of the API."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from pantau.core.contract import Ident


class Problem(BaseModel):
    """RFC 7807 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None


class SiteOut(BaseModel):
    """A site's latest online state."""

    site: str
    district: str
    online: bool
    since: dt.datetime
    lat: float | None
    lon: float | None


class CameraOut(BaseModel):
    """A camera's current state."""

    site: str
    district: str
    camera: str
    status: str = Field(
        description="up, degraded (answers, picture at fault), down or unknown (no fresh data)"
    )
    since: dt.datetime | None = Field(description="when it entered its current up/down state")
    cause: str
    last_seen: dt.datetime | None = Field(
        description="its latest probe; null when it was not probed within the last 24 h"
    )


class AvailabilityOut(BaseModel):
    """Seconds of each kind and the two availability figures."""

    site: str
    district: str
    camera: str
    up_seconds: float
    down_seconds: float
    unknown_seconds: float
    maintenance_seconds: float
    availability: float | None = Field(description="up / (up + down)")
    availability_strict: float | None = Field(description="up / (up + down + unknown)")
    recorded_seconds: float = Field(description="seconds a recorder kept of those expected")
    record_expected_seconds: float = Field(
        description="seconds a recorder should have recorded (judged, maintenance set aside)"
    )
    recording_availability: float | None = Field(description="recorded / expected")
    retention_compliance: float | None = Field(
        description="share of retention checks whose oldest recording met the camera's goal"
    )


class InventoryOut(BaseModel):
    """A camera's identity as its ONVIF device service last gave it."""

    site: str
    district: str
    camera: str
    manufacturer: str | None
    model: str | None
    firmware: str | None
    serial: str | None
    hardware: str | None
    identified: dt.datetime = Field(description="when this identity was last read")
    last_seen: dt.datetime = Field(description="the device service's latest answer")


class MaintenanceIn(BaseModel):
    """A maintenance window to create; give at least a site or a district."""

    model_config = ConfigDict(extra="forbid")

    site: Ident | None = Field(default=None, description="site the window applies to")
    camera: Ident | None = Field(default=None, description="one camera of the site (optional)")
    district: Ident | None = Field(default=None, description="a whole district (optional)")
    service: Ident | None = Field(
        default=None,
        description="one e-government service of the catalogue (with district: only that "
        "district's path to it; without: the service itself, every vantage point)",
    )
    start: AwareDatetime = Field(description="ISO 8601 with a time zone")
    end: AwareDatetime = Field(description="ISO 8601 with a time zone, after start")
    reason: str = Field(min_length=1, max_length=500)
    retroactive_reason: str | None = Field(
        default=None,
        max_length=500,
        description="why it is entered after it began: required when start is more than 5 "
        "minutes before now (a supervisor only)",
    )

    @model_validator(mode="after")
    def _check(self) -> MaintenanceIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.service is not None and self.site is not None:
            raise ValueError("a service's window names no site (only, optionally, a district)")
        if self.site is None and self.district is None and self.service is None:
            raise ValueError("give a site (optionally with a camera), a district or a service")
        if self.camera is not None and self.site is None:
            raise ValueError("a camera needs its site")
        return self


class MaintenanceOut(BaseModel):
    """A stored maintenance window."""

    id: int
    site: str | None
    district: str | None
    camera: str | None
    service: str | None = Field(default=None, description="the service, for a service's window")
    start: dt.datetime
    end: dt.datetime
    reason: str
    created_by: str = Field(description="the signed-in user who requested it")
    created_at: dt.datetime = Field(description="when it was entered")
    status: str = Field(description="requested (waits for a supervisor), approved or cancelled")
    counts: bool = Field(description="its seconds count as maintenance: approved, not cancelled")
    approval: str = Field(description="pending, supervisor, advance (policy) or legacy")
    approved_by: str | None = Field(description="the supervisor, 'policy' or 'legacy'")
    approved_at: dt.datetime | None
    retroactive: bool = Field(description="entered more than 5 minutes after it began")
    retro_reason: str | None = Field(description="why a retroactive window was entered late")
    cancelled_by: str | None
    cancelled_at: dt.datetime | None
    cancel_reason: str | None


class CancelIn(BaseModel):
    """Why a window is cancelled (who: the signed-in user)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class FoldedCamera(BaseModel):
    """A camera of an offline site, with its last known state."""

    camera: str
    up: bool = Field(description="its last probe before contact was lost")
    cause: str


class ProblemOut(BaseModel):
    """A problem: where, since when, probable cause, and who is on it."""

    id: int
    key: str = Field(description="rule and subject; one unresolved problem per key")
    rule: str
    title: str
    severity: str = Field(description="critical, major, minor or warning")
    state: str = Field(description="open, acknowledged or resolved")
    site: str
    district: str
    camera: str | None
    subject: str
    since: dt.datetime = Field(description="when the condition began")
    opened_at: dt.datetime
    resolved_at: dt.datetime | None
    cause: str
    cameras: list[FoldedCamera] = Field(
        description="for a site out of contact: its cameras, folded under the site's problem"
    )
    value: float | None = Field(description="the measured value, for threshold problems")
    acknowledged_by: str | None
    acknowledged_at: dt.datetime | None
    ack_comment: str | None
    in_maintenance: bool = Field(description="covered by a maintenance window: no messages")
    reopen_count: int


class AckIn(BaseModel):
    """Why a problem is acknowledged (who: the signed-in user)."""

    model_config = ConfigDict(extra="forbid")

    comment: str | None = Field(default=None, max_length=500, description="e.g. 'on my way'")


class ServiceNowOut(BaseModel):
    """An e-government service now (docs/services.md): state by the vantage-point rule."""

    name: str
    title: str
    opd: str = Field(description="the owner office")
    state: Literal["up", "down", "unknown", "maintenance"]
    since: dt.datetime | None = Field(description="when the state began (null: over 6 h ago)")


class ServiceAvailabilityOut(BaseModel):
    """Seconds of a service, or of an OPD's services summed, by state."""

    service: str | None = Field(description="null on an OPD's row")
    opd: str
    up_seconds: float
    down_seconds: float
    unknown_seconds: float
    maintenance_seconds: float = Field(
        description="approved maintenance windows of the service itself (cloud/services/windows.py)"
    )
    availability: float | None = Field(description="up / (up + down)")


class PublicServiceOut(BaseModel):
    """What the public status page shows of a service: nothing internal."""

    title: str
    state: Literal["up", "down", "unknown", "maintenance"]
    since: dt.datetime | None
