"""Collector configuration (YAML file and/or command-line flags)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cloud.influx_config import InfluxSettings
from cloud.rollup.timegrid import fixed_offset_s
from cloud.schema import DEFAULT_PROBE_INTERVAL_S
from pantau.core.paths import dead_letter_path


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttConfig(_Config):
    """The broker the collector subscribes to."""

    url: str = Field(default="mqtt://127.0.0.1:1883", description="mqtt:// or mqtts:// URL")
    username: str | None = Field(default=None, description="broker user (collector role)")
    password: str | None = Field(default=None, description="broker password", repr=False)
    ca_file: Path | None = Field(default=None, description="CA bundle for mqtts://")
    client_id: str = Field(
        default="pantau-collector-1",
        min_length=1,
        max_length=64,
        description="fixed per instance: the persistent session (and its queued messages) is "
        "keyed on it",
    )
    replaces: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="client ids of collectors this one replaces for good: their persistent "
        "sessions are cleared at start, so the shared group stops routing messages to them "
        "(what was queued there is sent again by the agents, who got no receipt); never list "
        "an id that is still running, it would be disconnected",
    )
    share_group: str | None = Field(
        default="pantau",
        description="shared-subscription group; collectors in one group split the load",
    )
    keepalive_s: int = Field(
        default=60,
        ge=2,
        le=600,
        description="MQTT keepalive; while InfluxDB is down and our inbound queue is full we stop "
        "reading, and after 1.5x this the broker drops us (nothing is lost: unacked messages "
        "are redelivered on reconnect)",
    )
    session_expiry_s: int = Field(
        default=7 * 86400,
        ge=0,
        description="how long the broker keeps our session and queues messages while we are away",
    )
    receive_maximum: int = Field(
        default=1000,
        ge=10,
        le=65535,
        description="messages held in memory unacknowledged (also sent to the broker as our "
        "Receive Maximum); acks wait for a batch write, so keep it above a batch's message "
        "count. Memory bound: receive_maximum x validation.max_payload_bytes",
    )


class InfluxConfig(InfluxSettings):
    """The InfluxDB the collector writes to: the shared settings (``cloud.influx_config``), and
    whether to create the database."""

    create_database: bool = Field(default=True, description="CREATE DATABASE at start-up")


class BatchConfig(_Config):
    """How readings are grouped into InfluxDB writes."""

    max_lines: int = Field(
        default=5000, ge=1, le=100_000, description="flush when a batch holds this many points"
    )
    max_delay_s: float = Field(
        default=0.2,
        gt=0,
        le=10,
        description="flush a non-empty batch after this long; bounds added latency",
    )
    write_concurrency: int = Field(
        default=2,
        ge=1,
        le=8,
        description="batches written to InfluxDB at once (acks still go out in arrival order)",
    )
    retry_min_s: float = Field(default=0.2, gt=0, description="first retry delay")
    retry_max_s: float = Field(default=10.0, gt=0, description="retry delay cap (with jitter)")


class ValidationConfig(_Config):
    """Limits applied to incoming messages."""

    max_payload_bytes: int = Field(
        default=262_144,
        ge=1024,
        description="larger messages are rejected as oversized; with receive_maximum this bounds "
        "the collector's memory (an agent batch of 500 readings is about 100 KB)",
    )
    max_devices_per_site: int = Field(
        default=2048,
        ge=1,
        le=1_000_000,
        description="camera ids, sensor (id, kind) pairs and districts one site may report; "
        "readings of further devices are dead-lettered (device_budget), never written, so one "
        "site cannot flood InfluxDB with series",
    )
    max_sites: int = Field(
        default=100_000, ge=1, description="sites the collector accepts readings from at all"
    )
    max_future_s: float = Field(
        default=300.0, ge=0, description="reject readings stamped further in the future"
    )


class RollupConfig(_Config):
    """Rollups and retention (docs/rollups.md)."""

    enabled: bool = Field(default=True, description="run the rollup worker in this collector")
    timezone: str = Field(
        default="Asia/Jakarta",
        description="local days of the daily rollups and reports (a fixed UTC offset, no DST)",
    )
    every_s: float = Field(default=10.0, gt=0, le=3600, description="rollup worker cycle")
    live_every_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="how often district hours not rolled up yet (the wall's current hour) are "
        "refreshed from raw points",
    )
    settle_s: float = Field(
        default=60.0, ge=0, le=3600, description="an hour is rolled up this long after it ends"
    )
    manage_retention: bool = Field(
        default=True, description="create/alter the retention policies at start-up (InfluxDB 1.x)"
    )
    raw_days: int = Field(default=35, ge=2, le=3650, description="raw points are kept this long")
    hourly_days: int = Field(default=730, ge=7, le=36500, description="hourly rollups kept")
    daily_days: int = Field(default=3650, ge=30, le=36500, description="daily rollups kept")
    default_probe_interval_s: float = Field(
        default=DEFAULT_PROBE_INTERVAL_S,
        gt=0,
        description="probe interval of a site whose birth is not on record",
    )

    @field_validator("timezone")
    @classmethod
    def _fixed_offset(cls, value: str) -> str:
        try:
            fixed_offset_s(value)
        except (ValueError, KeyError) as exc:
            raise ValueError(f"timezone {value!r}: {exc}") from None
        return value


class CollectorConfig(_Config):
    """Everything the collector needs."""

    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    influx: InfluxConfig = Field(default_factory=InfluxConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    rollup: RollupConfig = Field(default_factory=RollupConfig)
    dead_letter_path: Path = Field(
        default_factory=dead_letter_path,
        description="SQLite file keeping rejected messages with their reason",
    )
    dead_letter_max_rows: int = Field(
        default=100_000, ge=100, description="oldest dead letters are pruned beyond this"
    )
    sites_registry: Path | None = Field(
        default=None,
        description="the site registry `pantau sites add --district` writes (sites.yaml in the "
        "broker's account directory), reread when it changes: a registered site's data is "
        "stored under its registered district whatever it claims (a claim of another is "
        "recorded as a mismatch); unset: every site's claim is taken",
    )
    http_host: str = Field(default="127.0.0.1", description="bind address of /healthz, /metrics")
    http_port: int = Field(default=9108, ge=0, le=65535, description="0 picks a free port")
    instance: str = Field(
        default="collector-1", description="name of this collector in metrics and in InfluxDB"
    )
    self_metrics_interval_s: float = Field(
        default=5.0, gt=0, description="how often the collector writes its own stats to InfluxDB"
    )
