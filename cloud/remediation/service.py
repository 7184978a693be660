"""The remediation task of ``pantau problems``: a broker link, the key, the policy loop."""

from __future__ import annotations

import asyncio
from typing import Protocol

from cloud.influx import InfluxClient
from cloud.influx_config import InfluxSettings
from cloud.maintenance import StateStore
from cloud.problems.store import ProblemStore
from cloud.remediation.config import RemediationConfig
from cloud.remediation.history import ActionLog
from cloud.remediation.runner import Remediator
from cloud.remediation.sender import CommandKeyError, CommandSender, read_key
from pantau.core.mqtt import BrokerAddress, LinkSettings, MqttLink


class _Stores(Protocol):
    influx: InfluxSettings
    state_url: str


def command_link(config: RemediationConfig) -> MqttLink:
    """The broker link commands are published on (not started)."""
    b = config.broker
    return MqttLink(
        LinkSettings(
            address=BrokerAddress.parse(b.url),
            client_id=b.client_id,
            username=b.username,
            password=b.password,
            ca_file=str(b.ca_file) if b.ca_file else None,
        )
    )


async def run_remediation(config: RemediationConfig, stores: _Stores, stop: asyncio.Event) -> None:
    """Settle the agents' answers and run the policy (if enabled) until ``stop``."""
    path = config.key_path()
    if path is None:
        raise CommandKeyError(
            "remediation needs the command key: set remediation.key_file or "
            "PANTAU_COMMAND_KEY_FILE (create one with 'pantau keys init --out DIR')"
        )
    key = read_key(path)
    link = command_link(config)
    actions, problems = ActionLog(stores.state_url), ProblemStore(stores.state_url)
    maintenance = StateStore(stores.state_url)
    try:
        await link.start()
        async with InfluxClient(stores.influx) as influx:
            await Remediator(
                influx=influx,
                sender=CommandSender(link, key, ttl_s=config.command_ttl_s),
                actions=actions,
                problems=problems,
                maintenance=maintenance,
                policy=config.policy,
            ).run(config.interval_s, stop)
    finally:
        await link.close()
        for store in (actions, problems, maintenance):
            store.close()
