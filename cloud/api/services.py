"""E-government services: their state now and availability per service and per OPD (behind
identity, ``/api/services``), and the public status page for citizens (``/status``, no identity,
nothing internal: a service's public name, up/down, since when)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from cloud.api.deps import influx_client, problem_response, state_store
from cloud.api.schemas import PublicServiceOut, ServiceAvailabilityOut, ServiceNowOut
from cloud.api.status_page import page_language, render
from cloud.api.timeconv import to_ns
from cloud.auth.deps import PUBLIC, read_principal
from cloud.auth.principal import Principal
from cloud.influx import InfluxClient, series_rows
from cloud.maintenance import StateStore, WindowKind
from cloud.services.availability import Tally, by_opd, service_availability
from cloud.services.catalogue import Catalogue, load_catalogue
from cloud.services.status import ServiceNow, lookback, services_now
from cloud.services.windows import ServiceWindow, service_windows
from pantau.core.configfile import ConfigError

PUBLIC_CACHE_S = 30.0  # the public page reads InfluxDB at most this often, whoever asks
STATUS_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_NO_CATALOGUE: dict[int | str, dict[str, Any]] = {
    404: problem_response("no service catalogue configured (pantau api --services FILE)"),
    503: problem_response("the service catalogue file is invalid"),
}


def _catalogue(request: Request) -> Catalogue:
    path = request.app.state.services_catalogue
    if path is None:
        raise HTTPException(404, "no service catalogue: start the API with --services FILE")
    try:
        return load_catalogue(path)
    except ConfigError as exc:
        raise HTTPException(503, f"the service catalogue is invalid: {exc}") from None


def _utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)


def _when(ns: int | None) -> dt.datetime | None:
    return None if ns is None else _utc(ns)


async def _windows(store: StateStore, start_ns: int, end_ns: int) -> list[ServiceWindow]:
    """The services' approved windows overlapping ``[start_ns, end_ns)``."""
    span = (_utc(start_ns), _utc(end_ns))
    found = await asyncio.to_thread(
        store.list, overlapping=span, counting_only=True, kind=WindowKind.SERVICES
    )
    return service_windows(found)


async def _now(
    client: InfluxClient, store: StateStore, catalogue: Catalogue, principal: Principal
) -> list[ServiceNow]:
    async def query(q: str) -> list[dict[str, Any]]:
        return series_rows(await client.query(q))

    now = time.time_ns()
    windows = await _windows(store, *lookback(now))
    return await services_now(query, catalogue, now, windows=windows, districts=_scope(principal))


def _scope(principal: Principal) -> frozenset[str] | None:
    """The districts whose vantage points a reader sees (with the cloud's): a district user
    never sees another district's probes, nor a verdict they sway."""
    return None if principal.districts is None else frozenset(principal.districts)


def services_router() -> APIRouter:
    """``/api/services`` and ``/api/services/availability``."""
    router = APIRouter(prefix="/api/services", tags=["services"])

    @router.get("", response_model=list[ServiceNowOut], responses=_NO_CATALOGUE)
    async def services(
        request: Request,
        client: Annotated[InfluxClient, Depends(influx_client)],
        store: Annotated[StateStore, Depends(state_store)],
        principal: Annotated[Principal, Depends(read_principal)],
    ) -> list[ServiceNowOut]:
        """Every service of the catalogue: its state now and since when, judged from the cloud
        and the caller's districts (every district for a reader of all)."""
        now = await _now(client, store, _catalogue(request), principal)
        return [
            ServiceNowOut(
                name=s.name, title=s.title, opd=s.opd, state=s.state.value, since=_when(s.since_ns)
            )
            for s in now
        ]

    @router.get(
        "/availability",
        response_model=list[ServiceAvailabilityOut],
        responses={**_NO_CATALOGUE, 400: problem_response("'to' not after 'from', or over a year")},
    )
    async def availability(
        request: Request,
        client: Annotated[InfluxClient, Depends(influx_client)],
        store: Annotated[StateStore, Depends(state_store)],
        principal: Annotated[Principal, Depends(read_principal)],
        start: Annotated[dt.datetime, Query(alias="from", description="ISO 8601, inclusive")],
        end: Annotated[dt.datetime, Query(alias="to", description="ISO 8601, exclusive")],
    ) -> list[ServiceAvailabilityOut]:
        """Seconds up, down, unknown and in maintenance per service, then per OPD (``service``
        null), judged from the cloud and the caller's districts."""
        start_ns, end_ns = to_ns(start), to_ns(end)
        if not 0 < end_ns - start_ns <= 366 * 86400 * 10**9:
            raise HTTPException(400, "'to' must be after 'from', at most a year later")
        catalogue = _catalogue(request)

        async def query(q: str) -> list[dict[str, Any]]:
            return series_rows(await client.query(q))

        tallies = await service_availability(
            query,
            catalogue,
            start_ns,
            end_ns,
            windows=await _windows(store, start_ns, end_ns),
            districts=_scope(principal),
        )
        owners = {s.name: s.opd for s in catalogue.services}
        rows: list[tuple[str | None, str, Tally]]
        rows = [(name, owners[name], t) for name, t in tallies.items()]
        rows += [(None, opd, t) for opd, t in sorted(by_opd(catalogue, tallies).items())]
        return [
            ServiceAvailabilityOut(
                service=name,
                opd=opd,
                up_seconds=t.up_s,
                down_seconds=t.down_s,
                unknown_seconds=t.unknown_s,
                maintenance_seconds=t.maintenance_s,
                availability=t.availability,
            )
            for name, opd, t in rows
        ]

    return router


def status_router() -> APIRouter:
    """The public status page ``/status`` and its data ``/status.json`` (no identity)."""
    # Out of the API's schema, as the technician page is: everything in the schema needs identity.
    router = APIRouter(tags=["status"], include_in_schema=False)

    async def public(request: Request, client: InfluxClient) -> list[PublicServiceOut]:
        cached = getattr(request.app.state, "status_cache", None)
        if cached is not None and time.monotonic() - cached[0] < PUBLIC_CACHE_S:
            result: list[PublicServiceOut] = cached[1]
            return result
        store: StateStore = request.app.state.store
        now = await _now(client, store, _catalogue(request), PUBLIC)
        result = [
            PublicServiceOut(title=s.title, state=s.state.value, since=_when(s.since_ns))
            for s in now
        ]
        request.app.state.status_cache = (time.monotonic(), result)
        return result

    @router.get("/status.json", response_model=list[PublicServiceOut])
    async def status_json(
        request: Request, client: Annotated[InfluxClient, Depends(influx_client)]
    ) -> list[PublicServiceOut]:
        """Each public service: up, down or unknown, and since when."""
        return await public(request, client)

    @router.get("/status", response_class=HTMLResponse)
    async def status_page(
        request: Request,
        client: Annotated[InfluxClient, Depends(influx_client)],
        lang: Annotated[str | None, Query(max_length=8)] = None,
    ) -> HTMLResponse:
        """The citizens' page: rendered here, no script; Indonesian unless ``?lang=en``
        (``status_page.page_language``)."""
        page = render(await public(request, client), page_language(lang, request.app.state.lang))
        return HTMLResponse(page, headers={"Content-Security-Policy": STATUS_CSP})

    return router
