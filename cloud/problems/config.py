"""Rules, notification targets and the evaluator service's settings (YAML and/or flags)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from cloud.influx_config import InfluxSettings
from cloud.remediation.config import RemediationConfig
from cloud.schema import FRESH_S
from pantau.core.paths import state_db_url
from pantau.core.units import Seconds


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Severity(enum.StrEnum):
    """How urgent a problem is; the technician page sorts by it."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"

    @property
    def rank(self) -> int:
        """0 is the most urgent."""
        return list(Severity).index(self)


class CameraRule(_Config):
    """A camera that stays down, or keeps bouncing, is a problem."""

    enabled: bool = Field(default=True, description="raise camera problems at all")
    down_for: Seconds = Field(
        default=120.0, gt=0, description="a camera down this long opens a problem"
    )
    clear_for: Seconds = Field(
        default=300.0, gt=0, description="it resolves once the camera has been up this long"
    )
    flap_window: Seconds = Field(
        default=600.0, gt=0, description="window in which up/down changes are counted"
    )
    flap_changes: int = Field(
        default=6,
        ge=2,
        description="this many changes within flap_window open a 'flapping' problem even if no "
        "single outage lasts down_for",
    )
    severity: Severity = Field(default=Severity.MAJOR, description="severity of camera problems")


class SiteRule(_Config):
    """A site whose agent we cannot reach (Last Will, or no data) is one problem."""

    offline_for: Seconds = Field(
        default=60.0, ge=0, description="a site offline this long opens a problem"
    )
    clear_for: Seconds = Field(
        default=120.0, gt=0, description="it resolves once the site has been back this long"
    )
    stale_after: Seconds = Field(
        default=FRESH_S,
        gt=0,
        description="no agent report for this long counts as offline even without a Last Will, "
        "and a camera's older probe is not 'now' (default: the schema's freshness rule)",
    )
    severity: Severity = Field(default=Severity.CRITICAL, description="severity of site problems")


class DuplicateSiteRule(_Config):
    """Two agents configured with one site id take the site's connection from each other in
    turn: that is a configuration fault to fix, not a flapping site."""

    enabled: bool = Field(default=True, description="raise duplicate site id problems")
    window: Seconds = Field(
        default=300.0, gt=0, description="births (connects) looked at, this far back"
    )
    min_returns: int = Field(
        default=2,
        ge=1,
        description="a session connecting again after another one took over, this many times, "
        "is a duplicate (an agent restart gives a new session that never hands back)",
    )
    severity: Severity = Field(default=Severity.MAJOR, description="severity of the problem")


class ClockRule(_Config):
    """A site whose clock is wrong stamps its readings at wrong times (ahead beyond the
    collector's max_future_s, they are refused and wait at the edge)."""

    enabled: bool = Field(default=True, description="raise site clock problems")
    max_offset: Seconds = Field(
        default=60.0, gt=0, description="a site clock further off than this is a problem"
    )
    window: Seconds = Field(
        default=86400.0,
        gt=0,
        description="how far back the latest measurement (a birth's stamp, or the agent's "
        "receipt round trips) is looked for",
    )
    severity: Severity = Field(default=Severity.MAJOR, description="severity of the problem")


class DistrictRule(_Config):
    """A site whose messages claim another district than the site registry's: stored under the
    registered one, and a problem, because its agent's configuration is wrong (or abused)."""

    enabled: bool = Field(default=True, description="raise district mismatch problems")
    window: Seconds = Field(
        default=3600.0,
        gt=0,
        description="a mismatch this recent is a problem; it resolves once none came for this long",
    )
    severity: Severity = Field(default=Severity.MINOR, description="severity of the problem")


class RecordingRule(_Config):
    """What a camera's recorder kept: gaps in the latest window, retention below its goal, a
    recorder disk that failed."""

    enabled: bool = Field(default=True, description="raise recording problems")
    min_gap: Seconds = Field(
        default=60.0,
        gt=0,
        description="seconds without recording in the latest window that make a 'recording "
        "gap' (the problem resolves once the window holds less)",
    )
    retention_tolerance_days: float = Field(
        default=0.5, ge=0, le=30, description="retention this far below the goal still passes"
    )
    lookback: Seconds = Field(
        default=3 * 3600.0,
        gt=0,
        description="how far back a recorder's latest report is looked for",
    )
    severity: Severity = Field(default=Severity.MAJOR, description="gaps and disk failures")
    retention_severity: Severity = Field(default=Severity.MINOR, description="retention")


