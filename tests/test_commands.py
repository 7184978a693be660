"""Signed commands: the agent refuses unsigned, badly signed, foreign-site, expired and replayed
commands and reports each refusal (a ``remediation`` point in InfluxDB, through the real
broker and collector); a site's own broker account cannot publish any command (TLS + dynamic
security, the site's real credentials), while the collector's account can."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

from cloud.influx import InfluxClient, InfluxSettings, series_rows
from cloud.schema import REMEDIATION
from devtools.localsvc import InfluxProcess, MosquittoProcess
from edge_agent.agent import Agent
from edge_agent.commands.guard import CommandGuard, Refusal
from edge_agent.commands.nonces import NonceBook
from edge_agent.config import AgentConfig
from pantau.core.commands import Action, Command, RefusalReason, SignedCommand
from pantau.core.contract import agent_client_id, site_command_filter, site_command_topic
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink
from pantau.core.signing import load_private, load_public, new_key_pair, new_nonce, sign, verified
from pantau.ops.brokerauth import COLLECTOR_USER
from tests.helpers import async_wait_for
from tests.test_receipts import start_collector
from tests.test_security import SecureBroker, connect, link, secure  # noqa: F401 (fixture)

S = 10**9


def command(site: str = "s1", *, issued_ns: int | None = None, ttl_s: int = 60) -> Command:
    issued = time.time_ns() if issued_ns is None else issued_ns
    return Command(
        site=site,
        device="c1",
        action=Action.REBOOT,
        nonce=new_nonce(),
        issued_ns=issued,
        expires_ns=issued + ttl_s * S,
        trigger="user:tech1",
    )


def forged(cmd: Command, private: str) -> bytes:
    """Signed by another key than the site trusts."""
    return sign(cmd, load_private(private))


def test_the_guard_refuses_what_it_must(tmp_path: Path) -> None:
    """Each refusal has its reason; a nonce stays taken after the agent restarts."""
    private, public = new_key_pair()
    other_private, _ = new_key_pair()
    key = load_private(private)

    def guard() -> CommandGuard:
        verify = lambda e: verified(e, load_public(public))  # noqa: E731
        return CommandGuard("s1", verify, NonceBook(tmp_path / "n.sqlite"), max_skew_ns=60 * S)

    g = guard()
    now = time.time_ns()
    good = command()
    assert g.check(sign(good, key), now_ns=now) == good
    unsigned = SignedCommand(command=command().model_dump_json()).model_dump_json().encode()
    tampered_text = sign(command(), key).replace(b"reboot", b"power_cycle")
    cases = {
        b"not json": RefusalReason.MALFORMED,
        unsigned: RefusalReason.UNSIGNED,
        forged(command(), other_private): RefusalReason.BAD_SIGNATURE,
        tampered_text: RefusalReason.BAD_SIGNATURE,
        sign(command("s2"), key): RefusalReason.OTHER_SITE,
        sign(command(issued_ns=now - 120 * S), key): RefusalReason.EXPIRED,
        sign(command(issued_ns=now + 600 * S), key): RefusalReason.EXPIRED,
        sign(good, key): RefusalReason.REPLAYED,
    }
    for payload, reason in cases.items():
        decision = g.check(payload, now_ns=now)
        assert isinstance(decision, Refusal), payload
        assert decision.reason is reason, (payload, decision)
    g.nonces.close()
    again = guard()  # a restarted agent still knows the nonce
    decision = again.check(sign(good, key), now_ns=now)
    assert isinstance(decision, Refusal)
    assert decision.reason is RefusalReason.REPLAYED
    assert len(again.nonces) == 1
    # Past its expiry a nonce is forgotten: the command is refused as expired instead.
    late = again.check(sign(good, key), now_ns=good.expires_ns + 1)
    assert isinstance(late, Refusal)
    assert late.reason is RefusalReason.EXPIRED
    again.nonces.close()
    keyless = CommandGuard("s1", None, NonceBook(tmp_path / "k.sqlite"), max_skew_ns=0)
    refusal = keyless.check(sign(command(), key), now_ns=now)
    assert isinstance(refusal, Refusal)
    assert refusal.reason is RefusalReason.NO_KEY
    keyless.nonces.close()


async def test_the_agent_reports_each_refusal(
    broker: MosquittoProcess, influxd: InfluxProcess, database: str, tmp_path: Path
) -> None:
    """Through mosquitto, the agent and the collector: every refused command is a remediation
    point with its reason; a signed command passes the guard (and is refused only because the
    camera has no ONVIF section), and sent again it is a replay."""
    private, public = new_key_pair()
    other_private, _ = new_key_pair()
    key = load_private(private)
    config = AgentConfig.model_validate(
        {
            "site": {"id": "s1", "district": "d1", "lat": 0, "lon": 0},
            "broker": {"url": broker.url, "reconnect_max_s": 1},
            "probe": {"interval_s": 0.5, "timeout_s": 0.3},
            "cameras": [{"id": "c1", "rtsp_url": "rtsp://127.0.0.1:9/x"}],
            "queue": {"path": str(tmp_path / "q.sqlite")},
            "commands": {"public_key": public},
        }
    )
    collector, collector_task = await start_collector(broker, influxd.url, database, tmp_path)
    agent = Agent(config)
    agent_task = asyncio.create_task(agent.run(), name="commands-agent")
    cloud = MqttLink(
        LinkSettings(address=BrokerAddress.parse(broker.url), client_id="cloud-commander")
    )
    try:
        await asyncio.wait_for(agent.link.connected.wait(), 10)
        await cloud.start()
        await cloud.wait_connected(10)
        good = command()
        topic = site_command_topic("s1")
        for payload in (
            forged(command(), other_private),
            SignedCommand(command=command().model_dump_json()).model_dump_json().encode(),
            sign(command("s2"), key),
            sign(command(issued_ns=time.time_ns() - 300 * S), key),
            sign(good, key),
            sign(good, key),
        ):
            await cloud.publish(topic, payload)
        async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:

            async def reasons() -> list[str]:
                rows = series_rows(
                    await influx.query(f'SELECT "reason", "result", "trigger" FROM "{REMEDIATION}"')
                )
                return sorted(str(r["reason"]) for r in rows if r["result"] == "refused")

            expected = sorted(
                ["bad_signature", "unsigned", "other_site", "expired", "not_supported", "replayed"]
            )
            assert await async_wait_for(
                lambda: _equal(reasons, expected), timeout_s=20, what="six refusals stored"
            )
    finally:
        await cloud.close()
        agent_task.cancel()
        collector_task.cancel()
        await asyncio.gather(agent_task, collector_task, return_exceptions=True)
        del collector


async def _equal(source, expected):  # type: ignore[no-untyped-def]
    return (await source()) == expected


async def test_a_site_account_cannot_publish_a_command(secure: SecureBroker) -> None:  # noqa: F811
    """s1 (its real password, over TLS) publishing into its own and s2's command topics reaches
    neither agent; the collector's account publishing the same reaches both."""
    ca = secure.pki / "ca.crt"
    url = f"mqtts://127.0.0.1:{secure.tls_port}"
    s1 = link(url, agent_client_id("s1"), user="s1", password=secure.passwords["s1"], ca=ca)
    s2 = link(url, agent_client_id("s2"), user="s2", password=secure.passwords["s2"], ca=ca)
    await s1.subscribe([site_command_filter("s1")])
    await s2.subscribe([site_command_filter("s2")])
    s1, s2 = await connect(s1), await connect(s2)
    cloud = await connect(
        link(
            secure.broker.url,
            "commander",
            user=COLLECTOR_USER,
            password=secure.passwords[COLLECTOR_USER],
        )
    )
    try:
        private, _ = new_key_pair()
        for site in ("s1", "s2"):
            await s1.publish(site_command_topic(site), sign(command(site), load_private(private)))
        controls = {}
        for site in ("s1", "s2"):
            controls[site] = base64.b64encode(site.encode())
            await cloud.publish(site_command_topic(site), controls[site])
        for site, client in (("s1", s1), ("s2", s2)):
            got = await asyncio.wait_for(client.messages.get(), 10)
            # The first command a site hears is the collector's: s1's own went nowhere.
            assert got.payload == controls[site], (site, got.payload[:80])
            assert client.messages.empty()
    finally:
        for client in (s1, s2, cloud):
            await client.close()
