"""The broker set up as the README's deployment says (TLS, dynamic security, persistence) is
stopped (SIGTERM) and killed (SIGKILL) again and again under running agents: once a site's
readings arrive after a restart, neither the fleet read (the API and the wall) nor the problem
rules ever show that site offline, although the Last Will of its previous connection may reach
the collector after its new birth."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cloud.collector import Collector
from cloud.config import CollectorConfig
from cloud.fleet import current_sites
from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.metrics import counter_value
from cloud.problems.config import RulesConfig
from cloud.problems.observe import Observer
from cloud.schema import SiteSessions, site_online_now
from devtools.localsvc import (
    BrokerSecurity,
    InfluxProcess,
    MosquittoProcess,
    free_port,
    make_mosquitto,
)
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.connseq import ConnectionSeq
from edge_agent.wire import encode_status
from pantau.core.contract import SiteStatus, TopicFilter, TopicKind, site_topic
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink, Will
from pantau.ops.brokerauth import (
    COLLECTOR_USER,
    SITE_ROLE_PREFIX,
    BrokerAccountFiles,
    DynsecAdmin,
)
from pantau.ops.pki import init_ca, issue_broker
from tests.helpers import async_wait_for

SITES = ("s1", "s2", "s3")
CYCLES = 10  # alternately SIGTERM and SIGKILL
PROBE_INTERVAL_S = 1.0
RECOVER_TIMEOUT_S = 60.0  # broker restart, reconnects, the first readings stored
SETTLE_READINGS = 4  # after recovery, watch this many more probe periods of readings arrive
POLL_S = 0.2


@dataclass
class Deployed:
    broker: MosquittoProcess
    influx: InfluxClient
    collector: Collector
    agents: dict[str, Agent]
    links: dict[str, LinkSettings]  # each site's own account, for a will delivered late
    shown_offline: set[str] = field(default_factory=set)


@pytest.fixture
async def deployed(
    tmp_path: Path, influxd: InfluxProcess, database: str
) -> AsyncIterator[Deployed]:
    pki = tmp_path / "pki"
    init_ca(pki)
    issue_broker(pki, ["127.0.0.1", "localhost"])
    auth = BrokerAccountFiles(tmp_path / "auth")
    auth.init()
    tls_port = free_port()
    security = BrokerSecurity(
        dynsec_file=auth.dynsec_file,
        ca_file=pki / "ca.crt",
        cert_file=pki / "broker.crt",
        key_file=pki / "broker.key",
        tls_port=tls_port,
    )
    broker = make_mosquitto(tmp_path, security=security)  # persistence on, autosave 5 s
    broker.start()
    admin = DynsecAdmin(broker.url, password=auth.admin_password())
    passwords = {site: admin.add_site(site) for site in SITES}
    # A second client in each site's role (the agent's is bound to its client id): it delivers
    # the Last Will of an old connection the way the broker does.
    old_password = "old-connection-pw"
    answers = admin.run(
        [
            {
                "command": "createClient",
                "username": f"{site}-old",
                "password": old_password,
                "clientid": f"{site}-old-connection",
                "roles": [{"rolename": SITE_ROLE_PREFIX + site}],
            }
            for site in SITES
        ]
    )
    assert not [a for a in answers if a.get("error")], answers
    collector = Collector(
        CollectorConfig.model_validate(
            {
                "mqtt": {
                    "url": f"mqtts://127.0.0.1:{tls_port}",
                    "ca_file": str(pki / "ca.crt"),
                    "client_id": "pantau-collector-1",
                    "username": COLLECTOR_USER,
                    "password": auth.collector_password(),
                },
                "influx": {"url": influxd.url, "database": database},
                "dead_letter_path": str(tmp_path / "dl.sqlite"),
                "http_port": 0,
            }
        )
    )
    agents = {
        site: Agent(
            AgentConfig.model_validate(
                {
                    "site": {"id": site, "district": "d1", "lat": -6.2, "lon": 106.8},
                    "broker": {
                        "url": f"mqtts://127.0.0.1:{tls_port}",
                        "username": site,
                        "password": passwords[site],
                        "ca_file": str(pki / "ca.crt"),
                        "reconnect_max_s": 2,
                    },
                    "probe": {"interval_s": PROBE_INTERVAL_S, "timeout_s": 0.5},
                    # A camera that refuses: a "down" reading every probe period.
                    "cameras": [{"id": "cam1", "rtsp_url": f"rtsp://127.0.0.1:{free_port()}/x"}],
                    "queue": {"path": str(tmp_path / f"{site}.sqlite")},
                }
            )
        )
        for site in SITES
    }
    tasks = [asyncio.create_task(collector.run(), name="restart-collector")]
    await asyncio.wait_for(collector.ready.wait(), 15)
    tasks += [asyncio.create_task(a.run(), name=f"restart-{s}") for s, a in agents.items()]
    try:
        async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
            links = {
                site: LinkSettings(
                    address=BrokerAddress.parse(f"mqtts://127.0.0.1:{tls_port}"),
                    client_id=f"{site}-old-connection",
                    username=f"{site}-old",
                    password=old_password,
                    ca_file=str(pki / "ca.crt"),
                )
                for site in SITES
            }
            yield Deployed(broker, influx, collector, agents, links)
    finally:
        for task in reversed(tasks):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        broker.stop()


async def latest_reading_ns(influx: InfluxClient) -> dict[str, int]:
    """Each site's newest stored agent reading (one per probe period)."""
    rows = series_rows(await influx.query('SELECT last("backlog") FROM "agent" GROUP BY "site"'))
    return {row["site"]: int(row["time"]) for row in rows}


