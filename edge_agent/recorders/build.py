"""The site's recorder adapters from its config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge_agent.config import AgentConfig
from edge_agent.devices.settings import HikvisionRecorder, ZoneminderRecorder
from edge_agent.recorders.hikvision import HikvisionAdapter
from edge_agent.recorders.onvif_profile_g import OnvifRecorderAdapter
from edge_agent.recorders.zoneminder import ZoneminderAdapter

if TYPE_CHECKING:
    from edge_agent.devices.scheduler import RecorderCheck


def build_recorders(config: AgentConfig) -> list[RecorderCheck]:
    """One adapter per configured recorder."""
    adapters: list[RecorderCheck] = []
    for r in config.recorders:
        if isinstance(r, HikvisionRecorder):
            adapters.append(HikvisionAdapter(r, config.devices))
        elif isinstance(r, ZoneminderRecorder):
            adapters.append(ZoneminderAdapter(r, config.devices))
        else:
            adapters.append(OnvifRecorderAdapter(r, config.devices))
    return adapters
