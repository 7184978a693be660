"""A real mosquitto with the accounts `pantau broker init` and `pantau sites` make (dynamic
security plugin) and the certificates of `pantau certs`: sites publish only as themselves,
anonymous and revoked clients are refused, TLS verifies the broker."""

from __future__ import annotations

import asyncio
import pwd
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from cloud.collector import Collector
from cloud.config import CollectorConfig
from cloud.influx import InfluxClient, InfluxSettings, series_rows
from devtools.localsvc import (
    BrokerSecurity,
    InfluxProcess,
    MosquittoProcess,
    free_port,
    make_mosquitto,
)
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig, BrokerConfig
from pantau.core.contract import (
    CameraReading,
    Cause,
    ReadingBatch,
    TopicKind,
    agent_client_id,
    site_topic,
)
from pantau.core.mqtt import BrokerAddress, FatalConnectError, LinkSettings, MqttLink
from pantau.ops.brokerauth import COLLECTOR_USER, BrokerAccountFiles, DynsecAdmin
from pantau.ops.pki import init_ca, issue_broker, issue_site
from tests.helpers import async_wait_for, counters, run_pantau


@dataclass
class SecureBroker:
    """The broker and what a site or the collector needs to reach it."""

    broker: MosquittoProcess
    auth: BrokerAccountFiles
    pki: Path
    passwords: dict[str, str]
    tls_port: int
    mtls_port: int


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[SecureBroker]:
    pki = tmp_path / "pki"
    init_ca(pki)
    issue_broker(pki, ["127.0.0.1", "localhost"])
    issue_site(pki, "s1")
    auth = BrokerAccountFiles(tmp_path / "auth")
    auth.init()
    security = BrokerSecurity(
        dynsec_file=auth.dynsec_file,
        ca_file=pki / "ca.crt",
        cert_file=pki / "broker.crt",
        key_file=pki / "broker.key",
        tls_port=free_port(),
        mtls_port=free_port(),
    )
    broker = make_mosquitto(tmp_path, security=security)
    broker.start()
    admin = DynsecAdmin(broker.url, password=auth.admin_password())
    passwords = {site: admin.add_site(site) for site in ("s1", "s2")}
    passwords[COLLECTOR_USER] = auth.collector_password()
    assert security.tls_port and security.mtls_port
    yield SecureBroker(broker, auth, pki, passwords, security.tls_port, security.mtls_port)
    broker.stop()


def link(
    url: str,
    client_id: str,
    *,
    user: str | None = None,
    password: str | None = None,
    ca: Path | None = None,
    cert: Path | None = None,
) -> MqttLink:
    return MqttLink(
        LinkSettings(
            address=BrokerAddress.parse(url),
            client_id=client_id,
            username=user,
            password=password,
            ca_file=str(ca) if ca else None,
            cert_file=str(cert) if cert else None,
            key_file=str(cert.with_suffix(".key")) if cert else None,
            reconnect_max_s=2,
        )
    )


async def connect(client: MqttLink, timeout_s: float = 10) -> MqttLink:
    await client.start()
    try:
        await client.wait_connected(timeout_s)
    except BaseException:
        await client.close(graceful=False)
        raise
    return client


def batch(site: str, camera: str, ts: int) -> bytes:
    reading = CameraReading(camera=camera, ts=ts, up=True, cause=Cause.OK, latency_ms=1.0)
    return ReadingBatch(site=site, district="d1", cameras=[reading]).model_dump_json().encode()


