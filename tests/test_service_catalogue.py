"""The catalogue defined once in the cloud reaches every agent through mosquitto (retained,
signed with the command key), the agents probe the simulated services and the collector stores
``service`` points tagged with the probing site; a new version reaches them without touching a
site file and each agent reports the version it runs; a forged or foreign catalogue is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.schema import AGENT, SERVICE
from cloud.services.catalogue import Catalogue, load_catalogue
from cloud.services.publish import publish_catalogue
from devtools.localsvc import InfluxProcess, MosquittoProcess
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.services.catalogue import CatalogueKeeper
from pantau.core.contract import (
    agent_client_id,
    site_command_filter,
    site_command_topic,
    site_services_topic,
)
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from pantau.core.services import SignedCatalogue, SiteCatalogue, sign_catalogue
from pantau.core.signing import load_private, load_public, new_key_pair
from pantau.ops.brokerauth import COLLECTOR_USER
from simulators.services import SimServices
from tests.helpers import async_wait_for, run_pantau
from tests.test_receipts import start_collector
from tests.test_security import SecureBroker, connect, link, secure  # noqa: F401 (fixture)

SITES = {"s1": "d1", "s2": "d2"}


def agent_config(site: str, broker: MosquittoProcess, tmp: Path, public: str, ca: Path) -> Any:
    return AgentConfig.model_validate(
        {
            "site": {"id": site, "district": SITES[site], "lat": 0, "lon": 0},
            "broker": {"url": broker.url, "reconnect_max_s": 1},
            "probe": {"interval_s": 0.5, "timeout_s": 0.3},
            "queue": {"path": str(tmp / f"{site}.sqlite")},
            "commands": {"public_key": public},
            "services": {"interval_s": 1, "ca_file": str(ca)},
        }
    )


def write_catalogue(path: Path, sims: SimServices, version: int, **extra: Any) -> Catalogue:
    data = sims.catalogue(version=version)
    for entry in data["services"]:
        entry.update(extra)
    path.write_text(yaml.safe_dump(data))
    return load_catalogue(path)


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30) -> None:
    assert await async_wait_for(check, timeout_s=timeout_s, what=what)


async def test_catalogue_reaches_every_agent_and_its_version_is_reported(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """Version 1 (all districts) is probed from s1 and s2; version 2 (simpeg from d1 only)
    replaces it at both agents, who report version 2; nothing in their site files changed."""
    private, public = new_key_pair()
    key = load_private(private)
    sims = SimServices.standard(tmp_path / "pki")
    await sims.start()
    collector, collector_task = await start_collector(broker, influxd.url, database, tmp_path)
    agents = {s: Agent(agent_config(s, broker, tmp_path, public, sims.ca_file)) for s in SITES}
    tasks = [asyncio.create_task(a.run(), name=f"svc-agent-{s}") for s, a in agents.items()]
    cloud = MqttLink(LinkSettings(address=BrokerAddress.parse(broker.url), client_id="svc-cloud"))
    influx = InfluxClient(InfluxSettings(url=influxd.url, database=database))
    path = tmp_path / "services.yaml"
    try:
        await cloud.start()
        await cloud.wait_connected(10)
        await publish_catalogue(cloud, write_catalogue(path, sims, 1), SITES, key)

        async def stored(q: str) -> list[dict[str, Any]]:
            return series_rows(await influx.query(q))

        async def probed_everywhere() -> bool:
            rows = await stored(
                f'SELECT last("ok") AS "ok" FROM "{SERVICE}" GROUP BY "site", "service"'
            )
            return {(r["site"], r["service"]) for r in rows} >= {
                (s, n) for s in SITES for n in sims.services
            }

        await until(probed_everywhere, "every service probed from s1 and s2")
        rows = await stored(
            f'SELECT last("ok") AS "ok", "stage", "cert_days" FROM "{SERVICE}" '
            'WHERE "site" = \'s1\' GROUP BY "service"'
        )
        by = {r["service"]: r for r in rows}
        assert by["simpeg"]["ok"] == 1 and by["siskeudes"]["stage"] == "keyword"
        assert 9 < by["perizinan"]["cert_days"] <= 10
        assert by["eoffice"]["stage"] == "dns"

        async def versions(want: int) -> bool:
            rows = await stored(
                f'SELECT last("services_version") AS "v" FROM "{AGENT}" GROUP BY "site"'
            )
            return {r["site"]: r["v"] for r in rows} == dict.fromkeys(SITES, want)

        await until(lambda: versions(1), "both agents report version 1")

        # Version 2, changed in the cloud only: simpeg probed from d1 alone, with a new keyword.
        data = sims.catalogue(version=2, unresolvable=False)
        data["services"] = [
            dict(s, districts=["d1"]) for s in data["services"] if s["name"] == "simpeg"
        ]
        path.write_text(yaml.safe_dump(data))
        await publish_catalogue(cloud, load_catalogue(path), SITES, key)
        await until(lambda: versions(2), "both agents report version 2")
        assert [s.name for s in agents["s1"].services.current.services] == ["simpeg"]  # type: ignore[union-attr]
        assert agents["s2"].services.current.services == []  # type: ignore[union-attr]
    finally:
        await cloud.close()
        for task in tasks:
            task.cancel()
        collector_task.cancel()
        await asyncio.gather(*tasks, collector_task, return_exceptions=True)
        await influx.aclose()
        await sims.stop()
        del collector


def test_the_keeper_refuses_forged_foreign_and_older_catalogues(tmp_path: Path) -> None:
    """A catalogue signed by another key, unsigned while a key is set, for another site or
    older than the running one is refused; the running one survives a restart (file)."""
    private, public = new_key_pair()
    other, _ = new_key_pair()
    key, forged = load_private(private), load_private(other)
    catalogue = Catalogue.model_validate(
        {"version": 3, "services": [{"name": "web", "opd": "kominfo", "url": "https://x.test/"}]}
    )
    path = tmp_path / "s1.services.json"
    keeper = CatalogueKeeper("s1", load_public(public), path)
    assert keeper.take(sign_catalogue(catalogue.for_site("s1", "d1"), forged)) is None
    assert keeper.take(sign_catalogue(catalogue.for_site("s1", "d1"), None)) is None
    assert keeper.take(sign_catalogue(catalogue.for_site("s2", "d1"), key)) is None
    assert keeper.take(b"{not json") is None
    assert keeper.refused == 4 and keeper.version is None
    assert keeper.take(sign_catalogue(catalogue.for_site("s1", "d1"), key)) is not None
    older = catalogue.model_copy(update={"version": 2})
    assert keeper.take(sign_catalogue(older.for_site("s1", "d1"), key)) is None
    assert CatalogueKeeper("s1", load_public(public), path).version == 3
    # Without a key the agent trusts the topic (only the cloud's account may write it).
    keyless = CatalogueKeeper("s1", None, tmp_path / "other.json")
    assert keyless.take(sign_catalogue(catalogue.for_site("s1", "d1"), None)) is not None
    assert site_services_topic("s1").endswith("/sites/s1/command/services")


async def test_pantau_services_publish_sends_each_site_its_part(
    broker: MosquittoProcess, tmp_path: Path
) -> None:
    """The CLI reads the registry and the catalogue and leaves a signed, retained catalogue on
    each site's topic: simpeg (districts [d1]) only in s1's."""
    private, public = new_key_pair()
    (tmp_path / "command.key").write_text(private + "\n")
    (tmp_path / "sites.yaml").write_text(
        yaml.safe_dump(
            {"version": 1, "sites": {"s1": {"district": "d1"}, "s2": {"district": "d2"}}}
        )
    )
    (tmp_path / "services.yaml").write_text(
        yaml.safe_dump(
            {
                "version": 7,
                "services": [
                    {
                        "name": "simpeg",
                        "opd": "bkpsdm",
                        "url": "https://a.test/",
                        "districts": ["d1"],
                    },
                    {"name": "lapor", "opd": "kominfo", "url": "https://b.test/"},
                ],
            }
        )
    )
    done = await asyncio.to_thread(
        run_pantau,
        "services", "publish", "--catalogue", str(tmp_path / "services.yaml"),
        "--sites-registry", str(tmp_path / "sites.yaml"), "--broker", broker.url,
        "--key-file", str(tmp_path / "command.key"),
        timeout_s=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "version 7 published to 2 sites" in done.stdout
    reader = MqttLink(LinkSettings(address=BrokerAddress.parse(broker.url), client_id="reader"))
    await reader.subscribe([site_services_topic("s1"), site_services_topic("s2")])  # type: ignore[list-item]
    await reader.start()
    try:
        got = {}
        for _ in range(2):
            message = await asyncio.wait_for(reader.messages.get(), 10)
            got[message.topic] = message.payload
    finally:
        await reader.close()
    for site, names in (("s1", ["simpeg", "lapor"]), ("s2", ["lapor"])):
        keeper = CatalogueKeeper(site, load_public(public), tmp_path / f"{site}.json")
        catalogue = keeper.take(got[site_services_topic(site)])
        assert catalogue is not None and catalogue.version == 7
        assert [s.name for s in catalogue.services] == names


async def test_only_the_cloud_can_leave_a_catalogue(secure: SecureBroker) -> None:  # noqa: F811
    """s1 (its real password, over TLS) publishing a retained catalogue on its own and s2's
    services topics leaves nothing: subscribing afterwards, s1 first gets the cloud's live
    sentinel (a retained catalogue would come first) and s2 the cloud's catalogue."""
    ca = secure.pki / "ca.crt"
    url = f"mqtts://127.0.0.1:{secure.tls_port}"
    forged = Catalogue.model_validate(
        {"version": 99, "services": [{"name": "evil", "opd": "x", "url": "https://x.test/"}]}
    )

    def site_link(site: str) -> MqttLink:
        return link(url, agent_client_id(site), user=site, password=secure.passwords[site], ca=ca)

    s1 = await connect(site_link("s1"))
    cloud = await connect(
        link(secure.broker.url, "svc-cloud", user=COLLECTOR_USER,
             password=secure.passwords[COLLECTOR_USER])
    )  # fmt: skip
    try:
        for site in ("s1", "s2"):
            payload = sign_catalogue(forged.for_site(site, "d1"), None)
            await s1.publish(site_services_topic(site), payload, qos=1, retain=True)
        await s1.close()
        genuine = Catalogue.model_validate({"version": 1, "services": []})
        await cloud.publish(
            site_services_topic("s2"), sign_catalogue(genuine.for_site("s2", "d1"), None),
            qos=1, retain=True,
        )  # fmt: skip
        for site in ("s1", "s2"):
            reader = site_link(site)
            await reader.subscribe([site_command_filter(site)])
            reader = await connect(reader)
            try:
                await cloud.publish(site_command_topic(site), b"sentinel", qos=1)
                first = await asyncio.wait_for(reader.messages.get(), 10)
            finally:
                await reader.close()
            if site == "s1":
                assert first.payload == b"sentinel", first.payload[:80]
            else:
                envelope = SignedCatalogue.model_validate_json(first.payload)
                assert SiteCatalogue.model_validate_json(envelope.catalogue).version == 1
    finally:
        await cloud.close()


def test_a_catalogue_that_cannot_be_kept_on_disk_still_runs(tmp_path: Path) -> None:
    """The file beside the queue cannot be written: the catalogue runs from memory."""
    keeper = CatalogueKeeper("s1", None, tmp_path / "missing-dir" / "s1.services.json")
    catalogue = Catalogue.model_validate({"version": 2, "services": []})
    assert keeper.take(sign_catalogue(catalogue.for_site("s1", "d1"), None)) is not None
    assert keeper.version == 2
