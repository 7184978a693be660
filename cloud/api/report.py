"""The monthly availability report: JSON, CSV or a printable page."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from cloud.api.deps import influx_client, state_store
from cloud.api.maintenance import window_out
from cloud.audit import Summary
from cloud.auth.deps import read_principal
from cloud.auth.principal import Principal
from cloud.auth.scope import scoped_report, site_districts
from cloud.influx import InfluxClient
from cloud.maintenance import StateStore
from cloud.report.monthly import build_report, month_span
from cloud.report.remediation import remediation_json
from cloud.report.render import to_csv, to_html
from cloud.report.services import services_json


def report_router() -> APIRouter:
    """The route /api/report."""
    router = APIRouter(prefix="/api", tags=["availability"])

    @router.get(
        "/report",
        responses={200: {"content": {"text/csv": {}, "text/html": {}}}},
    )
    async def report(
        request: Request,
        client: Annotated[InfluxClient, Depends(influx_client)],
        state: Annotated[StateStore, Depends(state_store)],
        principal: Annotated[Principal, Depends(read_principal)],
        month: Annotated[str, Query(description="calendar month, YYYY-MM", max_length=7)],
        tz: Annotated[str, Query(description="IANA timezone of the month", max_length=64)] = (
            "Asia/Jakarta"
        ),
        format: Annotated[Literal["json", "csv", "html"], Query()] = "json",
        lang: Annotated[
            Literal["id", "en"] | None,
            Query(description="language of the page (default: the signed-in user's)"),
        ] = None,
    ) -> Any:
        """Availability per district, site and camera for a calendar month, with maintenance
        (only the caller's districts)."""
        try:
            month_span(month, tz)
        except (ValueError, KeyError) as exc:
            raise HTTPException(400, f"{exc}") from None
        built = await build_report(
            client,
            state,
            month=month,
            timezone=tz,
            default_interval_s=request.app.state.default_probe_interval_s,
            services_catalogue=request.app.state.services_catalogue,
            # the services as the cloud and the reader's districts see them (docs/services.md)
            service_districts=None
            if principal.districts is None
            else frozenset(principal.districts),
        )
        built = scoped_report(built, principal, await site_districts(client, principal))
        if format == "csv":
            return Response(to_csv(built), media_type="text/csv")
        if format == "html":
            return HTMLResponse(to_html(built, lang or principal.lang))
        return {
            "month": built.month,
            "timezone": built.timezone,
            "from": built.start.isoformat(),
            "to": built.end.isoformat(),
            "districts": [r.as_dict() for r in built.districts],
            "sites": [r.as_dict() for r in built.sites],
            "cameras": [r.as_dict() for r in built.cameras],
            "maintenance": [
                {
                    **window_out(m).model_dump(mode="json"),
                    "moved_down_seconds": built.moved_by_window.get(m.id),
                }
                for m in built.maintenance
            ],
            "retro_moved_seconds": round(built.retro_moved_seconds, 3),
            "audit": audit_json(built.audit),
            "services": services_json(built.services),
            "remediation_summary": remediation_json(built.remediation),
        }

    return router


def audit_json(summary: Summary | None) -> dict[str, Any] | None:
    """The month's audit summary: counts per event, its rows, the chain head and whether the
    chain verifies (the head is what `pantau audit verify --anchor ID:HASH` checks later)."""
    if summary is None:
        return None
    verdict = summary.verdict
    return {
        "counts": summary.counts,
        "first_id": summary.first_id,
        "last_id": summary.last_id,
        "head": (
            {"id": summary.head.last_id, "hash": summary.head.last_hash} if summary.head else None
        ),
        "verified": bool(verdict and verdict.ok),
        "broken_at": None if verdict is None or verdict.ok else verdict.row,
        "problem": None if verdict is None or verdict.ok else verdict.problem,
    }