@pytest.fixture
async def collector(
    secure: SecureBroker, influxd: InfluxProcess, database: str, tmp_path: Path
) -> AsyncIterator[Collector]:
    config = CollectorConfig.model_validate(
        {
            "mqtt": {
                "url": secure.broker.url,
                "client_id": "secure-collector",
                "username": COLLECTOR_USER,
                "password": secure.passwords[COLLECTOR_USER],
            },
            "influx": {"url": influxd.url, "database": database},
            "dead_letter_path": str(tmp_path / "dl.sqlite"),
            "http_port": 0,
        }
    )
    running = Collector(config)
    task = asyncio.create_task(running.run())
    await asyncio.wait_for(running.ready.wait(), 15)
    yield running
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_site_publishes_only_as_itself(
    secure: SecureBroker, collector: Collector, influxd: InfluxProcess, database: str
) -> None:
    """s1's password (over TLS) and s1's certificate (mutual TLS) reach InfluxDB under s1;
    the same credentials publishing into s2's topics, and the collector publishing at all, are
    dropped by the broker; s1 claiming s2 inside its own topic is rejected by the collector."""
    ca = secure.pki / "ca.crt"
    by_password = await connect(
        link(
            f"mqtts://127.0.0.1:{secure.tls_port}",
            agent_client_id("s1"),
            user="s1",
            password=secure.passwords["s1"],
            ca=ca,
        )
    )
    by_cert = await connect(
        link(
            f"mqtts://127.0.0.1:{secure.mtls_port}",
            "s1-cert",
            ca=ca,
            cert=secure.pki / "sites" / "s1.crt",
        )
    )
    as_collector = await connect(
        link(
            secure.broker.url,
            "collector-pub",
            user=COLLECTOR_USER,
            password=secure.passwords[COLLECTOR_USER],
        )
    )
    now = time.time_ns() - 10**9
    s1, s2 = site_topic("s1", TopicKind.READINGS), site_topic("s2", TopicKind.READINGS)
    try:
        await by_password.publish(s1, batch("s1", "pw", now))
        await by_cert.publish(s1, batch("s1", "cert", now))
        await by_password.publish(s2, batch("s2", "forged-pw", now))
        await by_cert.publish(s2, batch("s2", "forged-cert", now))
        await by_password.publish(site_topic("s2", TopicKind.STATUS), b'{"v":1}', retain=True)
        await as_collector.publish(s1, batch("s1", "from-collector", now))
        await by_password.publish(s1, batch("s2", "mismatch", now))
        await by_password.publish(s1, batch("s1", "last", now))  # arrives after all of the above
    finally:
        for client in (by_password, by_cert, as_collector):
            await client.close()

    async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:

        async def cameras() -> list[tuple[str, str]]:
            rows = series_rows(
                await influx.query('SELECT count("up") FROM camera GROUP BY site, camera')
            )
            return sorted((r["site"], r["camera"]) for r in rows)

        await async_wait_for(
            lambda: _has(cameras, ("s1", "last")), timeout_s=15, what="s1's last batch"
        )
        assert await cameras() == [("s1", "cert"), ("s1", "last"), ("s1", "pw")]
        stored_sites = series_rows(await influx.query('SHOW TAG VALUES WITH KEY = "site"'))
        assert {r["value"] for r in stored_sites} == {"s1"}
    seen = await counters(collector.http_port)
    assert seen["pantau_messages_received_total"] == 4
    assert seen["pantau_messages_rejected_total:site_mismatch"] == 1


async def _has(query: object, item: tuple[str, str]) -> bool:
    assert callable(query)
    return item in await query()


async def test_anonymous_wrong_password_and_wrong_ca_are_refused(secure: SecureBroker) -> None:
    """No credentials, a wrong password, a certificate-less client on the certificate
    listener and a broker certificate from another CA all fail; the right ones connect."""
    with pytest.raises(FatalConnectError, match=r"Not authorized|Bad user name or password"):
        await connect(link(secure.broker.url, "anon"))
    with pytest.raises(FatalConnectError, match=r"Not authorized|Bad user name or password"):
        await connect(link(secure.broker.url, agent_client_id("s1"), user="s1", password="guess"))
    ca = secure.pki / "ca.crt"
    tls = f"mqtts://127.0.0.1:{secure.tls_port}"
    good = await connect(
        link(tls, agent_client_id("s2"), user="s2", password=secure.passwords["s2"], ca=ca)
    )
    await good.close()
    other_ca = secure.pki.parent / "other-ca"
    init_ca(other_ca, name="someone else's CA")
    with pytest.raises(FatalConnectError, match="certificate"):
        await connect(
            link(
                tls,
                agent_client_id("s2"),
                user="s2",
                password=secure.passwords["s2"],
                ca=other_ca / "ca.crt",
            )
        )
    no_cert = link(f"mqtts://127.0.0.1:{secure.mtls_port}", "no-cert", ca=ca)
    with pytest.raises((TimeoutError, FatalConnectError)):
        await connect(no_cert, timeout_s=3)