class DeviceRule(_Config):
    """A camera's identity and clock from its ONVIF checks."""

    enabled: bool = Field(default=True, description="raise device problems")
    replaced_window: Seconds = Field(
        default=7 * 86400.0,
        gt=0,
        description="a serial number that changed within this window is 'camera replaced'",
    )
    firmware_window: Seconds = Field(
        default=86400.0, gt=0, description="a firmware that changed within this window is shown"
    )
    max_clock_offset: Seconds = Field(
        default=10.0,
        gt=0,
        description="a camera clock further off than this is 'camera clock wrong' (recorded "
        "evidence carries the camera's time; the measurement is good to about a second)",
    )
    lookback: Seconds = Field(
        default=3600.0, gt=0, description="how far back a camera's latest clock check is looked for"
    )
    severity: Severity = Field(
        default=Severity.MAJOR,
        description="camera replaced, and its events: tampered, video signal lost, storage failed",
    )
    clock_severity: Severity = Field(default=Severity.MINOR, description="camera clock wrong")
    reboot_window: Seconds = Field(
        default=3600.0,
        gt=0,
        description="a camera that started within this window is shown as 'camera rebooted' (an "
        "event: it resolves by itself once the window has passed)",
    )


class ThresholdRule(_Config):
    """A cabinet or agent value beyond a threshold for a while (with hysteresis to clear)."""

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,39}$", description="rule id, part of the problem's key"
    )
    title: str = Field(min_length=1, max_length=80, description="what the technician reads")
    measurement: Literal["sensor", "agent"] = Field(
        default="sensor", description="'sensor' (cabinet sensors) or 'agent' (edge self-report)"
    )
    kind: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="sensor kind to watch (sensor rules only), e.g. temperature",
    )
    field: str = Field(
        default="value",
        pattern=r"^[a-z_]{1,40}$",
        description="field to compare; 'value' for sensors, e.g. 'oldest_age_s' for the agent",
    )
    above: float | None = Field(default=None, description="bad when the value stays above this")
    below: float | None = Field(default=None, description="bad when the value stays below this")
    clear_at: float = Field(
        description="good again once the value is back past this (hysteresis: set it a little "
        "inside the threshold so a value hovering at the line does not flap)"
    )
    for_: Seconds = Field(
        default=300.0, gt=0, validation_alias="for", description="the value must stay bad this long"
    )
    clear_for: Seconds = Field(default=300.0, gt=0, description="and good this long to resolve")
    unit: str = Field(default="", max_length=10, description="unit shown in messages")
    severity: Severity = Field(default=Severity.MINOR, description="severity of these problems")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one_direction(self) -> ThresholdRule:
        if (self.above is None) == (self.below is None):
            raise ValueError(f"rule {self.name!r}: give exactly one of 'above' or 'below'")
        if self.measurement == "sensor" and not self.kind:
            raise ValueError(f"rule {self.name!r}: sensor rules need 'kind'")
        if self.above is not None and self.clear_at > self.above:
            raise ValueError(f"rule {self.name!r}: clear_at must not be above 'above'")
        if self.below is not None and self.clear_at < self.below:
            raise ValueError(f"rule {self.name!r}: clear_at must not be below 'below'")
        return self


def default_threshold_rules() -> list[ThresholdRule]:
    """Cabinet heat and damp, mains lost (UPS on battery), UPS battery low, edge backlog."""
    return [
        ThresholdRule(
            name="cabinet_hot", title="cabinet too hot", kind="temperature",
            above=45.0, clear_at=42.0, unit="°C",
        ),
        ThresholdRule(
            name="cabinet_humid", title="cabinet too humid", kind="humidity",
            above=95.0, clear_at=90.0, unit="%",
        ),
        ThresholdRule(
            name="mains_lost", title="mains lost (UPS on battery)", kind="mains_voltage",
            below=180.0, clear_at=200.0, unit="V", for_=60.0, clear_for=120.0,
            severity=Severity.MAJOR,
        ),
        ThresholdRule(
            name="ups_battery_low", title="UPS battery low", kind="ups_battery_pct",
            below=30.0, clear_at=40.0, unit="%", for_=30.0, severity=Severity.CRITICAL,
        ),
        ThresholdRule(
            name="uplink_backlog", title="edge backlog growing (uplink trouble)",
            measurement="agent", field="oldest_age_s", above=300.0, clear_at=60.0, unit="s",
            for_=120.0, severity=Severity.WARNING,
        ),
    ]  # fmt: skip


class ServiceRule(_Config):
    """E-government services judged from every vantage point (docs/services.md)."""

    enabled: bool = Field(default=True, description="raise service problems")
    catalogue: Path | None = Field(default=None, description="services.yaml (absent: none)")
    fresh: Seconds = Field(
        default=300.0, gt=0, description="a vantage's latest probe counts while younger"
    )


