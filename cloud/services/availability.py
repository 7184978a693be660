"""Availability of each service over a period, by the same vantage-point rule as the problems
(``cloud.problems.service_checks.is_down``), judged per minute: a minute is *down* when the
cloud and most online districts failed in it, *up* when a vantage point had a say and it was
not down, *unknown* when nobody probed. A district whose agent was offline during a minute (by
the per-connection rule: a late will of an old connection does not count) is set aside for
that minute, so a cut district's failures count no downtime; so is a district whose path to the
service is in an approved maintenance window. The service's own windows are maintenance. Per
OPD, the sums of its services."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cloud.problems.service_checks import CLOUD, is_down
from cloud.schema import (
    SERVICE,
    SITE,
    SiteSessions,
    site_online_now,
    site_sessions,
    site_sessions_query,
)
from cloud.services.catalogue import Catalogue
from cloud.services.windows import ServiceWindow, overlap_ns
from pantau.core.units import NS_PER_S

Query = Callable[[str], Awaitable[list[dict[str, Any]]]]
BUCKET_S = 60  # the judged step: one probe period of the agents' default (60 s)


@dataclass
class Tally:
    """Seconds of a period by state."""

    up_s: float = 0.0
    down_s: float = 0.0
    unknown_s: float = 0.0
    maintenance_s: float = 0.0  # approved windows of the service itself (cloud.services.windows)

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


def _online_changes(
    before: Iterable[dict[str, Any]],
    sessions: Mapping[str, SiteSessions],
    during: Iterable[dict[str, Any]],
    start_ns: int,
) -> dict[str, list[tuple[int, bool]]]:
    """Per site, when its agent was online or not, by the per-connection rule of the fleet and
    the problems (``cloud.schema.site_online_now``): a Last Will of an older connection than
    the latest birth, delivered late, does not take the site offline."""
    changes: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    known = {site: (s.birth_seq, s.will_seq) for site, s in sessions.items()}
    for row in before:
        changes[row["site"]].append((start_ns, site_online_now(row, sessions.get(row["site"]))))
    for row in sorted(during, key=lambda r: int(r["time"])):
        site, seq = row["site"], row.get("seq")
        birth, will = known.get(site, (None, None))
        if row["online"] == 1:
            birth = None if seq is None else int(seq)
        elif seq is not None:
            will = int(seq) if will is None else max(will, int(seq))
        known[site] = (birth, will)
        online = site_online_now(row, SiteSessions(birth, will))
        changes[site].append((int(row["time"]), online))
    return changes


async def _offline_buckets(
    query: Query, start_ns: int, end_ns: int, step: int
) -> dict[str, set[int]]:
    """Per site, the buckets in which its agent was offline at any moment."""
    before = await query(
        f'SELECT last("online") AS "online", "seq" FROM "{SITE}" WHERE time < {start_ns} '
        'GROUP BY "site"'
    )
    sessions = site_sessions(await query(site_sessions_query(f"time < {start_ns}")))
    during = await query(
        f'SELECT "online", "seq" FROM "{SITE}" WHERE time >= {start_ns} AND time < {end_ns} '
        'GROUP BY "site"'
    )
    offline: dict[str, set[int]] = defaultdict(set)
    for site, points in _online_changes(before, sessions, during, start_ns).items():
        points.sort(key=lambda p: p[0])
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
    MAINTENANCE = "maintenance"  # an approved window of the service covers (part of) it


@dataclass(frozen=True, slots=True)
class Minute:
    """One judged minute: the vantage rule's verdict and how much of it was maintenance."""

    verdict: State  # up, down or unknown, from the vantage points not set aside
    maintenance_ns: int  # covered by the service's own windows

    @property
    def state(self) -> State:
        """Maintenance if a window of the service covers any of it, else the verdict."""
        return State.MAINTENANCE if self.maintenance_ns else self.verdict


