"""Config of the cabinet's PoE switch and of the commands the agent takes (``site.yaml``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pantau.core.contract import Ident
from pantau.core.units import Seconds


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SwitchConfig(_Config):
    """A managed PoE switch read over SNMP v2c (IF-MIB, POWER-ETHERNET-MIB)."""

    id: Ident = Field(description="switch id, unique within the site")
    host: str = Field(description="the switch's management address")
    port: int = Field(default=161, ge=1, le=65535, description="SNMP UDP port")
    community: str = Field(
        default="public", min_length=1, repr=False, description="v2c community for reading"
    )
    write_community: str | None = Field(
        default=None,
        min_length=1,
        repr=False,
        description="v2c community allowed to SET pethPsePortAdminEnable (absent: no power-cycle)",
    )
    pse_group: int = Field(
        default=1, ge=1, le=2**31 - 1, description="pethPsePortGroupIndex of the ports (the unit)"
    )
    power_oid: str | None = Field(
        default=None,
        pattern=r"^[0-9]+(\.[0-9]+)*$",
        description="optional vendor table of per-port power in milliwatts, indexed by ifIndex "
        "(POWER-ETHERNET-MIB has none; e.g. Cisco cpeExtPsePortPwrConsumption)",
    )
    timeout_s: Seconds = Field(default=2.0, gt=0, le=30, description="per request")
    retries: int = Field(default=1, ge=0, le=5, description="retries per request")


class SwitchPortRef(_Config):
    """Where a camera is plugged in."""

    switch: Ident = Field(description="a switch id from ``switches``")
    port: int = Field(ge=1, le=2**31 - 1, description="the port's ifIndex (and PoE port index)")


class CommandsConfig(_Config):
    """Signed commands from the command center (power-cycle, reboot)."""

    public_key: str = Field(
        min_length=40,
        max_length=60,
        description="the command center's Ed25519 public key, base64 (`pantau keys init`)",
    )
    max_skew_s: Seconds = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="a command issued this far in the future is still taken (clocks differ)",
    )
    power_off_s: Seconds = Field(
        default=5.0, gt=0, le=120, description="how long PoE stays off in a power-cycle"
    )
    recovery_timeout_s: Seconds = Field(
        default=180.0,
        gt=0,
        le=1800,
        description="after an action, how long to probe the camera before saying it stayed down",
    )
    recovery_probe_s: Seconds = Field(
        default=2.0, gt=0, le=60, description="probe period while waiting for the camera"
    )
