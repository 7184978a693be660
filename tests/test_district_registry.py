"""A site's district belongs to the cloud: `pantau sites add --district` registers it, and a
site with valid credentials that claims another district is stored under its registered one,
leaves the claimed district's availability unchanged, and opens a "site claims another
district" problem."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from cloud.api.app import create_app
from cloud.auth.principal import Role
from cloud.collector import Collector
from cloud.config import CollectorConfig
from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.problems.config import RulesConfig
from cloud.problems.observe import Observer
from cloud.sites_registry import Mismatch, registered_message
from devtools.localsvc import BrokerSecurity, InfluxProcess, MosquittoProcess, make_mosquitto
from edge_agent.config import BrokerConfig
from pantau.core.contract import (
    CameraReading,
    Cause,
    ReadingBatch,
    SiteStatus,
    TopicKind,
    agent_client_id,
    site_topic,
)
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from pantau.core.siteregistry import RegisteredSite
from pantau.ops.brokerauth import COLLECTOR_USER, BrokerAccountFiles
from tests.auth import add_user, bearer
from tests.helpers import async_wait_for, run_pantau, serving

READINGS = 60  # one a second, for each site's camera


def test_a_claim_is_rewritten_to_the_registered_district() -> None:
    """The pure rule: registered district (and location) win; a claim of another is reported."""
    status = SiteStatus(site="s2", district="dA", online=True, ts=1, lat=0, lon=0, session=1)
    entry = RegisteredSite(district="dB", lat=-6.5, lon=106.8)
    stored, mismatch = registered_message(status, entry)
    assert isinstance(stored, SiteStatus)
    assert (stored.district, stored.lat, stored.lon) == ("dB", -6.5, 106.8)
    assert mismatch == Mismatch("s2", claimed="dA", registered="dB")
    honest = status.model_copy(update={"district": "dB"})
    assert registered_message(honest, RegisteredSite(district="dB"))[1] is None
    assert registered_message(status, None) == (status, None)  # not registered: as claimed


@dataclass
class Deployed:
    broker: MosquittoProcess
    auth: BrokerAccountFiles
    collector: Collector
    influx: InfluxClient


@pytest.fixture
async def deployed(
    tmp_path: Path, influxd: InfluxProcess, database: str
) -> AsyncIterator[Deployed]:
    auth = BrokerAccountFiles(tmp_path / "auth")
    auth.init()
    broker = make_mosquitto(tmp_path, security=BrokerSecurity(dynsec_file=auth.dynsec_file))
    broker.start()
    collector = Collector(
        CollectorConfig.model_validate(
            {
                "mqtt": {
                    "url": broker.url,
                    "client_id": "pantau-collector-1",
                    "username": COLLECTOR_USER,
                    "password": auth.collector_password(),
                },
                "influx": {"url": influxd.url, "database": database},
                "dead_letter_path": str(tmp_path / "dl.sqlite"),
                "http_port": 0,
                "sites_registry": str(auth.sites_file),  # not there yet: sites are added below
            }
        )
    )
    task = asyncio.create_task(collector.run(), name="district-collector")
    try:
        await asyncio.wait_for(collector.ready.wait(), 15)
        async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
            yield Deployed(broker, auth, collector, influx)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        broker.stop()


def add_site(d: Deployed, site: str, district: str, out: Path) -> BrokerConfig:
    """`pantau sites add SITE --district D` as the operator runs it; the agent's section."""
    added = run_pantau(
        "sites", "add", site, "--dir", str(d.auth.directory), "--admin-url", d.broker.url,
        "--broker", d.broker.url, "--district", district, "--lat", "-6.5", "--lon", "106.8",
        "--out", str(out), timeout_s=30,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    return BrokerConfig.model_validate(yaml.safe_load(out.read_text())["broker"])


async def publish_site(
    broker: BrokerConfig, site: str, claimed: str, *, up: bool, start_ns: int
) -> None:
    """A birth and a minute of one camera's readings, all claiming district ``claimed``."""
    link = MqttLink(
        LinkSettings(
            address=BrokerAddress.parse(broker.url),
            client_id=agent_client_id(site),
            username=broker.username,
            password=broker.password,
        )
    )
    await link.start()
    await link.wait_connected(10)
    birth = SiteStatus(
        site=site, district=claimed, online=True, ts=start_ns, lat=1.0, lon=1.0, session=1,
        probe_interval_s=1.0,
    )  # fmt: skip
    await link.publish(site_topic(site, TopicKind.STATUS), birth.model_dump_json().encode())
    cameras = [
        CameraReading(
            camera="c1",
            ts=start_ns + i * 1_000_000_000,
            up=up,
            cause=Cause.OK if up else Cause.REFUSED,
            latency_ms=1.0,
        )
        for i in range(READINGS)
    ]
    batch = ReadingBatch(site=site, district=claimed, cameras=cameras)
    await link.publish(site_topic(site, TopicKind.READINGS), batch.model_dump_json().encode())
    await link.close()


def iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).isoformat()


