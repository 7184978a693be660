"""`pantau demo` and `pantau simulate` against services started by someone else."""

from __future__ import annotations

import csv
import datetime as dt
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from pydantic import ValidationError

from cloud.schema import REMEDIATION, SWITCH_PORT
from dashboards import command_center
from dashboards.build import all_dashboards
from devtools.localsvc import InfluxProcess, MosquittoProcess
from simulators.scenario import HangEvent, Scenario
from tests.helpers import influx_rows, run_pantau, wait_for
from tests.macros import expand

SCENARIO = """
seed: 5
probe_interval: 1s
probe_timeout: 500ms
keepalive: 2
sites:
  - {id: a1, district: north, lat: -3.8, lon: 102.2, cameras: 2}
  - {id: a2, district: south, lat: -3.9, lon: 102.4, cameras: 2}
events:
  - {at: 2s, camera: a1/c2, state: down}
  - {at: 3s, malformed: a2}
  - {at: 3s, site: a2, power: down, for: 2s}
"""


def test_demo_with_external_services_feeds_every_dashboard_panel(
    broker: MosquittoProcess, influxd: InfluxProcess, tmp_path: Path
) -> None:
    """`pantau demo --sites 3 --cameras 4 --duration 45` with URLs prints the technician page's
    URL and account, where the demo's problems appear and one is acknowledged with the printed
    token; it
    leaves points for all 12 cameras and 3 sites, and every dashboard panel query has data."""
    demo = subprocess.Popen(
        [
            *(sys.executable, "-m", "pantau", "demo", "--sites", "3", "--cameras", "4"),
            *("--duration", "45", "--mqtt", broker.url, "--influx", influxd.url),
            *("--database", "pantau_demo", "--workdir", str(tmp_path), "--page-port", "0"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(demo.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        page = wait_for(
            lambda: next((ln for ln in lines if ln.startswith("technician page:")), None),
            timeout_s=60,
            what="the technician page URL",
        )
        match = re.search(
            r"(http://127\.0\.0\.1:\d+)/ \(sign in as demo / (\S+); API token (\S+)\)", page
        )
        assert match, page
        url, password, token = match.groups()
        assert httpx.get(f"{url}/", timeout=5).headers["location"] == "/login"
        with httpx.Client(base_url=url, timeout=5) as browser:
            signed_in = browser.post("/auth/login", json={"username": "demo", "password": password})
            assert signed_in.status_code == 200, signed_in.text
            assert browser.get("/").text.startswith("<!doctype html>")
        auth = {"Authorization": f"Bearer {token}"}

        def camera_problem() -> dict[str, object] | None:
            found = httpx.get(
                f"{url}/api/problems", params={"state": "open"}, headers=auth, timeout=5
            ).json()
            return next((p for p in found if p["key"] == "camera:s1/c2"), None)

        problem = wait_for(camera_problem, timeout_s=45, what="s1/c2's problem on the page's API")
        acked = httpx.post(
            f"{url}/api/problems/{problem['id']}/ack",
            json={"comment": "looking"},
            headers=auth,
            timeout=5,
        )
        assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
        assert acked.json()["acknowledged_by"] == "demo"

        def service_down() -> dict[str, object] | None:
            found = httpx.get(
                f"{url}/api/problems", params={"state": "open"}, headers=auth, timeout=5
            ).json()
            return next((p for p in found if p["key"] == "service-down:simpeg"), None)

        # The simulated service that starts failing at 20 % of the run: one problem for it.
        wait_for(service_down, timeout_s=45, what="simpeg's down problem on the page's API")
        assert demo.wait(timeout=120) == 0, "".join(lines)[-2000:] + demo.stderr.read()[-2000:]  # type: ignore[union-attr]
    finally:
        if demo.poll() is None:
            demo.kill()
        reader.join(timeout=10)
    output = "".join(lines)
    assert "points stored" in output
    assert "bad_json=1" in output

    def rows(query: str) -> list[dict[str, object]]:
        return influx_rows(influxd.url, "pantau_demo", query)

    assert len(rows('SELECT count("up") FROM camera GROUP BY site, camera')) == 12
    assert len(rows('SELECT count("value") FROM sensor GROUP BY site')) == 3
    assert len(rows('SELECT count("online") FROM site GROUP BY site')) == 3

    # The demo's picture faults and UPS: degraded cameras and a site on battery, as the wall shows.
    now_ms = int(time.time() * 1000)
    month = dt.datetime.fromtimestamp(now_ms / 1000, ZoneInfo("Asia/Jakarta")).strftime("%Y-%m")
    variables = {"site": "s1", "camera": "c2", "fresh": "2m"}

    def wall(query: str) -> list[dict[str, object]]:
        return rows(
            expand(query, from_ms=now_ms - 600_000, to_ms=now_ms, interval_ms=5000,
                   variables=variables)
        )  # fmt: skip

    degraded = {
        (r["site"], r["camera"], r["picture"]) for r in wall(command_center.CAMERAS_DEGRADED)
    }
    assert degraded == {("s2", "c2", "frozen"), ("s2", "c3", "blurred")}
    assert [r["site"] for r in wall(command_center.SITES_ON_BATTERY)] == ["s1"]
    # Every camera of the sites that kept power was stream-probed (s3's power cut can skip one).
    streams = rows('SELECT last("fault") AS "fault" FROM "stream" GROUP BY "site", "camera"')
    assert {(r["site"], r["camera"]) for r in streams if r["site"] != "s3"} == {
        (site, f"c{i}") for site in ("s1", "s2") for i in range(1, 5)
    }
    # E-government services were probed from every site and from the cloud.
    probed = rows('SELECT count("ok") FROM "service" GROUP BY "site"')
    assert {r["site"] for r in probed} == {"s1", "s2", "s3", "cloud"}
    # Recording and identity: s1's recorder missed the down camera s1/c2, s1/c1 was replaced.
    recorded = rows('SELECT count("recorded_s") FROM "record" GROUP BY "site", "camera"')
    assert {(r["site"], r["camera"]) for r in recorded} == {("s1", f"c{i}") for i in range(1, 5)}
    gaps = rows('SELECT "record_gap_s" FROM "record_gap" GROUP BY "site", "camera"')
    assert {(r["site"], r["camera"]) for r in gaps} == {("s1", "c2")}
    assert max(float(str(r["record_gap_s"])) for r in gaps) >= 10
    serials = rows(
        'SELECT "serial" FROM "device" WHERE "site" = \'s1\' AND "camera" = \'c1\' AND "ok" = 1'
    )
    assert {r["serial"] for r in serials} == {"SC200-s1-c1", "SC200-REPLACED"}
    # s1/c1's ONVIF event service reported tampering (PullPoint) from 60 % to 80 % of the run.
    tampered = rows(
        'SELECT "events" FROM "device" WHERE "site" = \'s1\' AND "camera" = \'c1\' '
        'AND "events_ok" = 1'
    )
    assert any("tamper" in str(r["events"]) for r in tampered), tampered
    report = run_pantau(
        *("report", "--month", month, "--influx", influxd.url, "--database", "pantau_demo"),
        *("--state", f"sqlite:///{tmp_path / 'report.sqlite'}", "--out", str(tmp_path / "r")),
        timeout_s=120,
    )
    assert report.returncode == 0, report.stderr[-2000:]
    table = list(csv.DictReader((tmp_path / "r" / f"availability-{month}.csv").open()))
    cams = {(r["site"], r["camera"]): r for r in table if r["level"] == "camera"}
    assert float(cams["s1", "c2"]["recording_availability_pct"]) < 100.0
    assert cams["s1", "c1"]["recording_availability_pct"] == "100.000"
    assert cams["s1", "c4"]["retention_compliance_pct"] == "0.000"  # keeps 3 days of 7
    assert cams["s2", "c1"]["recording_availability_pct"] == ""  # no recorder there
    # s1's switch: the hung s1/c3 (port up, RTSP silent) was power-cycled by the automatic policy
    # and came back; the dead s1/c2 took its port's link down and was never cycled.
    actions = rows(
        f'SELECT "result", "up_after", "recovery_s", "trigger", "action" FROM "{REMEDIATION}" '
        "WHERE \"site\" = 's1' AND \"camera\" = 'c3'"
    )
    assert [(r["action"], r["trigger"], r["result"], r["up_after"]) for r in actions] == [
        ("power_cycle", "policy", "done", 1)
    ], actions
    assert float(str(actions[0]["recovery_s"])) < 20
    assert not rows(f'SELECT "result" FROM "{REMEDIATION}' + '" WHERE "camera" = \'c2\'')
    last = rows('SELECT last("up") AS "up" FROM "camera" WHERE "site" = \'s1\' GROUP BY "camera"')
    assert {r["camera"]: r["up"] for r in last}["c3"] == 1
    c2_port = rows(
        f'SELECT last("port") AS "link" FROM "{SWITCH_PORT}" '
        "WHERE \"site\" = 's1' AND \"camera\" = 'c2'"
    )
    assert c2_port and c2_port[0]["link"] == 0

    for name, board in all_dashboards().items():
        for panel in board["panels"]:
            for target in panel["targets"]:
                query = expand(
                    target["query"],
                    from_ms=now_ms - 10 * 60_000,
                    to_ms=now_ms,
                    interval_ms=5000,
                    variables=variables,
                )
                assert rows(query), f"{name}/{panel['title']} has no data: {query}"


def test_simulate_runs_a_scenario_file(
    broker: MosquittoProcess, influxd: InfluxProcess, tmp_path: Path
) -> None:
    """`pantau simulate` runs the file's events and exits 0."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    result = run_pantau(
        "simulate",
        "--scenario",
        str(scenario),
        "--duration",
        "8",
        "--mqtt",
        broker.url,
        "--influx",
        influxd.url,
        "--database",
        "pantau_sim",
        timeout_s=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    down = influx_rows(
        influxd.url,
        "pantau_sim",
        "SELECT count(\"up\") FROM camera WHERE site='a1' AND camera='c2' AND cause='refused'",
    )
    assert down and down[0]["count"] >= 3
    offline = influx_rows(
        influxd.url, "pantau_sim", "SELECT count(\"online\") FROM site WHERE site='a2' AND online=0"
    )
    assert offline and offline[0]["count"] >= 1


def test_simulate_rejects_a_bad_scenario(tmp_path: Path) -> None:
    """A scenario referring to an unknown camera is an error naming it."""
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(SCENARIO.replace("a1/c2", "a1/c9"))
    result = run_pantau(
        "simulate",
        "--scenario",
        str(scenario),
        "--duration",
        "5",
        timeout_s=60,
    )
    assert result.returncode == 2
    assert "site a1 has no camera 'c9'" in result.stderr


def test_a_hang_needs_a_switch() -> None:
    """A `hang` event on a site without `switch: true` is an error saying what to set."""
    data = yaml.safe_load(SCENARIO)
    data["events"].append({"at": "1s", "hang": "a1/c1"})
    with pytest.raises(ValidationError, match=r"site a1 has no switch \(set switch: true\)"):
        Scenario.model_validate(data)
    data["sites"][0]["switch"] = True
    assert isinstance(Scenario.model_validate(data).events[-1], HangEvent)
