"""ONVIF ``SystemReboot`` (device management service), through the same bounded client as the
device checks (``onvif_check``)."""

from __future__ import annotations

import asyncio

from edge_agent.devices.answers import capped_session
from edge_agent.devices.onvif_check import OnvifTarget
from edge_agent.devices.onvif_client import DEVICE_ERRORS, BoundedCamera, close_camera

REBOOT_MAX_ANSWER_BYTES = 64_000


class RebootError(Exception):
    """The camera did not take the reboot; the message says what it answered."""


async def reboot_onvif(target: OnvifTarget, *, timeout_s: float) -> str:
    """Ask the camera to reboot; return its message (e.g. "Rebooting in 30 seconds")."""
    session = capped_session(max_bytes=REBOOT_MAX_ANSWER_BYTES, timeout_s=timeout_s)
    t = target
    camera = BoundedCamera(t.host, t.port, t.username, t.password, session)
    try:
        async with asyncio.timeout(timeout_s):
            devicemgmt = await camera.create_devicemgmt_service()
            answer = await devicemgmt.SystemReboot()
    except TimeoutError as exc:
        raise RebootError(f"no answer to SystemReboot within {timeout_s:g} s") from exc
    except DEVICE_ERRORS as exc:
        raise RebootError(f"SystemReboot: {type(exc).__name__}: {exc}"[:200]) from exc
    finally:
        await close_camera(camera, session)
    return " ".join(str(answer or "").split())[:120]
