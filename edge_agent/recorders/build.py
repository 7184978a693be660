"""The site's recorder adapters from its config."""

from __future__ import annotations

from edge_agent.config import AgentConfig
from edge_agent.recorders.hikvision import HikvisionAdapter


def build_recorders(config: AgentConfig) -> list[HikvisionAdapter]:
    """One adapter per configured recorder."""
    return [HikvisionAdapter(r, config.devices) for r in config.recorders]
