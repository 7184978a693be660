"""The site's recorder adapters from its config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge_agent.config import AgentConfig
from edge_agent.devices.settings import HikvisionRecorder
from edge_agent.recorders.hikvision import HikvisionAdapter
from edge_agent.recorders.onvif_profile_g import OnvifRecorderAdapter

if TYPE_CHECKING:
    from edge_agent.devices.scheduler import RecorderCheck


def build_recorders(config: AgentConfig) -> list[RecorderCheck]:
    """One adapter per configured recorder."""
    return [
        HikvisionAdapter(r, config.devices)
        if isinstance(r, HikvisionRecorder)
        else OnvifRecorderAdapter(r, config.devices)
        for r in config.recorders
    ]
