"""Service verdicts on real services: three agents and the cloud probe the simulated HTTPS
services through mosquitto, the collector and InfluxDB; the problems service judges them.

- simpeg, made to fail, fails everywhere: one "down" problem, nothing per district;
- s2 and s3 reach the broker and the services through their district's path (``SitePath``: an
  MQTT relay and the HTTP proxy of ``services.proxy``). s3's uplink is cut for real: the agent
  loses the broker and the services at once; its failing probes, delivered after the uplink is
  restored, are set aside (offline then): sipd3, probed from d3 alone, counts no downtime, and
  no service problem is opened at s3 (the site-offline problem speaks for it);
- only s2's route to sipd breaks (its MQTT and its other services fine): "sipd unreachable
  from s2", not down;
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
from simulators.site_path import SitePath
from tests.helpers import async_wait_for
from tests.test_receipts import start_collector

SITES = {"s1": "d1", "s2": "d2", "s3": "d3"}
S = 10**9


def config(
    site: str, url: str, tmp: Path, ca: Path | None, proxy: str | None = None
) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "site": {"id": site, "district": SITES[site], "lat": 0, "lon": 0},
            "broker": {"url": url, "reconnect_max_s": 1, "keepalive_s": 5},
            "probe": {"interval_s": 1, "timeout_s": 0.3},
            "queue": {"path": str(tmp / f"{site}.sqlite")},
            "services": {"interval_s": 1, "ca_file": str(ca) if ca else None, "proxy": proxy},
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
    entries = sims.catalogue(version=1)
    sipd = next(e for e in entries["services"] if e["name"] == "sipd")
    cloud_path = tmp_path / "cloud-services.yaml"  # the cloud's prober: all but sipd3
    cloud_path.write_text(yaml.safe_dump(entries))
    entries["services"].append({**sipd, "name": "sipd3", "districts": ["d3"]})
    path.write_text(yaml.safe_dump(entries))
    catalogue = load_catalogue(path)
    paths = {s: SitePath("127.0.0.1", BrokerAddress.parse(broker.url).port) for s in ("s2", "s3")}
    for site_path in paths.values():
        await site_path.start()
    collector, collector_task = await start_collector(broker, influxd.url, database, tmp_path)

    def behind(site: str) -> AgentConfig:
        relay = paths[site]
        url = f"mqtt://127.0.0.1:{relay.mqtt.port}"
        return config(site, url, tmp_path, sims.ca_file, relay.proxy.url)

    agents = {
        "s1": Agent(config("s1", broker.url, tmp_path, sims.ca_file)),
        "s2": Agent(behind("s2")),
        "s3": Agent(behind("s3")),
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
        paths["s2"].block(sims.services["sipd"].port)  # only s2's route to sipd breaks

        async def stored(where: str) -> bool:
            return bool(await rows(f'SELECT "ok" FROM "{SERVICE}" WHERE {where}'))

        async def s3_probed_sipd3() -> bool:
            return await stored('"site" = \'s3\' AND "service" = \'sipd3\' AND "ok" = 1')

        await until(s3_probed_sipd3, "s3 reaching sipd3 through its path")
        cut_ns = time.time_ns()
        paths["s3"].cut()  # the district's uplink fails: broker and services at once

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

        async def s2_blocked() -> bool:
            return await stored(
                f'"site" = \'s2\' AND "service" = \'sipd\' AND "ok" = 0 AND time > {failed_ns}'
            )

        await until(fresh_failures, "simpeg failing from s1 and s2")
        await until(s2_blocked, "s2 failing sipd through its path")
        assert await probe_once(cloud_path, probe, influx) == len(catalogue.services) - 1
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
            "service-degraded:sipd:s2",
        }, sorted(open_)
        assert "keyword" in open_["service-down:siskeudes"].cause
        assert "10" in open_["service-cert:perizinan"].cause
        assert open_["service-cert:perizinan"].severity.value == "warning"
        assert "502" in open_["service-degraded:sipd:s2"].cause
        assert open_["service-down:simpeg"].details["cut_off"] == ["s3"]
        # s3 is folded: its site problem, no service problem of its own.
        assert "site:s3" in open_ or any(p.site == "s3" and p.rule == "site" for p in problems)
        assert not any(p.site == "s3" and p.rule.startswith("service") for p in problems)

        # The uplink comes back: s3's probes from the cut (failing: no path) are delivered.
        restored_ns = time.time_ns()
        paths["s3"].restore()

        async def cut_failures_delivered() -> bool:
            return await stored(
                f'"site" = \'s3\' AND "service" = \'sipd3\' AND "ok" = 0 '
                f"AND time > {cut_ns} AND time < {restored_ns}"
            )

        await until(cut_failures_delivered, "s3's probes from the cut delivered")
        end_ns = time.time_ns()
        # Minutes aligned to end just before the restore: in the last minute of the cut, s3's
        # latest probe of sipd3 (its only vantage) failed; set aside, that minute is unknown.
        boundary = restored_ns - S // 2
        start_ns = boundary - -(-(boundary - start_ns) // (60 * S)) * 60 * S
        tallies = await service_availability(rows, catalogue, start_ns, end_ns)
        sipd3 = tallies["sipd3"]
        assert sipd3.down_s == 0 and sipd3.unknown_s >= 60, sipd3
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
        for site_path in paths.values():
            await site_path.stop()
        await sims.stop()
        del collector
