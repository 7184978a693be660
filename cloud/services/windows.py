"""Maintenance windows of e-government services (``cloud.maintenance``, ``service`` set): how
they weigh in availability and problems.

A window without a district is the service's own maintenance: its seconds are maintenance,
not downtime, and the service's problems are opened quiet (not announced). A window with a
district is maintenance of that district's path to the service: its vantage point is set aside
(as a cut-off district is) and its "unreachable from the district" problem is quiet.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from cloud.maintenance import Maintenance, StateStore, WindowKind

# The service rules whose problems a window of the service quiets (cloud/problems/service_checks).
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
SERVICE_RULES = frozenset({"service_down", "service_degraded", "service_cert", "service_slow"})


@dataclass(frozen=True, slots=True)
class ServiceWindow:
    """An approved window of ``service`` in nanoseconds (``district``: only that vantage)."""

    service: str
    district: str | None
    start_ns: int
    end_ns: int


def service_windows(windows: Iterable[Maintenance]) -> list[ServiceWindow]:
    """The services' windows that count (approved, not cancelled) among ``windows``."""
    return [
        ServiceWindow(
            m.service,
            m.district,
            _ns(m.start),
            _ns(m.end),
        )
        for m in windows
        if m.service is not None and m.counts
    ]


def _ns(when: dt.datetime) -> int:
    return (when - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def overlap_ns(windows: Sequence[ServiceWindow], start_ns: int, end_ns: int) -> int:
    """How much of ``[start_ns, end_ns)`` the windows cover (their union)."""
    spans = sorted(
        (max(w.start_ns, start_ns), min(w.end_ns, end_ns))
        for w in windows
        if w.start_ns < end_ns and w.end_ns > start_ns
    )
    covered, reach = 0, start_ns
    for lo, hi in spans:
        begin = max(lo, reach)
        if hi > begin:
            covered += hi - begin
            reach = hi
    return covered


PathsAside = Callable[[int], Awaitable[Mapping[str, frozenset[str]]]]


def paths_aside(windows: Iterable[ServiceWindow], now_ns: int) -> dict[str, frozenset[str]]:
    """Per service, the districts whose path to it is in maintenance at ``now_ns``."""
    out: dict[str, set[str]] = {}
    for w in windows:
        if w.district is not None and w.start_ns <= now_ns < w.end_ns:
            out.setdefault(w.service, set()).add(w.district)
    return {name: frozenset(districts) for name, districts in out.items()}


def paths_aside_from(store: StateStore) -> PathsAside:
    """``paths_aside`` at an instant from the approved windows in ``store`` (for the rules)."""

    async def aside(now_ns: int) -> Mapping[str, frozenset[str]]:
        instant = dt.datetime.fromtimestamp(now_ns / 1e9, tz=dt.UTC)
        found = await asyncio.to_thread(
            store.list,
            overlapping=(instant, instant + dt.timedelta(microseconds=1)),
            counting_only=True,
            kind=WindowKind.SERVICES,
        )
        return paths_aside(service_windows(found), now_ns)

    return aside


def quiets(windows: Iterable[ServiceWindow], rule: str, subject: str, district: str) -> bool:
    """True if a window (in force now) quiets a problem of ``rule`` about service ``subject``
    (``district``: the problem's vantage, for "unreachable from a district")."""
    if rule not in SERVICE_RULES:
        return False
    return any(
        w.service == subject
        and (w.district is None or (rule == "service_degraded" and w.district == district))
        for w in windows
    )