async def offline_now(d: Deployed) -> dict[str, str]:
    """Sites shown offline now, by the fleet read and by the problem rules (site -> by whom)."""
    now = time.time_ns()
    shown: dict[str, str] = {}
    for state in await current_sites(d.influx, now_ns=now):
        if not state.online:
            shown[state.site] = "fleet"
    # The wall (Grafana) reads the newest status point of each site.
    wall = series_rows(await d.influx.query('SELECT last("online") FROM "site" GROUP BY "site"'))
    for row in wall:
        if row["last"] == 0:
            shown[row["site"]] = shown.get(row["site"], "") + "+wall"
    for obs in await Observer(d.influx, RulesConfig()).observe(now):
        if obs.rule == "site" and obs.cause != "agent reporting":
            shown[obs.site] = shown.get(obs.site, "") + "+problems"
        assert obs.rule != "ingest" or obs.verdict.value != "bad", obs.cause
    return shown


async def watch_cycle(d: Deployed, cycle: int, restarted_ns: int) -> None:
    """From each site's first reading after the restart on, its site must never be offline."""
    arrived: dict[str, int] = {}  # site -> newest reading seen at the first post-restart one

    async def settled() -> bool:
        latest = await latest_reading_ns(d.influx)
        for site, ts in latest.items():
            if ts > restarted_ns and site not in arrived:
                arrived[site] = ts
        shown = await offline_now(d)
        for site in arrived:
            if site in shown:
                d.shown_offline.add(f"cycle {cycle}: {site} offline by {shown[site]}")
        settle_ns = int(SETTLE_READINGS * PROBE_INTERVAL_S * 1e9)
        return (
            len(arrived) == len(SITES)
            and all(latest[s] >= arrived[s] + settle_ns for s in SITES)
            and d.collector.health()["pending_messages"] == 0
        )

    await async_wait_for(
        settled,
        timeout_s=RECOVER_TIMEOUT_S,
        interval_s=POLL_S,
        what=f"cycle {cycle}: every site's readings arriving again after the broker restart",
    )


