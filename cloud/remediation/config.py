"""Settings of remediation: where the signing key is, and the automatic policy's guardrails."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from cloud.config import MqttConfig
from pantau.core.commands import MAX_COMMAND_LIFETIME_S

KEY_FILE_ENV = "PANTAU_COMMAND_KEY_FILE"


class PolicyConfig(BaseModel):
    """The opt-in automatic policy: a hung camera gets one power-cycle, within guardrails."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=False, description="act automatically (opt-in)")
    hung_probes: int = Field(
        default=3, ge=1, le=100, description="consecutive hung probes before a power-cycle"
    )
    max_per_camera_day: int = Field(
        default=1, ge=0, le=20, description="automatic actions per camera in 24 h at most"
    )
    max_site_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="share of a site's cameras that may be acted on at once (at least one)",
    )
    min_battery_pct: float = Field(
        default=50.0, ge=0, le=100, description="on battery below this charge: no action"
    )
    settle_s: float = Field(
        default=300.0,
        gt=0,
        le=MAX_COMMAND_LIFETIME_S,
        description="an action without an answer counts as running for this long",
    )


class RemediationConfig(BaseModel):
    """How the command center signs and sends commands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    broker: MqttConfig = Field(
        default_factory=lambda: MqttConfig(client_id="pantau-remediation-1"),
        description="the broker commands go through (an account that may publish commands)",
    )
    interval_s: float = Field(default=10.0, gt=0, le=3600, description="run the policy this often")
    key_file: Path | None = Field(
        default=None, description=f"the Ed25519 private key (base64); else ${KEY_FILE_ENV}"
    )
    command_ttl_s: float = Field(
        default=120.0, gt=0, le=MAX_COMMAND_LIFETIME_S, description="a command's validity"
    )
    policy: PolicyConfig = Field(default_factory=PolicyConfig)

    def key_path(self) -> Path | None:
        """The key file from the config, else from the environment, else None."""
        if self.key_file is not None:
            return self.key_file
        env = os.environ.get(KEY_FILE_ENV)
        return Path(env) if env else None
