"""Service verdicts on real services: three agents and the cloud probe the simulated HTTPS
services through mosquitto, the collector and InfluxDB; the problems service judges them.

- simpeg, made to fail, fails everywhere: one "down" problem, nothing per district;
- s3 cannot reach any service (it does not trust the CA: its path is broken) and its uplink is
  cut: its failures are folded under the site (offline), sipd gets no problem and no downtime;
- perizinan's certificate 10 days from expiry is a warning; siskeudes' error page served with
  status 200 fails its keyword check everywhere (down); lapor's slow answers are a warning."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.problems.config import EvaluatorConfig
from cloud.problems.model import Problem
from cloud.problems.service import problems_service
from cloud.schema import SERVICE, SITE
from cloud.services.availability import by_opd, service_availability
from cloud.services.catalogue import load_catalogue
from cloud.services.prober import probe_once
from cloud.services.publish import publish_catalogue
from devtools.localsvc import InfluxProcess, MosquittoProcess
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.services.probe import probe_service, tls_context
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from pantau.core.services import ServiceCheck
from simulators.services import SimServices
from simulators.uplink import Uplink
from tests.helpers import async_wait_for
from tests.test_receipts import start_collector

SITES = {"s1": "d1", "s2": "d2", "s3": "d3"}
S = 10**9


def config(site: str, url: str, tmp: Path, ca: Path | None) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "site": {"id": site, "district": SITES[site], "lat": 0, "lon": 0},
            "broker": {"url": url, "reconnect_max_s": 1, "keepalive_s": 5},
            "probe": {"interval_s": 1, "timeout_s": 0.3},
            "queue": {"path": str(tmp / f"{site}.sqlite")},
            "services": {"interval_s": 1, "ca_file": str(ca) if ca else None},
        }
    )


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 40) -> None:
    assert await async_wait_for(check, timeout_s=timeout_s, what=what)


async def test_verdicts_from_every_vantage_point(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """The problems and availability the scenario above must give."""
    sims = SimServices.standard(tmp_path / "pki")
    await sims.start()
    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump(sims.catalogue(version=1)))
    catalogue = load_catalogue(path)
    uplink = Uplink("127.0.0.1", BrokerAddress.parse(broker.url).port)
    await uplink.start()
    collector, collector_task = await start_collector(broker, influxd.url, database, tmp_path)
    agents = {
        "s1": Agent(config("s1", broker.url, tmp_path, sims.ca_file)),
        "s2": Agent(config("s2", broker.url, tmp_path, sims.ca_file)),
        "s3": Agent(config("s3", f"mqtt://127.0.0.1:{uplink.port}", tmp_path, None)),
    }
    tasks = [asyncio.create_task(a.run(), name=f"verdict-agent-{s}") for s, a in agents.items()]
    cloud = MqttLink(LinkSettings(address=BrokerAddress.parse(broker.url), client_id="svc-pub"))
    influx = InfluxClient(InfluxSettings(url=influxd.url, database=database))
    context = tls_context(sims.ca_file)

    async def probe(check: ServiceCheck) -> Any:
        return await probe_service(check, context)

    async def rows(q: str) -> list[dict[str, Any]]:
        return series_rows(await influx.query(q))

    try:
        await cloud.start()
        await cloud.wait_connected(10)
        await publish_catalogue(cloud, catalogue, SITES, None)  # unsigned: no key at the sites
        start_ns = time.time_ns()
        sims.services["simpeg"].fail()
        failed_ns = time.time_ns()

        async def s3_saw_sipd() -> bool:
            got = await rows(
                f'SELECT "ok" FROM "{SERVICE}" WHERE "site" = \'s3\' AND "service" = \'sipd\''
            )
            return bool(got)

        await until(s3_saw_sipd, "s3's failing probes stored")
        uplink.cut()

        async def s3_offline() -> bool:
            got = await rows(f'SELECT last("online") AS "o" FROM "{SITE}" WHERE "site" = \'s3\'')
            return bool(got) and got[0]["o"] == 0

        await until(s3_offline, "s3's will stored")

        async def fresh_failures() -> bool:
            got = await rows(
                f'SELECT last("ok") AS "ok" FROM "{SERVICE}" WHERE "service" = \'simpeg\' '
                f'AND time > {failed_ns} GROUP BY "site"'
            )
            return {r["site"] for r in got if r["ok"] == 0} >= {"s1", "s2"}

        await until(fresh_failures, "simpeg failing from s1 and s2")
        assert await probe_once(path, probe, influx) == len(catalogue.services)
        now = time.time_ns() + S
        settings = EvaluatorConfig.model_validate(
            {
                "influx_url": influxd.url,
                "database": database,
                "state_url": f"sqlite:///{tmp_path / 'state.sqlite'}",
                "rules": {
                    "thresholds": [],
                    "site": {"offline_for": 0},
                    "services": {"catalogue": str(path), "fresh": 120},
                },
            }
        )
        async with problems_service(settings) as service:
            await service.evaluator.evaluate(now)
            problems: list[Problem] = service.store.find()
        open_ = {p.key: p for p in problems if p.resolved_ns is None}
        service_keys = {k for k in open_ if k.startswith("service")}
        assert service_keys == {
            "service-down:simpeg",
            "service-down:siskeudes",
            "service-down:eoffice",
            "service-cert:perizinan",
            "service-slow:lapor",
        }, sorted(open_)
        assert "keyword" in open_["service-down:siskeudes"].cause
        assert "10" in open_["service-cert:perizinan"].cause
        assert open_["service-cert:perizinan"].severity.value == "warning"
        assert open_["service-down:simpeg"].details["cut_off"] == ["s3"]
        # s3 is folded: its site problem, no service problem of its own.
        assert "site:s3" in open_ or any(p.site == "s3" and p.rule == "site" for p in problems)
        assert not any(p.site == "s3" and p.rule.startswith("service") for p in problems)

        tallies = await service_availability(rows, catalogue, start_ns, now)
        assert tallies["sipd"].down_s == 0 and tallies["sipd"].up_s > 0
        assert tallies["simpeg"].down_s > 0
        opd = by_opd(catalogue, tallies)
        assert opd["bappeda"].availability == 1.0
    finally:
        await cloud.close()
        for task in tasks:
            task.cancel()
        collector_task.cancel()
        await asyncio.gather(*tasks, collector_task, return_exceptions=True)
        await influx.aclose()
        await uplink.stop()
        await sims.stop()
        del collector
