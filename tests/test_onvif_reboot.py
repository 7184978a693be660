"""ONVIF ``SystemReboot`` (the remediation ``reboot`` action) against the project's ONVIF
simulator: the camera's message comes back, a camera wanting credentials on every call gets
them, and hostile answers end as a ``RebootError`` within the deadline, never a hang."""

from __future__ import annotations

import time

import pytest

from edge_agent.devices.onvif_check import OnvifTarget
from edge_agent.devices.onvif_reboot import RebootError, reboot_onvif
from simulators.onvif_events_sim import CameraEvents
from simulators.onvif_sim import OnvifDevice, OnvifMode, OnvifSimulator

DEADLINE_S = 2.0


def target(port: int, *, user: str | None = "admin") -> OnvifTarget:
    return OnvifTarget(camera="c1", host="127.0.0.1", port=port, username=user, password="pw")


@pytest.mark.parametrize("mode", [OnvifMode.NORMAL, OnvifMode.AUTH_EVERY_CALL])
async def test_the_camera_takes_the_reboot_and_says_so(mode: OnvifMode) -> None:
    """One SystemReboot, signed; the camera's own message is the answer; its event service
    loses every subscription (it rebooted)."""
    device = OnvifDevice(mode=mode, events=CameraEvents())
    async with OnvifSimulator(device) as sim:
        message = await reboot_onvif(target(sim.port), timeout_s=DEADLINE_S)
    assert message == "Rebooting in 30 seconds"
    assert device.reboots == 1 and device.actions.count("SystemReboot") == 1
    assert device.events is not None and device.events.down_until > time.monotonic() - 5


async def test_a_camera_refusing_anonymous_calls_is_not_rebooted_without_credentials() -> None:
    """No credentials configured: the camera refuses, the agent reports it, nothing reboots."""
    device = OnvifDevice(mode=OnvifMode.AUTH_EVERY_CALL)
    async with OnvifSimulator(device) as sim:
        with pytest.raises(RebootError, match="SystemReboot"):
            await reboot_onvif(target(sim.port, user=None), timeout_s=DEADLINE_S)
    assert device.reboots == 0


@pytest.mark.parametrize(
    "mode", [OnvifMode.MALFORMED, OnvifMode.HUGE, OnvifMode.HUGE_STREAM, OnvifMode.SILENT]
)
async def test_hostile_answers_are_a_reboot_error_within_the_deadline(mode: OnvifMode) -> None:
    """Malformed XML, 10 MB (announced or not) and silence: a RebootError, in time."""
    async with OnvifSimulator(OnvifDevice(mode=mode)) as sim:
        started = time.monotonic()
        with pytest.raises(RebootError):
            await reboot_onvif(target(sim.port), timeout_s=DEADLINE_S)
        took = time.monotonic() - started
    assert took < DEADLINE_S + 1.0, took


async def test_nobody_listening_is_a_reboot_error() -> None:
    """A camera that is off: a RebootError naming the failure."""
    sim = await OnvifSimulator(OnvifDevice()).start()
    port = sim.port
    await sim.stop()
    with pytest.raises(RebootError):
        await reboot_onvif(target(port), timeout_s=DEADLINE_S)