@pytest.mark.timeout(600)
async def test_no_site_is_shown_offline_after_broker_restarts(deployed: Deployed) -> None:
    """10 restarts of the real broker (SIGTERM, SIGKILL alternately), then a will of each
    site's previous connection delivered after its newest birth: never a false offline."""
    d = deployed

    async def all_online() -> bool:
        latest = await latest_reading_ns(d.influx)
        return len(latest) == len(SITES) and not await offline_now(d)

    await async_wait_for(all_online, timeout_s=60, what="every site online and reporting")
    for cycle in range(CYCLES):
        graceful = cycle % 2 == 0
        if graceful:  # SIGTERM: mosquitto publishes every connection's will on the way out
            await asyncio.to_thread(d.broker.stop)
        else:  # SIGKILL: nothing published; what was saved comes back
            await asyncio.to_thread(d.broker.kill)
        await asyncio.to_thread(d.broker.start)
        await watch_cycle(d, cycle, time.time_ns())
    # Whether the broker itself delivers an old connection's will after the new birth depends
    # on timing (2 of 2 sites in the issue's run, none in 24 restarts under load): deliver one
    # per site through the broker, as it did, so every run tests the late will.
    stale_before = counter_value(d.collector.metrics.stale_wills)
    late = {site: await deliver_late_will(d, site) for site in SITES}

    async def wills_stored() -> bool:
        shown = await offline_now(d)
        d.shown_offline.update(f"late will: {site} offline by {by}" for site, by in shown.items())
        rows = series_rows(
            await d.influx.query('SELECT "seq" FROM "site" WHERE "online" = 0 GROUP BY "site"')
        )
        stored = {(r["site"], r["seq"]) for r in rows}
        return all((site, seq) in stored for site, seq in late.items())

    await async_wait_for(wills_stored, timeout_s=30, interval_s=POLL_S, what="late wills stored")
    await watch_cycle(d, CYCLES, time.time_ns())  # and the sites stay online after them
    statuses = series_rows(
        await d.influx.query('SELECT "online", "seq" FROM "site" GROUP BY "site"')
    )
    assert not d.shown_offline, (sorted(d.shown_offline), statuses)
    # Wills of older connections that arrived after the births of newer ones were stored
    # before those births (none after: the wall's newest point).
    assert late_wills(statuses) == 0, statuses
    assert counter_value(d.collector.metrics.stale_wills) == stale_before + len(SITES)


async def deliver_late_will(d: Deployed, site: str) -> int:
    """Publish, with an account of the site's role and as the broker publishes a will
    (retained, QoS 1), the Last Will of the connection before the site's newest birth; return
    that connection's number."""
    rows = series_rows(
        await d.influx.query(
            f'SELECT last("seq") FROM "site" WHERE "site" = \'{site}\' AND "online" = 1'
        )
    )
    newest = int(rows[0]["last"])
    will = SiteStatus(
        site=site, district="d1", online=False, ts=None, lat=-6.2, lon=106.8, session=1,
        probe_interval_s=PROBE_INTERVAL_S, seq=newest - 1, minor=1,
    )  # fmt: skip
    link = MqttLink(d.links[site])
    await link.start()
    try:
        await link.wait_connected(15)
        await link.publish(
            site_topic(site, TopicKind.STATUS), encode_status(will, 1), qos=1, retain=True
        )
    finally:
        await link.close()
    return newest - 1


def late_wills(statuses: list[dict[str, Any]]) -> int:
    """How many wills of an older connection than a stored birth are a site's newest status
    point for a while (what the wall's ``last("online")`` would show as offline): a will stored
    just before the birth it predates (or a republished one) does not count."""
    late = 0
    by_site: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(statuses, key=lambda r: int(r["time"])):
        by_site.setdefault(row["site"], []).append(row)
    for rows in by_site.values():
        born = -1  # highest birth seq so far
        for index, row in enumerate(rows):
            seq = row.get("seq")
            if row["online"] == 1 and seq is not None:
                born = max(born, int(seq))
            elif row["online"] == 0 and born >= 0 and (seq is None or int(seq) < born):
                after = rows[index + 1] if index + 1 < len(rows) else None
                if not (after and after["online"] == 1 and (after.get("seq") or -1) >= born):
                    late += 1
    return late


