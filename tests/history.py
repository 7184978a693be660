"""Recorded history written straight into InfluxDB, in the collector's own line format, so the
problem rules can be walked through an hour of known ground truth in seconds."""

from __future__ import annotations

from collections.abc import Callable

from cloud.influx import InfluxClient
from cloud.lineproto import format_line

S = 1_000_000_000


class History:
    """Points at ``t0_ns + seconds``; every device reports once per ``step_s``."""

    def __init__(self, t0_ns: int, step_s: int = 10) -> None:
        self.t0_ns = t0_ns
        self.step_s = step_s
        self.lines: list[str] = []

    def at(self, seconds: float) -> int:
        """Absolute nanoseconds of a relative time."""
        return self.t0_ns + int(seconds * S)

    def _steps(self, start_s: int, end_s: int) -> range:
        return range(start_s, end_s, self.step_s)

    def collector(self, start_s: int, end_s: int) -> None:
        """The collector's self-report (our pipeline is alive)."""
        for t in self._steps(start_s, end_s):
            self.lines.append(
                format_line("pantau_collector", {"instance": "c1"}, {"received": t}, self.at(t))
            )

    def site(
        self, site: str, district: str, start_s: int, end_s: int, *, will: bool = False
    ) -> None:
        """Birth at ``start_s``, agent reports until ``end_s``, Last Will there if ``will``."""
        tags = {"site": site, "district": district}
        self.lines.append(format_line("site", tags, {"online": 1}, self.at(start_s)))
        for t in self._steps(start_s, end_s):
            fields = {"backlog": 0, "dropped_total": 0, "oldest_age_s": 0.0}
            self.lines.append(format_line("agent", tags, fields, self.at(t)))
        if will:
            self.lines.append(format_line("site", tags, {"online": 0}, self.at(end_s)))

    def camera(
        self,
        site: str,
        district: str,
        camera: str,
        *,
        start_s: int,
        end_s: int,
        up: Callable[[int], bool] = lambda _t: True,
    ) -> None:
        """Probes every step; ``up(t)`` says whether the probe at ``t`` succeeded."""
        tags = {"site": site, "district": district, "camera": camera}
        state: bool | None = None
        since = 0
        for t in self._steps(start_s, end_s):
            now_up = up(t)
            if now_up != state:
                state, since = now_up, self.at(t)
            fields: dict[str, int | str | None] = {
                "up": 1 if now_up else 0,
                "cause": "ok" if now_up else "refused",
                "stage": None if now_up else "rtsp",
                "since": since,
            }
            self.lines.append(format_line("camera", tags, fields, self.at(t)))

    def sensor(
        self,
        site: str,
        sensor: str,
        kind: str,
        *,
        span: tuple[int, int],
        value: Callable[[int], float],
    ) -> None:
        """A cabinet sensor's value every step."""
        tags = {"site": site, "sensor": sensor, "kind": kind}
        for t in self._steps(*span):
            self.lines.append(format_line("sensor", tags, {"value": float(value(t))}, self.at(t)))

    async def write(self, client: InfluxClient) -> None:
        """Write everything, in chunks."""
        for i in range(0, len(self.lines), 5000):
            await client.write("\n".join(self.lines[i : i + 5000]).encode())
