"""Chaos: broker restart, 60 s InfluxDB outage, 120 s uplink cut, SIGKILLed collector and agent,
both collectors away while the broker is SIGKILLed and restarted, two collectors sharing the load.
InfluxDB must hold exactly the agents' ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.chaos import run_chaos


@pytest.mark.chaos
@pytest.mark.services  # starts its own mosquitto, influxd, collectors and agents
@pytest.mark.timeout(420)
async def test_full_chaos_schedule_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """The 150 s schedule ends with lost=0 dup=0 and the InfluxQL count equal to the ledger."""
    result = await run_chaos(150, workdir=tmp_path)
    c = result.comparison
    print(c.line(), c.summary())
    actions = [text for _, text in result.actions]
    assert actions == [
        "broker restart",
        "broker back",
        "s2 uplink cut",
        "collector 1 SIGKILL",
        "collector 1 restarted",
        "InfluxDB stopped",
        "s3 agent SIGKILL",
        "s3 agent restarted",
        "InfluxDB started",
        "collectors SIGKILL",
        "broker SIGKILL and back",
        "broker graceful restart",
        "collectors restarted",
        "s2 uplink restored",
    ]
    assert result.skipped == []
    assert (c.lost, c.dup, c.queued) == (0, 0, 0), (c.lost_examples, c.dup_examples)
    assert c.readings > 5000
    assert c.stored == c.readings
    assert c.counted == c.readings
    assert all(w > 0 for w in result.written_per_collector), result.written_per_collector
