"""The collector's own HTTP surface: ``/healthz`` and ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cloud.metrics import CollectorMetrics


def create_collector_app(
    metrics: CollectorMetrics, health: Callable[[], dict[str, Any]]
) -> FastAPI:
    """Build the app; ``health()`` returns a dict whose ``ok`` decides 200 or 503."""
    app = FastAPI(title="pantau collector", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        state = health()
        return JSONResponse(state, status_code=200 if state["ok"] else 503)

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