async def judged_minutes(
    query: Query,
    catalogue: Catalogue,
    start_ns: int,
    end_ns: int,
    *,
    windows: Sequence[ServiceWindow] = (),
    districts: frozenset[str] | None = None,
) -> dict[str, list[Minute]]:
    """Per service of ``catalogue``: each minute of ``[start_ns, end_ns)`` judged. A district's
    vantage is set aside while its agent is offline or a window of its path to the service
    (``windows`` with a district) is in force. ``districts``: judge from the cloud and these
    districts' vantage points only (a reader scoped to them), ``None``: from all."""
    step = BUCKET_S * NS_PER_S
    rows = await query(
        f'SELECT last("ok") AS "ok" FROM "{SERVICE}" WHERE time >= {start_ns} '
        f'AND time < {end_ns} GROUP BY time({BUCKET_S}s, {start_ns % step}ns), "service", '
        '"site", "district" fill(none)'
    )
    offline = await _offline_buckets(query, start_ns, end_ns, step)
    # service -> bucket -> site -> (district, ok)
    seen: dict[str, dict[int, dict[str, tuple[str, bool]]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        district = r.get("district") or ""
        in_scope = districts is None or r["site"] == CLOUD or district in districts
        if r.get("ok") is not None and in_scope:
            bucket = (int(r["time"]) - start_ns) // step
            seen[r["service"]][bucket][r["site"]] = (district, bool(r["ok"]))
    buckets = -(-(end_ns - start_ns) // step)
    out: dict[str, list[Minute]] = {}
    for check in catalogue.services:
        own = [w for w in windows if w.service == check.name]
        whole = [w for w in own if w.district is None]
        minutes = out[check.name] = []
        for bucket in range(buckets):
            lo = start_ns + bucket * step
            hi = min(lo + step, end_ns)
            paths = {w.district for w in own if w.district and w.start_ns < hi and w.end_ns > lo}
            views = seen.get(check.name, {}).get(bucket, {})
            votes = [
                ok
                for site, (district, ok) in views.items()
                if site != CLOUD
                and bucket not in offline.get(site, set())
                and district not in paths
            ]
            cloud = views[CLOUD][1] if CLOUD in views else None
            verdict = is_down(cloud, votes)
            state = State.UNKNOWN if verdict is None else State.DOWN if verdict else State.UP
            minutes.append(Minute(state, overlap_ns(whole, lo, hi)))
    return out


async def service_minutes(
    query: Query,
    catalogue: Catalogue,
    start_ns: int,
    end_ns: int,
    *,
    windows: Sequence[ServiceWindow] = (),
    districts: frozenset[str] | None = None,
) -> dict[str, list[State]]:
    """Per service of ``catalogue``: its state in each minute of ``[start_ns, end_ns)``
    (``judged_minutes``)."""
    judged = await judged_minutes(
        query, catalogue, start_ns, end_ns, windows=windows, districts=districts
    )
    return {name: [m.state for m in minutes] for name, minutes in judged.items()}


async def service_availability(
    query: Query,
    catalogue: Catalogue,
    start_ns: int,
    end_ns: int,
    *,
    windows: Sequence[ServiceWindow] = (),
    districts: frozenset[str] | None = None,
) -> dict[str, Tally]:
    """Per service of ``catalogue``: seconds up, down, unknown and in maintenance (approved
    ``windows`` of the service itself, to the nanosecond) in ``[start_ns, end_ns)``, judged as
    ``judged_minutes`` does."""
    step = BUCKET_S * NS_PER_S
    out: dict[str, Tally] = {}
    judged = await judged_minutes(
        query, catalogue, start_ns, end_ns, windows=windows, districts=districts
    )
    for name, minutes in judged.items():
        tally = out[name] = Tally()
        for bucket, minute in enumerate(minutes):
            length = min(step, end_ns - start_ns - bucket * step)
            tally.maintenance_s += minute.maintenance_ns / NS_PER_S
            rest = (length - minute.maintenance_ns) / NS_PER_S
            if minute.verdict is State.UP:
                tally.up_s += rest
            elif minute.verdict is State.DOWN:
                tally.down_s += rest
            else:
                tally.unknown_s += rest
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
