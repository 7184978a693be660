"""Each service's state now and since when, by the per-minute vantage rule
(``availability.service_minutes``): what the status page and ``/api/services`` show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cloud.services.availability import BUCKET_S, Query, State, current_run, service_minutes
from cloud.services.catalogue import Catalogue
from cloud.services.windows import ServiceWindow
from pantau.core.units import NS_PER_S

LOOKBACK_S = 6 * 3600  # how far back "since" is looked for; older shows as "over 6 h"
FRESH_MINUTES = 5  # no judged minute in this many: unknown now


def lookback(now_ns: int) -> tuple[int, int]:
    """The span ``services_now`` judges: ``LOOKBACK_S`` up to the end of the current minute."""
    step = BUCKET_S * NS_PER_S
    end = now_ns // step * step + step  # the current minute, whole
    return end - LOOKBACK_S * NS_PER_S, end


@dataclass(frozen=True, slots=True)
class ServiceNow:
    """One service now: state, and since when (``None``: before the look-back)."""

    name: str
    title: str
    opd: str
    state: State
    since_ns: int | None


async def services_now(
    query: Query,
    catalogue: Catalogue,
    now_ns: int,
    *,
    windows: Sequence[ServiceWindow] = (),
    districts: frozenset[str] | None = None,
) -> list[ServiceNow]:
    """Every service of ``catalogue`` at ``now_ns`` (``windows``: the services' approved
    maintenance; ``districts``: judged from the cloud and these districts only)."""
    start, end = lookback(now_ns)
    minutes = await service_minutes(
        query, catalogue, start, end, windows=windows, districts=districts
    )
    step = BUCKET_S * NS_PER_S
    out = []
    for check in catalogue.services:
        states = minutes.get(check.name, [])
        trailing = len(states) - max(
            (i + 1 for i, s in enumerate(states) if s is not State.UNKNOWN), default=0
        )
        state, lasted = current_run(states)
        if trailing > FRESH_MINUTES:
            state, lasted = State.UNKNOWN, trailing
        since = None if lasted >= len(states) else end - lasted * step
        out.append(ServiceNow(check.name, check.title or check.name, check.opd, state, since))
    return out