# --- the parts, alone ------------------------------------------------------------------------


def test_connection_numbers_never_repeat_whatever_the_clock(tmp_path: Path) -> None:
    """Numbers rise across restarts with a clock gone back; a lost file continues from a right
    clock; an unreadable file is not a reason to stop."""
    path = tmp_path / "q.connseq"
    clock = [5_000]
    first = ConnectionSeq(path, clock_ms=lambda: clock[0])
    assert [first.next(), first.next()] == [5_000, 5_001]
    clock[0] = 10  # the box's clock falls back to 1970 after a power cut
    again = ConnectionSeq(path, clock_ms=lambda: clock[0])
    assert again.next() == 5_002
    path.unlink()  # the state is lost; the clock is right again
    clock[0] = 9_000
    assert ConnectionSeq(path, clock_ms=lambda: clock[0]).next() == 9_000
    path.write_text("garbage\n")
    assert ConnectionSeq(path, clock_ms=lambda: clock[0]).next() == 9_000
    assert path.read_text() == "9000\n"


def _will(seq: int | None) -> dict[str, Any]:
    return {"online": 0, "seq": seq}


@pytest.mark.parametrize(
    ("latest", "sessions", "online"),
    [
        ({"online": 1, "seq": 7}, SiteSessions(7, 6), True),  # a birth is the newest point
        (_will(6), SiteSessions(7, 6), True),  # a late will of the connection before
        (_will(7), SiteSessions(7, 7), False),  # the will of the connection now up
        (_will(6), SiteSessions(7, 7), False),  # a late will after the real one
        (_will(None), SiteSessions(7, None), True),  # an unnumbered (older) connection's will
        (_will(None), SiteSessions(None, None), False),  # no numbers: the newest point decides
        (_will(None), None, False),
        (_will(3), SiteSessions(2, 900), False),  # the count went back: the newest point
    ],
)
def test_a_will_applies_to_its_own_connection_only(
    latest: dict[str, Any], sessions: SiteSessions | None, online: bool
) -> None:
    """The read rule shared by the fleet view and the problem rules."""
    assert site_online_now(latest, sessions) is online


async def test_each_connection_registers_its_own_will(broker: MosquittoProcess) -> None:
    """A link asks for a new will before every attempt; the broker publishes the one of the
    connection that dropped."""
    topic = site_topic("s1", TopicKind.STATUS)
    attempts: list[int] = []

    def next_will() -> Will:
        attempts.append(len(attempts) + 1)
        return Will(topic=topic, payload=str(attempts[-1]).encode(), retain=False)

    settings = LinkSettings(
        address=BrokerAddress.parse(broker.url), client_id="w", keepalive_s=5, reconnect_max_s=1
    )
    watcher = MqttLink(LinkSettings(address=BrokerAddress.parse(broker.url), client_id="watch"))
    await watcher.subscribe([TopicFilter(topic)])
    await watcher.start()
    await watcher.wait_connected(10)
    link = MqttLink(settings, next_will=next_will)
    await link.start()
    await link.wait_connected(10)
    # Another client takes the id over: the broker drops the link and publishes its will.
    intruder = MqttLink(settings)
    await intruder.start()
    await intruder.wait_connected(10)
    first = await asyncio.wait_for(watcher.messages.get(), 10)
    await intruder.close()
    await async_wait_for(
        lambda: asyncio.sleep(0, link.generation >= 2 and link.connected.is_set()),
        timeout_s=15,
        what="the link connected again by itself",
    )
    await link.close(graceful=False)  # the socket dies: the will of this connection
    last = str(attempts[-1]).encode()
    wills = [first.payload]
    while wills[-1] != last:
        wills.append((await asyncio.wait_for(watcher.messages.get(), 10)).payload)
    await watcher.close()
    assert wills[0] == b"1"
    assert len(attempts) >= 2
