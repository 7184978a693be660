"""Build every dashboard to JSON, with Grafana provisioning files; or push them over the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

from dashboards import camera, command_center, health, services, site
from dashboards.panels import DATASOURCE_UID

BUILDERS: dict[str, Callable[[], g.Dashboard]] = {
    "command-center": command_center.build,
    "site": site.build,
    "camera": camera.build,
    "health": health.build,
    "services": services.build,
}
FOLDER_TITLE = "Pantau"
FOLDER_UID = "pantau"


def _null_base_steps(node: Any) -> Any:
    """grafanalib writes a threshold's base step as the string "null"; Grafana wants null."""
    if isinstance(node, dict):
        if node.get("value") == "null" and "color" in node:
            node["value"] = None
        for value in node.values():
            _null_base_steps(value)
    elif isinstance(node, list):
        for item in node:
            _null_base_steps(item)
    return node


def dashboard_json(dashboard: g.Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana JSON."""
    data: dict[str, Any] = json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))
    return dict(_null_base_steps(data))


def all_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON, by file stem."""
    return {name: dashboard_json(build()) for name, build in BUILDERS.items()}


def datasource_provisioning(
    *, url: str, database: str, user: str | None, password: str | None
) -> dict[str, Any]:
    """Grafana datasource provisioning for the InfluxDB (InfluxQL) datasource."""
    source: dict[str, Any] = {
        "name": "Pantau InfluxDB",
        "type": "influxdb",
        "uid": DATASOURCE_UID,
        "access": "proxy",
        "url": url,
        "isDefault": True,
        "jsonData": {"dbName": database, "httpMode": "POST", "version": "InfluxQL"},
        "editable": False,
    }
    if user:
        source["user"] = user
        source["secureJsonData"] = {"password": password or ""}
    return {"apiVersion": 1, "datasources": [source]}


def dashboard_provider(path: str) -> dict[str, Any]:
    """Grafana dashboard provider loading the built JSON into the folder "Pantau"."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "pantau",
                "orgId": 1,
                "folder": FOLDER_TITLE,
                "folderUid": FOLDER_UID,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": path},
            }
        ],
    }


def build_all(
    out: Path,
    *,
    influx_url: str,
    database: str,
    user: str | None = None,
    password: str | None = None,
    dashboards_path: str = "/var/lib/grafana/dashboards/pantau",
) -> list[Path]:
    """Write ``out/dashboards/*.json`` and ``out/provisioning/...``; return the files."""
    written = []
    board_dir = out / "dashboards"
    board_dir.mkdir(parents=True, exist_ok=True)
    for name, data in all_dashboards().items():
        path = board_dir / f"{name}.json"
        path.write_text(json.dumps(data, indent=2, sort_keys=True))
        written.append(path)
    for sub, data in (
        (
            "datasources",
            datasource_provisioning(
                url=influx_url, database=database, user=user, password=password
            ),
        ),
        ("dashboards", dashboard_provider(dashboards_path)),
    ):
        path = out / "provisioning" / sub / "pantau.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        written.append(path)
    return written


class PushError(Exception):
    """Grafana refused an upload."""


def push_all(grafana_url: str, token: str, *, timeout_s: float = 10.0) -> list[str]:
    """Upload every dashboard into the "Pantau" folder over Grafana's HTTP API; return the UIDs."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=grafana_url.rstrip("/"), headers=headers, timeout=timeout_s) as http:
        folder = http.get(f"/api/folders/{FOLDER_UID}")
        if folder.status_code == 404:
            created = http.post("/api/folders", json={"uid": FOLDER_UID, "title": FOLDER_TITLE})
            if created.status_code not in (200, 409, 412):
                raise PushError(f"creating folder: {created.status_code} {created.text[:200]}")
        elif folder.status_code != 200:
            raise PushError(f"reading folder: {folder.status_code} {folder.text[:200]}")
        uids = []
        for name, data in all_dashboards().items():
            response = http.post(
                "/api/dashboards/db",
                json={
                    "dashboard": data,
                    "folderUid": FOLDER_UID,
                    "overwrite": True,
                    "message": "pantau dashboards push",
                },
            )
            if response.status_code != 200:
                raise PushError(f"{name}: {response.status_code} {response.text[:200]}")
            uids.append(str(data["uid"]))
    return uids