class RulesConfig(_Config):
    """Which conditions become problems, and when they clear."""

    camera: CameraRule = Field(default_factory=CameraRule, description="camera down / flapping")
    site: SiteRule = Field(default_factory=SiteRule, description="site offline")
    clock: ClockRule = Field(default_factory=ClockRule, description="site clock wrong")
    district: DistrictRule = Field(
        default_factory=DistrictRule, description="site claims another district"
    )
    duplicate: DuplicateSiteRule = Field(
        default_factory=DuplicateSiteRule, description="two agents using one site id"
    )
    recording: RecordingRule = Field(
        default_factory=RecordingRule, description="recording gaps, retention, recorder disks"
    )
    devices: DeviceRule = Field(
        default_factory=DeviceRule, description="camera replaced, firmware, camera clock"
    )
    services: ServiceRule = Field(default_factory=ServiceRule, description="service checks")
    thresholds: list[ThresholdRule] = Field(
        default_factory=default_threshold_rules,
        description="cabinet and agent thresholds (replaces the defaults when given)",
    )
    reopen_within: Seconds = Field(
        default=1800.0,
        ge=0,
        description="a condition returning this soon after its problem resolved reopens that "
        "problem instead of opening a new one",
    )
    ingest_stale_after: Seconds = Field(
        default=60.0,
        gt=0,
        description="no collector self-report for this long means our own pipeline is down: one "
        "'ingest stalled' problem, and no site is blamed for the silence",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> RulesConfig:
        names = [rule.name for rule in self.thresholds]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates or {"camera", "site", "ingest"} & set(names):
            raise ValueError(
                f"threshold rule names must be unique and not camera/site/ingest: {duplicates}"
            )
        return self


class WebhookTarget(_Config):
    """A generic JSON webhook (HMAC-signed when a secret is set)."""

    type: Literal["webhook"]
    name: str = Field(pattern=r"^[a-z0-9_-]{1,40}$", description="target id in the outbox")
    url: HttpUrl = Field(description="POST destination")
    secret: str | None = Field(
        default=None, repr=False, description="signs the body: X-Pantau-Signature: sha256=<hex>"
    )


class TelegramTarget(_Config):
    """A Telegram chat, through the Bot API's sendMessage."""

    type: Literal["telegram"]
    name: str = Field(pattern=r"^[a-z0-9_-]{1,40}$", description="target id in the outbox")
    bot_token: str = Field(min_length=1, repr=False, description="the bot's token from BotFather")
    chat_id: str = Field(min_length=1, description="chat or group id, e.g. -1001234567890")
    api_url: HttpUrl = Field(
        default=HttpUrl("https://api.telegram.org"), description="Bot API base URL"
    )


NotifyTarget = Annotated[WebhookTarget | TelegramTarget, Field(discriminator="type")]


class NotifyConfig(_Config):
    """Where problem messages go, and how hard we try."""

    targets: list[NotifyTarget] = Field(default_factory=list, description="webhooks and chats")
    timeout: Seconds = Field(default=10.0, gt=0, description="per-request timeout")
    backoff_initial: Seconds = Field(default=2.0, gt=0, description="first retry delay")
    backoff_max: Seconds = Field(default=300.0, gt=0, description="retry delay cap")
    give_up_after: Seconds = Field(
        default=86400.0, gt=0, description="a message still undelivered this long is dropped"
    )
    timezone: str = Field(default="Asia/Jakarta", description="zone for times in messages")
    lang: Literal["id", "en"] = Field(
        default="id", description="language of the messages: id (Bahasa Indonesia) or en"
    )
    page_url: str | None = Field(
        default=None, description="technician page URL to link from messages"
    )

    @model_validator(mode="after")
    def _unique_targets(self) -> NotifyConfig:
        names = [t.name for t in self.targets]
        if len(names) != len(set(names)):
            raise ValueError(f"notification target names must be unique: {names}")
        return self


class EvaluatorConfig(_Config):
    """The ``pantau problems`` service."""

    influx: InfluxSettings = Field(
        default_factory=InfluxSettings, description="the InfluxDB the rules read (as the API's)"
    )
    state_url: str = Field(
        default_factory=state_db_url,
        description="state database shared with the API (sqlite:///FILE or postgresql://...)",
    )
    interval: Seconds = Field(default=10.0, gt=0, description="evaluate the rules this often")
    rules: RulesConfig = Field(default_factory=RulesConfig, description="problem rules")
    notify: NotifyConfig = Field(default_factory=NotifyConfig, description="notifications")
    remediation: RemediationConfig | None = Field(
        default=None, description="send signed commands; absent: no remediation (docs/problems.md)"
    )

    @model_validator(mode="before")
    @classmethod
    def _flat_influx_keys(cls, data: Any) -> Any:
        """Older configs say ``influx_url`` and ``database`` at the top: read them into
        ``influx``."""
        if not isinstance(data, dict) or not {"influx_url", "database"} & data.keys():
            return data
        data = dict(data)
        section = dict(data.get("influx") or {})
        for old, new in (("influx_url", "url"), ("database", "database")):
            if old in data:
                section.setdefault(new, data.pop(old))
        data["influx"] = section
        return data
