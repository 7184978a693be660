"""Availability of each service over a period, by the same vantage-point rule as the problems
(``cloud.problems.service_checks.is_down``), judged per minute: a minute is *down* when the
cloud and most online districts failed in it, *up* when a vantage point had a say and it was
not down, *unknown* when nobody probed. A district whose agent was offline during a minute is
set aside for that minute, so a cut district's failures count no downtime. Per OPD, the sums of
its services."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cloud.problems.service_checks import CLOUD, is_down
from cloud.schema import SERVICE, SITE
from cloud.services.catalogue import Catalogue
from pantau.core.units import NS_PER_S

Query = Callable[[str], Awaitable[list[dict[str, Any]]]]
BUCKET_S = 60  # the judged step: one probe period of the agents' default (60 s)


@dataclass
class Tally:
    """Seconds of a period by state."""

    up_s: float = 0.0
    down_s: float = 0.0
    unknown_s: float = 0.0
    maintenance_s: float = 0.0  # service maintenance windows: not built yet (docs/services.md)

    @property
    def availability(self) -> float | None:
        """Up over up + down (unknown and maintenance set aside); ``None`` without either."""
        judged = self.up_s + self.down_s
        return None if judged == 0 else self.up_s / judged

    def add(self, other: Tally) -> None:
        """Sum ``other`` into this one."""
        self.up_s += other.up_s
        self.down_s += other.down_s
        self.unknown_s += other.unknown_s
        self.maintenance_s += other.maintenance_s


def _offline_buckets(
    before: Iterable[dict[str, Any]],
    during: Iterable[dict[str, Any]],
    start_ns: int,
    end_ns: int,
    step: int,
) -> dict[str, set[int]]:
    """Per site, the buckets in which its agent was offline at any moment."""
    changes: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    for row in before:
        changes[row["site"]].append((start_ns, bool(row["online"])))
    for row in during:
        changes[row["site"]].append((int(row["time"]), bool(row["online"])))
    offline: dict[str, set[int]] = defaultdict(set)
    for site, points in changes.items():
        points.sort()
        for i, (t, online) in enumerate(points):
            if not online:
                until = points[i + 1][0] if i + 1 < len(points) else end_ns
                first, last = (t - start_ns) // step, (max(t, until - 1) - start_ns) // step
                offline[site].update(range(first, last + 1))
    return offline


class State(enum.StrEnum):
    """A service's state in one minute (or now)."""

    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"


async def service_minutes(
    query: Query, catalogue: Catalogue, start_ns: int, end_ns: int
) -> dict[str, list[State]]:
    """Per service of ``catalogue``: its state in each minute of ``[start_ns, end_ns)``."""
    step = BUCKET_S * NS_PER_S
    rows = await query(
        f'SELECT last("ok") AS "ok" FROM "{SERVICE}" WHERE time >= {start_ns} '
        f'AND time < {end_ns} GROUP BY time({BUCKET_S}s, {start_ns % step}ns), "service", "site" '
        "fill(none)"
    )
    before = await query(
        f'SELECT last("online") AS "online" FROM "{SITE}" WHERE time < {start_ns} GROUP BY "site"'
    )
    during = await query(
        f'SELECT "online" FROM "{SITE}" WHERE time >= {start_ns} AND time < {end_ns} '
        'GROUP BY "site"'
    )
    offline = _offline_buckets(before, during, start_ns, end_ns, step)
    # service -> bucket -> site -> ok
    seen: dict[str, dict[int, dict[str, bool]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        if r.get("ok") is not None:
            bucket = (int(r["time"]) - start_ns) // step
            seen[r["service"]][bucket][r["site"]] = bool(r["ok"])
    buckets = -(-(end_ns - start_ns) // step)
    out: dict[str, list[State]] = {}
    for check in catalogue.services:
        states = out[check.name] = []
        for bucket in range(buckets):
            views = seen.get(check.name, {}).get(bucket, {})
            districts = [
                ok
                for site, ok in views.items()
                if site != CLOUD and bucket not in offline.get(site, set())
            ]
            verdict = is_down(views.get(CLOUD), districts)
            states.append(State.UNKNOWN if verdict is None else State.DOWN if verdict else State.UP)
    return out


async def service_availability(
    query: Query, catalogue: Catalogue, start_ns: int, end_ns: int
) -> dict[str, Tally]:
    """Per service of ``catalogue``: seconds up, down and unknown in ``[start_ns, end_ns)``."""
    step = BUCKET_S * NS_PER_S
    out: dict[str, Tally] = {}
    for name, states in (await service_minutes(query, catalogue, start_ns, end_ns)).items():
        tally = out[name] = Tally()
        for bucket, state in enumerate(states):
            length = min(step, end_ns - start_ns - bucket * step) / NS_PER_S
            if state is State.UP:
                tally.up_s += length
            elif state is State.DOWN:
                tally.down_s += length
            else:
                tally.unknown_s += length
    return out


def current_run(states: list[State]) -> tuple[State, int]:
    """The latest known state and how many minutes it has lasted (unknown minutes at the end,
    a probe period not yet judged, are skipped; in a run, they do not break it)."""
    known = [(i, s) for i, s in enumerate(states) if s is not State.UNKNOWN]
    if not known:
        return State.UNKNOWN, len(states)
    state = known[-1][1]
    first = 0
    for i, s in reversed(known):
        if s is not state:
            first = i + 1
            break
    return state, len(states) - first


def by_opd(catalogue: Catalogue, tallies: dict[str, Tally]) -> dict[str, Tally]:
    """The services' tallies summed per owner office."""
    out: dict[str, Tally] = defaultdict(Tally)
    for check in catalogue.services:
        if check.name in tallies:
            out[check.opd].add(tallies[check.name])
    return dict(out)
