"""One camera's ONVIF device check with ``onvif-zeep-async`` (Home Assistant's client):
``GetSystemDateAndTime`` (the camera's clock against the agent's), ``GetDeviceInformation``
(manufacturer, model, firmware, serial) and ``GetServices``.

Every answer is hostile input: each request has a deadline and a size limit
(``answers.capped_session``), the whole check has a deadline, and whatever goes wrong becomes
this camera's ``DeviceReading(ok=False, error=...)``, never the agent's exception.

Field pitfalls handled: the time is asked without credentials first and with them if the camera
refuses (some require auth on every call); the WS-Security timestamps of later calls carry the
camera's clock offset, so a camera whose clock is far off still answers (home-assistant/core
#121952); UTC fields holding local time (``onvif_time.camera_utc``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import zeep.exceptions
from onvif import ONVIFService

from edge_agent.devices.answers import capped_session
from edge_agent.devices.onvif_client import (
    DEVICE_ERRORS,
    BoundedCamera,
    close_camera,
    system_time,
)
from edge_agent.devices.onvif_time import camera_utc
from pantau.core.contract import DeviceReading

log = logging.getLogger(__name__)

# ONVIF service namespaces -> the short names a DeviceReading carries.
SERVICE_NAMES: Mapping[str, str] = {
    "http://www.onvif.org/ver10/device/wsdl": "device",
    "http://www.onvif.org/ver10/media/wsdl": "media",
    "http://www.onvif.org/ver20/media/wsdl": "media2",
    "http://www.onvif.org/ver10/events/wsdl": "events",
    "http://www.onvif.org/ver20/ptz/wsdl": "ptz",
    "http://www.onvif.org/ver20/imaging/wsdl": "imaging",
    "http://www.onvif.org/ver10/deviceIO/wsdl": "deviceio",
    "http://www.onvif.org/ver20/analytics/wsdl": "analytics",
    "http://www.onvif.org/ver10/recording/wsdl": "recording",
    "http://www.onvif.org/ver10/search/wsdl": "search",
    "http://www.onvif.org/ver10/replay/wsdl": "replay",
    "http://www.onvif.org/ver10/receiver/wsdl": "receiver",
}


@dataclass(frozen=True, slots=True)
class OnvifTarget:
    """Where a camera's device service is and how to log in."""

    camera: str
    host: str
    port: int
    username: str | None
    password: str | None


def _text(value: Any) -> str | None:
    """A device string, cut to the contract's bounds, without line breaks."""
    if value is None:
        return None
    text = " ".join(str(value).split())[:64]
    return text or None


async def check_onvif(
    target: OnvifTarget,
    *,
    now_ns: Callable[[], int],
    timeout_s: float,
    max_bytes: int,
) -> DeviceReading:
    """The camera's identity, clock offset and services (``ts`` is 0: the caller stamps)."""
    session = capped_session(max_bytes=max_bytes, timeout_s=timeout_s)
    camera = BoundedCamera(target.host, target.port, target.username, target.password, session)
    try:
        async with asyncio.timeout(timeout_s):
            return await _ask(camera, target, now_ns)
    except TimeoutError:
        error = f"no complete answer within {timeout_s:g} s"
        log.info("ONVIF check of camera %s failed: %s", target.camera, error)
        return DeviceReading(device=target.camera, ts=0, ok=False, error=error)
    except DEVICE_ERRORS as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.info("ONVIF check of camera %s failed: %s", target.camera, error)
        return DeviceReading(device=target.camera, ts=0, ok=False, error=_line(error))
    finally:
        await close_camera(camera, session)


async def _ask(
    camera: BoundedCamera, target: OnvifTarget, now_ns: Callable[[], int]
) -> DeviceReading:
    devicemgmt = await camera.create_devicemgmt_service()
    sent = time.monotonic_ns()
    asked_at = now_ns()
    answer = ONVIFService.to_dict(await system_time(devicemgmt))
    rtt = time.monotonic_ns() - sent
    cam_utc, note = camera_utc(answer if isinstance(answer, Mapping) else {})
    offset_ms: float | None = None
    if cam_utc is not None:
        # The answer's time is whole seconds, taken about half a round trip after asking.
        agent_ns = asked_at + rtt // 2
        # Whole seconds are cut, not rounded: the camera's true time is half a second later on
        # average.
        offset_ms = round((cam_utc.timestamp() * 1e9 + 5e8 - agent_ns) / 1e6, 1)
        # Later calls sign their WS-Security timestamps in the camera's time.
        camera.dt_diff = dt.timedelta(milliseconds=offset_ms)
        await devicemgmt.close()
        camera.services.pop(devicemgmt.binding_key, None)
        devicemgmt = await camera.create_devicemgmt_service()
    if note:
        log.info("camera %s time: %s", target.camera, note)
    info = await devicemgmt.GetDeviceInformation()
    services: list[str] = []
    try:
        found = await devicemgmt.GetServices({"IncludeCapability": False})
    except zeep.exceptions.Fault:  # older cameras: GetCapabilities only; identity still holds
        found = []
    for service in found or []:
        name = SERVICE_NAMES.get(str(getattr(service, "Namespace", "")))
        if name and name not in services:
            services.append(name)
    return DeviceReading(
        device=target.camera,
        ts=0,
        ok=True,
        error=_line(note) if cam_utc is None else None,
        manufacturer=_text(getattr(info, "Manufacturer", None)),
        model=_text(getattr(info, "Model", None)),
        firmware=_text(getattr(info, "FirmwareVersion", None)),
        serial=_text(getattr(info, "SerialNumber", None)),
        hardware=_text(getattr(info, "HardwareId", None)),
        clock_offset_ms=offset_ms,
        services=services[:32],
    )


def _line(text: str) -> str:
    return " ".join(text.split())[:200]
