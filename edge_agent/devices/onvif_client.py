"""The ONVIF client every device conversation uses (``onvif-zeep-async``): one bounded session
per camera, service addresses pinned to the configured host and port, the time asked without
credentials first, and the errors a hostile camera's answers may raise."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import zeep.exceptions
from lxml import etree
from onvif import ONVIFCamera, ONVIFError, ONVIFService

log = logging.getLogger(__name__)

# What one camera's failure may look like: the library's errors, zeep's (faults, bad XML,
# transport), aiohttp's (including an answer over the limit), sockets, and values zeep could not
# map (a hostile answer's odd types).
DEVICE_ERRORS: tuple[type[BaseException], ...] = (
    ONVIFError,
    zeep.exceptions.Error,
    aiohttp.ClientError,
    etree.LxmlError,
    OSError,
    TimeoutError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
)


class BoundedCamera(ONVIFCamera):  # type: ignore[misc]  # the library is untyped
    """``ONVIFCamera`` whose services talk through one bounded session, and whose advertised
    service addresses keep the configured host and port (a device's answer never sends the
    agent elsewhere)."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        session: aiohttp.ClientSession,
    ) -> None:
        # No credentials: an empty UsernameToken, which cameras without auth ignore.
        super().__init__(
            host, port, username or "", password or "", no_cache=True, nat_override=True
        )
        self._bounded = session

    async def create_onvif_service(self, name: str, *args: Any, **kwargs: Any) -> ONVIFService:
        service = await super().create_onvif_service(name, *args, **kwargs)
        service.transport.session = self._bounded  # the transport's documented session
        return service


async def system_time(devicemgmt: ONVIFService) -> Any:
    """Asked without credentials (as ONVIF allows), again with them if the camera insists."""
    try:
        return await devicemgmt.authless_GetSystemDateAndTime()
    except zeep.exceptions.Fault:
        return await devicemgmt.GetSystemDateAndTime()


async def close_camera(camera: BoundedCamera, session: aiohttp.ClientSession) -> None:
    """Close the camera's services and its session; a broken camera's sockets never raise."""
    try:
        await camera.close()
    except DEVICE_ERRORS as exc:
        log.debug("closing ONVIF client of %s: %s", camera.host, exc)
    await session.close()
