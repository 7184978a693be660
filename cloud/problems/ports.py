"""A camera's switch port now, and what it says of a camera that does not answer: "down: link"
(port down or not powered: cable or power) or "hung" (port up and powered, RTSP silent)."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cloud.problems.config import Severity
from cloud.problems.model import Observation, Verdict
from cloud.schema import CAMERA_TAG, SITE_TAG, SWITCH_PORT, SWITCH_TAG
from pantau.core.units import NS_PER_S

Query = Callable[[str], Awaitable[list[dict[str, Any]]]]
LAST_PORT_FIELDS = 'last("switch_ok") AS "switch_ok", "port", "powered", "error"'


class PortVerdict(enum.StrEnum):
    """What a camera's port says about it."""

    LINK_DOWN = "down: link"  # port down, or PoE not delivering: cable or power
    HUNG = "hung"  # port up and powered, the camera does not answer
    SWITCH_DOWN = "switch unreachable"  # the switch did not answer: its ports are unknown
    UNKNOWN = "unknown"  # no fresh port reading (no switch configured)


@dataclass(frozen=True, slots=True)
class PortNow:
    """The latest reading of the port a camera hangs on."""

    switch: str
    switch_ok: bool
    link_up: bool | None
    powered: bool | None
    time_ns: int

    @property
    def verdict(self) -> PortVerdict:
        """What the port says of a camera that does not answer."""
        if not self.switch_ok:
            return PortVerdict.SWITCH_DOWN
        if self.link_up is False or self.powered is False:
            return PortVerdict.LINK_DOWN
        if self.link_up:
            return PortVerdict.HUNG
        return PortVerdict.UNKNOWN


def _flag(value: Any) -> bool | None:
    return None if value is None else int(value) == 1


async def ports_now(query: Query, now_ns: int, fresh_s: float) -> dict[tuple[str, str], PortNow]:
    """Each camera's port by ``(site, camera)``, from readings younger than ``fresh_s``."""
    rows = await query(
        f'SELECT {LAST_PORT_FIELDS} FROM "{SWITCH_PORT}" '
        f"WHERE time <= {now_ns} AND time > {now_ns - int(fresh_s * NS_PER_S)} "
        f'GROUP BY "{SITE_TAG}", "{CAMERA_TAG}", "{SWITCH_TAG}"'
    )
    return {
        (row[SITE_TAG], row[CAMERA_TAG]): PortNow(
            switch=row[SWITCH_TAG],
            switch_ok=row["switch_ok"] == 1,
            link_up=_flag(row.get("port")),
            powered=_flag(row.get("powered")),
            time_ns=int(row["time"]),
        )
        for row in rows
        if row.get(CAMERA_TAG)
    }


def camera_title_cause(port: PortNow | None, cause: str) -> tuple[str, str]:
    """The title and cause of a camera that does not answer, told apart by its port."""
    verdict = port.verdict if port is not None else PortVerdict.UNKNOWN
    if verdict is PortVerdict.LINK_DOWN:
        assert port is not None
        what = "link down" if port.link_up is False else "no PoE power"
        return "camera down: link", f"down: link ({what} on {port.switch}; cable or power)"
    if verdict is PortVerdict.HUNG:
        assert port is not None
        return "camera hung", f"hung (port up and powered on {port.switch}): {cause}"
    return "camera down", cause


def switch_observations(
    ports: dict[tuple[str, str], PortNow],
    folded: dict[tuple[str, str], list[dict[str, Any]]],
    offline_sites: set[str],
    districts: dict[str, str],
    severity: Severity,
) -> list[Observation]:
    """One observation per switch of an online site: bad while it does not answer, with the
    cameras it powers folded under it (as a site offline folds its cameras)."""
    switches: dict[tuple[str, str], bool] = {}
    for (site, _camera), port in ports.items():
        if site not in offline_sites:
            switches[(site, port.switch)] = switches.get((site, port.switch), True) and (
                port.switch_ok
            )
    return [
        Observation(
            key=f"switch:{site}/{switch}",
            rule="switch",
            title="switch unreachable (its cameras' ports unknown)",
            severity=severity,
            verdict=Verdict.GOOD if ok else Verdict.BAD,
            site=site,
            district=districts.get(site, ""),
            camera=None,
            subject=f"{site}/{switch}",
            since_ns=None,
            cause="switch answering" if ok else "the switch does not answer SNMP",
            details={"cameras": sorted(folded.get((site, switch), []), key=lambda e: e["camera"])}
            if not ok
            else {},
        )
        for (site, switch), ok in sorted(switches.items())
    ]
