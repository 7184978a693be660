"""Pantau's own health: collector throughput, write latency, rejections, edge backlogs."""

from __future__ import annotations

from grafanalib import core as g

from cloud.schema import AGENT, COLLECTOR, FUTURE_REJECTED, GAP
from cloud.schema import REJECTED as REJECTED_MEASUREMENT
from dashboards.panels import bar_gauge, dashboard, pos, q, timeseries

UID = "pantau-health"

THROUGHPUT = (
    f'SELECT non_negative_derivative(last("written"), 1s) AS "written/s" FROM "{COLLECTOR}" '
    'WHERE $timeFilter GROUP BY time($__interval), "instance" fill(none)'
)
WRITE_LATENCY = (
    f'SELECT mean("write_latency_ms") AS "write latency" FROM "{COLLECTOR}" '
    'WHERE $timeFilter GROUP BY time($__interval), "instance" fill(none)'
)
PENDING = (
    f'SELECT max("pending_messages") AS "unacked messages" FROM "{COLLECTOR}" '
    'WHERE $timeFilter GROUP BY time($__interval), "instance" fill(none)'
)
REJECTED = (
    f'SELECT last("count") AS "rejected" FROM "{REJECTED_MEASUREMENT}" WHERE $timeFilter '
    'GROUP BY "reason"'
)
FUTURE = (
    f'SELECT last("count") AS "refused" FROM "{FUTURE_REJECTED}" WHERE $timeFilter GROUP BY "site"'
)
GAPS = f'SELECT sum("count") AS "readings lost" FROM "{GAP}" WHERE $timeFilter GROUP BY "site"'
EDGE_REFUSED = (
    f'SELECT last("rejected_total") AS "refused" FROM "{AGENT}" WHERE $timeFilter '
    'AND "rejected_total" > 0 GROUP BY "site"'
)
BACKLOG = (
    f'SELECT max("backlog") AS "queued" FROM "{AGENT}" WHERE $timeFilter '
    'GROUP BY time($__interval), "site" fill(none)'
)


def build() -> g.Dashboard:
    """The Pantau health dashboard."""
    panels: list[g.Panel] = [
        timeseries(
            "Collector throughput",
            [q(THROUGHPUT)],
            pos(0, 0, 12, 8),
            unit="short",
            description="readings written to InfluxDB per second",
        ),
        timeseries("InfluxDB write latency", [q(WRITE_LATENCY)], pos(12, 0, 12, 8), unit="ms"),
        bar_gauge(
            "Rejected messages by reason",
            REJECTED,
            pos(0, 8, 8, 8),
            unit="short",
            low=0.0,
            description="since each collector started; see the dead-letter store",
        ),
        timeseries("Unacknowledged messages held", [q(PENDING)], pos(8, 8, 16, 8)),
        timeseries(
            "Edge backlog per site",
            [q(BACKLOG)],
            pos(0, 16, 24, 8),
            description="readings in each agent's disk queue",
        ),
        bar_gauge(
            "Messages refused as future-stamped, per site (clock ahead)",
            FUTURE,
            pos(0, 30, 24, 6),
            unit="short",
            low=0.0,
            description="since each collector started; the readings wait at the site's edge "
            "until its clock is fixed (see the 'site clock wrong' problem)",
        ),
        bar_gauge(
            "Readings lost at the edge per site (gaps)",
            GAPS,
            pos(0, 24, 24, 6),
            unit="short",
            low=0.0,
            description="readings agents had to drop (queue bounds, disk trouble); each span "
            "counts as unknown in availability",
        ),
        bar_gauge(
            "Readings the cloud refused, set aside at the edge, per site",
            EDGE_REFUSED,
            pos(0, 36, 24, 6),
            unit="short",
            low=0.0,
            description="readings a collector answered as refused for good (schema, oversized, "
            "...): kept in the agent's <queue>.rejected.sqlite and never sent again; an agent "
            "newer than its collectors is the usual cause (docs/operations.md, upgrades)",
        ),
    ]
    return dashboard("Pantau — Health", UID, panels, tags=["ops"])
