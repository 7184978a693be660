"""A camera's switch port now, and what it says of a camera that does not answer: "down: link"
(port down or not powered: cable or power) or "hung" (port up and powered, RTSP silent)."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

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
