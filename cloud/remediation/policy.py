"""The automatic policy, decided purely on observations (no I/O): which hung cameras get one
power-cycle now, and why each of the others does not."""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cloud.remediation.config import PolicyConfig
from pantau.core.units import NS_PER_S

DAY_NS = 86_400 * NS_PER_S
POLICY_TRIGGER = "policy"


@dataclass(frozen=True, slots=True)
class HungCamera:
    """A camera whose port is up and powered while its RTSP does not answer."""

    site: str
    district: str
    camera: str
    hung_probes: int  # consecutive latest probes down, with the port up and powered now
    in_maintenance: bool
    problem_id: int | None = None


@dataclass(frozen=True, slots=True)
class SitePower:
    """A site's size and power: how many cameras it has, and its UPS state."""

    cameras: int
    on_battery: bool | None = None  # None: no UPS reading
    battery_pct: float | None = None


@dataclass(frozen=True, slots=True)
class PastAction:
    """An action already sent (manual or automatic), and whether it was answered."""

    site: str
    camera: str
    issued_ns: int
    answered: bool


class Skip(enum.StrEnum):
    """Why a hung camera is not acted on now."""

    NOT_YET = "not hung for enough probes"
    MAINTENANCE = "in maintenance"
    DAILY_LIMIT = "daily limit reached"
    RUNNING = "an action on it is still running"
    SITE_SHARE = "too many of the site's cameras acted on at once"
    BATTERY = "site on battery below the threshold"


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer for one hung camera: act (``skip`` None) or why not."""

    camera: HungCamera
    skip: Skip | None

    @property
    def act(self) -> bool:
        """True if the camera gets a power-cycle now."""
        return self.skip is None


def site_limit(cameras: int, share: float) -> int:
    """How many of a site's cameras may be acted on at once: the share, at least one."""
    return max(1, math.floor(cameras * share + 1e-9))


def decide(
    hung: Iterable[HungCamera],
    sites: Mapping[str, SitePower],
    past: Iterable[PastAction],
    config: PolicyConfig,
    now_ns: int,
) -> list[Decision]:
    """One decision per hung camera, in a stable order (site, camera)."""
    settle_ns = int(config.settle_s * NS_PER_S)
    past = list(past)
    today = Counter((a.site, a.camera) for a in past if a.issued_ns > now_ns - DAY_NS)
    running = {
        (a.site, a.camera) for a in past if not a.answered and a.issued_ns > now_ns - settle_ns
    }
    busy = Counter(site for site, _ in running)
    decisions = []
    for cam in sorted(hung, key=lambda c: (c.site, c.camera)):
        key = (cam.site, cam.camera)
        power = sites.get(cam.site, SitePower(cameras=1))
        skip: Skip | None = None
        if cam.in_maintenance:
            skip = Skip.MAINTENANCE
        elif cam.hung_probes < config.hung_probes:
            skip = Skip.NOT_YET
        elif key in running:
            skip = Skip.RUNNING
        elif today[key] >= config.max_per_camera_day:
            skip = Skip.DAILY_LIMIT
        elif _low_battery(power, config.min_battery_pct):
            skip = Skip.BATTERY
        elif busy[cam.site] >= site_limit(power.cameras, config.max_site_share):
            skip = Skip.SITE_SHARE
        if skip is None:
            busy[cam.site] += 1
        decisions.append(Decision(cam, skip))
    return decisions


def _low_battery(power: SitePower, min_pct: float) -> bool:
    """On battery (or no mains reading) with a charge below ``min_pct``, or on battery with
    no charge reading at all: the cabinet may not survive a camera's boot surge."""
    if power.on_battery is False:
        return False
    if power.battery_pct is None:
        return power.on_battery is True
    return power.battery_pct < min_pct