async def test_a_revoked_site_is_disconnected_and_refused(secure: SecureBroker) -> None:
    """`pantau sites remove s2`: s2's connection is closed at once and its password stops
    working, with no broker reload; s1 is untouched."""
    s2 = agent_client_id("s2")
    first = await connect(link(secure.broker.url, s2, user="s2", password=secure.passwords["s2"]))
    try:
        result = run_pantau(
            "sites", "remove", "s2", "--dir", str(secure.auth.directory),
            "--admin-url", secure.broker.url, timeout_s=30,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        await asyncio.wait_for(first.disconnected.wait(), 10)
    finally:
        await first.close(graceful=False)
    listed = run_pantau(
        "sites", "list", "--dir", str(secure.auth.directory), "--admin-url", secure.broker.url,
        timeout_s=30,
    )  # fmt: skip
    assert listed.stdout.split() == ["s1"], listed.stderr
    with pytest.raises(FatalConnectError, match=r"Not authorized|Bad user name"):
        await connect(link(secure.broker.url, s2, user="s2", password=secure.passwords["s2"]), 5)
    still = await connect(
        link(secure.broker.url, agent_client_id("s1"), user="s1", password=secure.passwords["s1"])
    )
    await still.close()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory that another user (the broker's) can enter, unlike pytest's 0700 tmp_path."""
    path = Path(tempfile.mkdtemp(prefix="pantau-readme-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.services  # starts its own broker
async def test_the_readme_deployment_commands_give_a_working_site(shared_dir: Path) -> None:
    """As the README says, with the account directory owned by the broker's user: `pantau certs
    init`, `pantau broker init`, the broker started (as that user), `pantau sites add --out`
    (0600, used as is): the site connects over TLS and publishes, also after a broker restart,
    and an existing account is never silently replaced."""
    tmp_path = shared_dir
    pki, auth_dir = tmp_path / "pki", tmp_path / "auth"
    tls_port = free_port()
    made = run_pantau("certs", "init", "--dir", str(pki), "--host", "127.0.0.1", timeout_s=30)
    assert made.returncode == 0, made.stderr
    broker_user = "mosquitto" if _has_user("mosquitto") else None
    auth_dir.mkdir()
    if broker_user:  # as deploy/mosquitto/mosquitto.conf says: chown -R mosquitto
        for path in (auth_dir, pki / "broker.crt", pki / "broker.key", pki / "ca.crt"):
            shutil.chown(path, broker_user)
    init = run_pantau("broker", "init", "--dir", str(auth_dir), timeout_s=30)
    assert init.returncode == 0, init.stderr
    again = run_pantau("broker", "init", "--dir", str(auth_dir), timeout_s=30)
    assert again.returncode == 2 and "exists" in again.stderr
    auth = BrokerAccountFiles(auth_dir)
    if broker_user:
        assert auth.dynsec_file.stat().st_uid == pwd.getpwnam(broker_user).pw_uid
    broker = make_mosquitto(
        tmp_path,
        security=BrokerSecurity(
            dynsec_file=auth.dynsec_file,
            ca_file=pki / "ca.crt",
            cert_file=pki / "broker.crt",
            key_file=pki / "broker.key",
            tls_port=tls_port,
        ),
        user=broker_user,
    )
    broker.start()
    out = tmp_path / "s042-broker.yaml"
    try:
        added = run_pantau(
            "sites", "add", "s042", "--dir", str(auth_dir), "--admin-url", broker.url,
            "--broker", f"mqtts://127.0.0.1:{tls_port}", "--ca", str(pki / "ca.crt"),
            "--district", "d1", "--out", str(out), timeout_s=30,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert auth.sites_file.exists()  # the district is registered with the account
        assert out.stat().st_mode & 0o777 == 0o600
        section = BrokerConfig.model_validate(yaml.safe_load(out.read_text())["broker"])
        assert section.password and section.password not in added.stdout + added.stderr
        bad = run_pantau(
            "sites", "add", "bad id", "--dir", str(auth_dir), "--admin-url", broker.url,
            "--district", "d1", timeout_s=30,
        )  # fmt: skip
        assert bad.returncode == 2 and "'bad id' is not a valid site id" in bad.stderr
        for round_ in ("started", "restarted"):
            site = await connect(
                link(section.url, agent_client_id("s042"), user=section.username,
                     password=section.password, ca=section.ca_file)
            )  # fmt: skip
            await site.publish(
                site_topic("s042", TopicKind.READINGS), batch("s042", "c1", time.time_ns())
            )
            await site.close()
            if round_ == "started":
                broker.restart()  # the broker re-reads the accounts file it wrote itself
    finally:
        broker.stop()


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


async def test_an_agent_refused_by_the_broker_keeps_trying_until_its_account_is_fixed(
    secure: SecureBroker, tmp_path: Path
) -> None:
    """An agent whose password the broker does not (yet) know does not exit: it logs the
    refusal, keeps probing, and connects on its own once `pantau sites add` sets that password
    (no restart of the agent, no reload of the broker)."""
    config = AgentConfig.model_validate(
        {
            "site": {"id": "s9", "district": "d1", "lat": 0, "lon": 0},
            "broker": {
                "url": secure.broker.url,
                "username": "s9",
                "password": "typed-before-the-account-existed",
                "reconnect_max_s": 1,
            },
            "probe": {"interval_s": 1, "timeout_s": 0.5},
            "queue": {"path": str(tmp_path / "q.sqlite")},
        }
    )
    agent = Agent(config)
    task = asyncio.create_task(agent.run(), name="refused-agent")
    try:
        await asyncio.wait_for(agent.link.refused_event.wait(), 15)
        assert agent.link.refused and "Not authorized" in agent.link.refused
        await asyncio.sleep(0)  # the refusal has been handled: the agent is still running
        assert not task.done()
        admin = DynsecAdmin(secure.broker.url, password=secure.auth.admin_password())
        await asyncio.to_thread(admin.add_site, "s9", password="typed-before-the-account-existed")
        await asyncio.wait_for(agent.link.connected.wait(), 15)
        assert agent.link.refused is None and not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
