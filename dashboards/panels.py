"""Small panel helpers: every panel queries the provisioned InfluxDB datasource in raw InfluxQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attr
from grafanalib import core as g
from grafanalib.influxdb import InfluxDBTarget

from cloud.schema import FRESH_S

DATASOURCE_UID = "pantau-influxdb"
DATASOURCE = {"type": "influxdb", "uid": DATASOURCE_UID}
SCHEMA_VERSION = 39  # Grafana 11.0's dashboard schema
FRESH_DEFAULT = f"{FRESH_S:g}s"  # "now" on the wall: the schema's freshness rule (90s)

GREEN, AMBER, RED = "green", "#EAB839", "red"


def q(query: str, ref: str = "A", *, table: bool = False, alias: str = "") -> InfluxDBTarget:
    """A raw InfluxQL target on the pantau datasource."""
    return InfluxDBTarget(
        query=" ".join(query.split()),
        rawQuery=True,
        refId=ref,
        format="table" if table else "time_series",
        datasource=DATASOURCE,
        alias=alias,
    )


def pos(x: int, y: int, w: int, h: int) -> g.GridPos:
    """Grid position on Grafana's 24-column grid."""
    return g.GridPos(h=h, w=w, x=x, y=y)


def thresholds(*steps: tuple[float | None, str]) -> list[g.Threshold]:
    """Absolute thresholds, lowest first (``None`` is the base)."""
    return [
        g.Threshold(color=color, index=i, value=0.0 if value is None else value)
        for i, (value, color) in enumerate(steps)
    ]


def big_stat(
    title: str,
    query: str,
    grid: g.GridPos,
    *,
    unit: str = "none",
    decimals: int = 0,
    steps: tuple[tuple[float | None, str], ...] = ((None, GREEN),),
    description: str = "",
) -> g.Stat:
    """A stat readable from across the room."""
    return g.Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[q(query)],
        gridPos=grid,
        format=unit,
        decimals=decimals,
        colorMode="background",
        graphMode="none",
        textMode="value",
        reduceCalc="lastNotNull",
        noValue="0",
        thresholds=thresholds(*steps),
    )


def timeseries(
    title: str,
    targets: list[InfluxDBTarget],
    grid: g.GridPos,
    *,
    unit: str = "short",
    description: str = "",
) -> g.TimeSeries:
    """A time series panel."""
    return g.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets,
        gridPos=grid,
        unit=unit,
        spanNulls=True,
    )


UP_DOWN_MAPPINGS: list[dict[str, Any]] = [
    {
        "type": "value",
        "options": {"0": {"text": "down", "color": RED}, "1": {"text": "up", "color": GREEN}},
    },
]


def state_timeline(
    title: str, query: str, grid: g.GridPos, *, description: str = ""
) -> g.StateTimeline:
    """Up/down over time, one row per series."""
    return g.StateTimeline(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[q(query)],
        gridPos=grid,
        mappings=UP_DOWN_MAPPINGS,
        mergeValues=True,
        showValue="never",
    )


def table(
    title: str,
    query: str,
    grid: g.GridPos,
    *,
    description: str = "",
    overrides: list[dict[str, Any]] | None = None,
) -> g.Table:
    """A table from a table-format query."""
    return g.Table(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[q(query, table=True)],
        gridPos=grid,
        overrides=overrides or [],
    )


def bar_gauge(
    title: str,
    query: str,
    grid: g.GridPos,
    *,
    unit: str = "percent",
    low: float = 95.0,
    description: str = "",
) -> g.BarGauge:
    """Horizontal bars per group."""
    return g.BarGauge(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[q(query)],
        gridPos=grid,
        format=unit,
        min=0,
        max=100 if unit == "percent" else None,
        orientation="horizontal",
        displayMode="lcd",
        calc="lastNotNull",
        thresholds=thresholds((None, RED), (low - 5, AMBER), (low, GREEN)),
    )


@attr.s
class Geomap(g.Panel):  # type: ignore[misc]  # grafanalib is untyped
    """Grafana's geomap panel (not in grafanalib): markers at lat/lon, colored by a field."""

    color_field: str = attr.ib(default="online")
    center: tuple[float, float] = attr.ib(default=(-3.8, 102.3))
    zoom: int = attr.ib(default=8)

    def to_json_data(self) -> dict[str, Any]:
        """Panel JSON for Grafana 11's geomap."""
        data: dict[str, Any] = self.panel_json(
            {
                "type": "geomap",
                "fieldConfig": {
                    "defaults": {
                        "color": {"mode": "thresholds"},
                        "thresholds": {
                            "mode": "absolute",
                            "steps": [{"color": RED, "value": None}, {"color": GREEN, "value": 1}],
                        },
                        "mappings": [
                            {
                                "type": "value",
                                "options": {"0": {"text": "offline"}, "1": {"text": "online"}},
                            }
                        ],
                    },
                    "overrides": [],
                },
                "options": {
                    "view": {
                        "id": "coords",
                        "lat": self.center[0],
                        "lon": self.center[1],
                        "zoom": self.zoom,
                    },
                    "basemap": {"type": "default", "name": "Basemap"},
                    "controls": {"showZoom": True, "mouseWheelZoom": True},
                    "layers": [
                        {
                            "type": "markers",
                            "name": "sites",
                            "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
                            "config": {
                                "showLegend": True,
                                "style": {
                                    "size": {"fixed": 10},
                                    "color": {"field": self.color_field},
                                    "text": {"field": "site", "mode": "field"},
                                },
                            },
                        }
                    ],
                },
            }
        )
        return data


def geomap(title: str, query: str, grid: g.GridPos) -> g.Panel:
    """Sites on a map from a table query returning ``site``, ``lat``, ``lon``, ``online``."""
    # attrs generates __init__ from the untyped grafanalib base, which mypy cannot see.
    panel: g.Panel = Geomap(  # type: ignore[call-arg]
        title=title, dataSource=DATASOURCE, targets=[q(query, table=True)], gridPos=grid
    )
    return panel


def query_variable(name: str, query: str, *, label: str = "") -> g.Template:
    """A template variable filled by an InfluxQL ``SHOW TAG VALUES`` query."""
    return g.Template(
        name=name,
        label=label or name,
        query=query,
        dataSource=DATASOURCE,
        type="query",
        refresh=1,
        sort=1,
        includeAll=False,
    )


def fresh_variable() -> g.Template:
    """``$fresh``: how recent a probe must be to count as "now" (``cloud.schema.fresh_within_s``;
    a fleet probing slower than every 30 s sets it to three probe periods)."""
    return g.Template(
        name="fresh",
        label="fresh within",
        query=FRESH_DEFAULT,
        default=FRESH_DEFAULT,
        type="constant",
        hide=2,
    )


def dashboard(
    title: str,
    uid: str,
    panels: list[g.Panel],
    *,
    variables: Sequence[g.Template] = (),
    refresh: str = "30s",
    time_from: str = "now-6h",
    tags: Sequence[str] = (),
) -> g.Dashboard:
    """A dark dashboard with pantau's conventions."""
    return g.Dashboard(
        title=title,
        uid=uid,
        panels=panels,
        templating=g.Templating(list=list(variables)),
        refresh=refresh,
        time=g.Time(time_from, "now"),
        schemaVersion=SCHEMA_VERSION,
        style="dark",
        tags=["pantau", *tags],
        timezone="browser",
    ).auto_panel_ids()