async def test_a_site_claiming_another_district_cannot_move_its_downtime(
    deployed: Deployed, tmp_path: Path, database: str, influxd: InfluxProcess
) -> None:
    """s2 (registered dB, camera down) claims dA: dA's figures stay s1's alone, dB carries the
    downtime, and a "site claims another district" problem is open for s2 only."""
    d = deployed
    s1 = add_site(d, "s1", "dA", tmp_path / "s1.yaml")
    s2 = add_site(d, "s2", "dB", tmp_path / "s2.yaml")
    # The collector rereads the registry by itself.
    await async_wait_for(
        lambda: asyncio.sleep(0, d.collector.registry.get("s2") is not None),
        timeout_s=30,
        what="the collector reading the registry pantau sites add wrote",
    )
    start = (time.time_ns() // 1_000_000_000 - 5 * 60) * 1_000_000_000  # whole seconds, past
    await publish_site(s1, "s1", "dA", up=True, start_ns=start)
    await publish_site(s2, "s2", "dA", up=False, start_ns=start)

    async def stored() -> bool:
        rows = series_rows(
            await d.influx.query('SELECT count("up") FROM "camera" GROUP BY "site", "district"')
        )
        return {(r["site"], r["district"], r["count"]) for r in rows} == {
            ("s1", "dA", READINGS),
            ("s2", "dB", READINGS),
        }

    await async_wait_for(stored, timeout_s=30, what="both sites' readings stored")
    statuses = series_rows(
        await d.influx.query('SELECT "lat", "online" FROM "site" GROUP BY "site", "district"')
    )
    assert {(r["site"], r["district"], r["lat"]) for r in statuses} == {
        ("s1", "dA", -6.5),
        ("s2", "dB", -6.5),
    }

    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    app = create_app(
        influx=InfluxSettings(url=influxd.url, database=database),
        state_url=state_url,
        default_probe_interval_s=1.0,
    )
    token = add_user(state_url, "supervisor", Role.SUPERVISOR)
    params = {"from": iso(start), "to": iso(start + READINGS * 1_000_000_000)}
    figures = ("up_seconds", "down_seconds", "unknown_seconds")
    async with serving(app) as url:
        headers = bearer(token)
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            by_district = {
                r["district"]: r
                for r in (
                    await http.get("/api/availability", params={**params, "group_by": "district"})
                ).json()
            }
            by_site = {
                r["site"]: r
                for r in (
                    await http.get("/api/availability", params={**params, "group_by": "site"})
                ).json()
            }
    assert set(by_district) == {"dA", "dB"}
    assert {f: by_district["dA"][f] for f in figures} == {f: by_site["s1"][f] for f in figures}
    assert by_district["dA"]["down_seconds"] == 0
    assert by_district["dB"]["down_seconds"] == pytest.approx(READINGS, abs=1.5)

    observations = await Observer(d.influx, RulesConfig()).observe(time.time_ns())
    district = {o.site: o for o in observations if o.rule == "district"}
    assert district["s2"].verdict.value == "bad", district["s2"]
    assert district["s2"].cause.startswith("site claims district dA, registered as dB")
    assert district["s2"].district == "dB"
    assert district["s1"].verdict.value == "good", district["s1"]
