"""Clearing the broker sessions of collectors that are gone for good.

A collector's persistent session stays in the shared subscription group after the collector is
gone, and mosquitto keeps routing a share of every site's messages to it. A replacement that
starts under a new client id clears it: it connects once under the old id with a clean start and
no session expiry, which ends the old session, and leaves.
"""

from __future__ import annotations

import logging

from cloud.config import MqttConfig
from pantau.core.mqtt import BrokerAddress, FatalConnectError, LinkSettings, MqttLink

log = logging.getLogger(__name__)

CLEAR_SESSION_TIMEOUT_S = 10.0  # per replaced collector, at start


async def clear_sessions(mqtt: MqttConfig) -> None:
    """End the sessions of the client ids in ``mqtt.replaces``; log (not raise) a failure."""
    for old_id in mqtt.replaces:
        link = MqttLink(
            LinkSettings(
                address=BrokerAddress.parse(mqtt.url),
                client_id=old_id,
                username=mqtt.username,
                password=mqtt.password,
                ca_file=str(mqtt.ca_file) if mqtt.ca_file else None,
                clean_start=True,
                session_expiry_s=0,
            )
        )
        await link.start()
        try:
            await link.wait_connected(CLEAR_SESSION_TIMEOUT_S)
        except (TimeoutError, FatalConnectError) as exc:
            log.warning("could not clear the session of replaced collector %s: %s", old_id, exc)
        else:
            log.warning("cleared the session of replaced collector %s", old_id)
        finally:
            await link.close()
