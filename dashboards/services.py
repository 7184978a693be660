"""E-government services: status by district (probing site) x service, answer times and days
to certificate expiry (docs/services.md). The verdicts themselves are the problems'."""

from __future__ import annotations

from grafanalib import core as g

from cloud.schema import SERVICE
from dashboards.panels import bar_gauge, dashboard, fresh_variable, pos, q, state_timeline, table
from dashboards.panels import timeseries as series

UID = "pantau-services"

STATUS_NOW = (
    f'SELECT last("ok") AS "ok", "stage", "status", "total_ms" FROM "{SERVICE}" '
    'WHERE time > now() - $fresh GROUP BY "district", "site", "service"'
)
UP_BY_VANTAGE = (
    f'SELECT last("ok") AS "ok" FROM "{SERVICE}" WHERE $timeFilter '
    'GROUP BY time($__interval), "service", "site" fill(none)'
)
ANSWER_TIME = (
    f'SELECT median("total_ms") AS "answer ms" FROM "{SERVICE}" WHERE $timeFilter AND "ok" = 1 '
    'GROUP BY time($__interval), "service" fill(none)'
)
CERT_DAYS = (
    f'SELECT min("cert_days") AS "days" FROM "{SERVICE}" WHERE time > now() - $fresh '
    'GROUP BY "service"'
)


def build() -> g.Dashboard:
    """The Services dashboard."""
    panels: list[g.Panel] = [
        table(
            "Status now: district (probing site) x service",
            STATUS_NOW,
            pos(0, 0, 24, 9),
            description="each vantage's latest probe within $fresh: ok 1/0, the failing step, "
            "the HTTP status and the answer time; site 'cloud' is the cloud's own prober",
        ),
        state_timeline(
            "Reachable, per service and vantage",
            UP_BY_VANTAGE,
            pos(0, 9, 24, 10),
            description="a district failing alone while the cloud reaches the service is that "
            "district's path, not the service",
        ),
        series(
            "Answer time (median of passing probes)", [q(ANSWER_TIME)], pos(0, 19, 16, 8), unit="ms"
        ),
        bar_gauge(
            "Days to certificate expiry",
            CERT_DAYS,
            pos(16, 19, 8, 8),
            unit="d",
            low=14.0,
            description="the soonest any vantage saw; below the service's tls_warn_days is a "
            "warning problem",
        ),
    ]
    return dashboard("Pantau — Services", UID, panels, variables=[fresh_variable()])
